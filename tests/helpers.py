"""Helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj


def run_stage(
    tx: optax.GradientTransformation,
    inputs: Sequence[Any],
    params: Any,
    maybe_jit: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> tuple[list[Any], list[Any]]:
    """Applies ``tx.update`` to each input in turn from ``tx.init(params)``; returns the outputs
    and the state after each step."""
    update = maybe_jit(tx.update)
    state = tx.init(params)
    outs, states = [], []
    for value in inputs:
        # A dict is a gradient tree; anything else (a list of numbers too) is one array.
        grads = jax.tree.map(jnp.asarray, value) if isinstance(value, dict) else jnp.asarray(value)
        out, state = update(grads, state)
        outs.append(out)
        states.append(state)
    return outs, states


def bits(tree: Any) -> list[tuple[str, str, bytes]]:
    """Every leaf's path, dtype and raw bytes: equal bits, not equal values (-0.0 != 0.0)."""
    return [
        (jax.tree_util.keystr(path), str(np.asarray(leaf).dtype), np.asarray(leaf).tobytes())
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    ]


def assert_bitwise_equal(got: Any, want: Any) -> None:
    """Asserts that two trees have the same structure and the same bits in every leaf."""
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for (path, dtype, raw), (_, want_dtype, want_raw) in zip(bits(got), bits(want), strict=True):
        assert dtype == want_dtype, path
        assert raw == want_raw, f"{path} differs"


def compile_sparse_step(
    tx: optax.GradientTransformation, rows: int, dim: int, k: int
) -> jax.stages.Compiled:
    """The jitted, donated step of ``tx`` on a ``[rows, dim]`` table given ``k`` looked-up rows.

    Params and state are donated; the gradient is ``SparseRows(indices, values)`` built inside
    the step from an int32 ``[k]`` and a float32 ``[k, dim]`` argument.
    """
    params = {"table": jnp.zeros((rows, dim))}

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
        grads = {"table": rj.SparseRows(indices, values, (rows, dim))}
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    return (
        jax.jit(step, donate_argnums=(0, 1))
        .lower(params, tx.init(params), jnp.zeros(k, jnp.int32), jnp.zeros((k, dim)))
        .compile()
    )


SLOT_NAMES = ("ms", "mg", "mom")  # the names tests/reference/record.py gives the accumulators


def slots(state: Any) -> dict[str, Any]:
    """The accumulators of a chained ``rj.rmsprop`` state, under the recordings' names.

    Each stage's state that has an ``ms``, ``mg`` or ``mom`` field gives it (the mean square, the
    mean gradient of the centered variant, the momentum buffer); a later stage's field of the
    same name would replace an earlier one's, and no chain has two.
    """
    found: dict[str, Any] = {}
    for stage in state:
        for name in SLOT_NAMES:
            if getattr(stage, name, None) is not None:  # the sparse driver keeps None for no slot
                found[name] = getattr(stage, name)
    return found


def recorded_sparse_grads(
    case: dict[str, Any], step: int, shape: tuple[int, int]
) -> dict[str, Any]:
    """A recorded tf.keras sparse case's gradients at ``step``: the table's as `rj.SparseRows`."""
    grads = case["grads"][step]
    table = grads["table"]
    values = np.asarray(table["values"], np.float32).reshape(-1, shape[1])
    return {
        "table": rj.SparseRows(np.asarray(table["indices"], np.int32), values, shape),
        "dense": np.asarray(grads["dense"], np.float32),
    }


def pairwise(axes: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """A few combinations of the axes' values in which every pair of values of every two axes
    appears at least once (a greedy covering array): for a property that may depend on any two
    axes together but is too costly to test on the full product.

    Deterministic: the same axes give the same combinations, in the same order.
    """
    names = list(axes)

    def pair(a: str, i: int, b: str, j: int) -> tuple[str, int, str, int]:
        return (a, i, b, j) if names.index(a) < names.index(b) else (b, j, a, i)

    uncovered = {
        pair(a, i, b, j)
        for x, a in enumerate(names)
        for b in names[x + 1 :]
        for i in range(len(axes[a]))
        for j in range(len(axes[b]))
    }
    rows: list[dict[str, int]] = []
    while uncovered:
        a, i, b, j = min(uncovered)
        row = {a: i, b: j}
        for name in names:  # the value of each other axis that covers the most new pairs
            if name not in row:
                gains = [
                    sum(pair(n, row[n], name, k) in uncovered for n in row)
                    for k in range(len(axes[name]))
                ]
                row[name] = gains.index(max(gains))
        rows.append(row)
        uncovered -= {pair(p, row[p], q, row[q]) for p in row for q in row if p != q}
    return [{name: axes[name][row[name]] for name in names} for row in rows]


def eager_and_some_jit(
    params: Sequence[Any], jit_every: int, ids: Callable[[Any], str] | None = None
) -> list[Any]:
    """``(param, jit)`` pairs: every param eagerly, and every ``jit_every``-th under ``jax.jit``.

    For the recorded-trajectory tests, whose code is the same Python traced or not: the eager
    run checks every case, the jitted ones check that compiling changes nothing (jit is also
    where each new gradient shape costs a compilation, the bulk of these tests' time).
    """
    out = []
    for jit in (False, True):
        for k, param in enumerate(params):
            if jit and k % jit_every:
                continue
            is_set = isinstance(param, type(pytest.param()))  # a pytest.param(...)
            values = param.values if is_set else (param,)
            name = param.id if is_set else (ids(param) if ids else str(k))
            out.append(pytest.param(*values, jit, id=f"{'jit' if jit else 'eager'}-{name}"))
    return out
