"""The sparse trap: a donated table read twice in a step is copied whole; `rj.table_copies`
finds it, and the multi-table recipe of docs/sparse.md stays free of table-sized copies."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest

import rmsprop_jax as rj
from tests.test_docs import run_page

USERS, ITEMS, DIM = 100_000, 50_000, 8


def _one_call_per_table(tx: Any) -> Any:
    """The natural pattern: one value_and_sparse_grad call per table, reading the other table."""

    def loss(user_rows: jax.Array, item_rows: jax.Array) -> jax.Array:
        return jnp.mean((jnp.sum(user_rows * item_rows, axis=-1) - 1.0) ** 2)

    @jax.jit(donate_argnums=(0, 1))
    def step(params: Any, state: Any, users: jax.Array, items: jax.Array) -> Any:
        item_rows = params["items"][items]
        value, g_users = rj.value_and_sparse_grad(
            lambda rows: loss(rows, item_rows), params["users"], users, argnums=0
        )
        _, g_items = rj.value_and_sparse_grad(
            lambda rows: loss(params["users"][users], rows), params["items"], items, argnums=0
        )
        updates, state = tx.update({"users": g_users, "items": g_items}, state, params)
        return rj.apply_updates(params, updates), state, value

    return step


def _inputs(tx: Any) -> tuple[Any, ...]:
    params = {"users": jnp.zeros((USERS, DIM)), "items": jnp.zeros((ITEMS, DIM))}
    return params, tx.init(params), jnp.arange(64), jnp.arange(64) * 3


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("mode", ["lazy", "keras", "dense"])
def test_one_call_per_table_copies_the_tables_and_the_report_says_so(mode: str) -> None:
    tx = rj.rmsprop(0.01, convention="keras3", sparse_mode=mode, sparse_tables=True)
    report = rj.table_copies(_one_call_per_table(tx), *_inputs(tx), table_bytes=ITEMS * DIM * 4)
    assert not report.ok
    assert len(report.copies) >= 2, report.copies
    assert "Look each table up once" in str(report)


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("mode", ["lazy", "keras", "dense"])
def test_the_docs_recipe_has_no_table_sized_copy(mode: str) -> None:
    namespace = run_page("sparse.md")  # its own assert checks the page's lazy step
    tx = rj.rmsprop(0.01, convention="keras3", sparse_mode=mode, sparse_tables=True)
    namespace["tx"] = tx  # the recipe's step reads the global `tx`
    step = jax.jit(namespace["two_table_step"].__wrapped__, donate_argnums=(0, 1))
    report = rj.table_copies(step, *_inputs(tx), table_bytes=ITEMS * DIM * 4)
    assert report.ok, str(report)
    assert report.copies == []


def test_table_copies_needs_a_jitted_step() -> None:
    with pytest.raises(TypeError, match=r"`step` must be a jax.jit-wrapped function"):
        rj.table_copies(lambda x: x, jnp.ones(2))
