"""The sparse driver's bookkeeping: one step counter and one int32 per row of each named table,
and its state read by name."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
import rmsprop_jax.keras as rk

SHAPE = (12, 3)
PARAMS = {"table": jnp.zeros(SHAPE), "dense": jnp.zeros(4)}
TABLES = {"table": True, "dense": False}

# (rmsprop options, whether the mode defers work on untouched rows of a named table)
OPTIONS = {
    "keras": (dict(), True),
    "keras_centered": (dict(centered=True), True),
    "keras_momentum": (dict(momentum=0.9), False),  # nothing untouched changes: no bookkeeping
    "lazy": (dict(momentum=0.9, centered=True, sparse_mode="lazy"), False),
    "dense": (dict(sparse_mode="dense"), True),
    "dense_momentum": (dict(momentum=0.9, sparse_mode="dense"), True),
    "dense_centered_nesterov": (
        dict(momentum=0.9, nesterov=True, centered=True, sparse_mode="dense"),
        True,
    ),
    "keras3_weight_decay": (dict(momentum=0.5, weight_decay=0.1, convention="keras3"), True),
    "torch_momentum": (dict(momentum=0.9, convention="torch"), True),
    "optax_schedule": (
        dict(learning_rate=optax.linear_schedule(0.1, 0.01, 10), convention="optax"),
        True,
    ),
}


def _int32_leaves(state: Any) -> list[jax.Array]:
    return [leaf for leaf in jax.tree.leaves(state) if leaf.dtype == jnp.int32]


@pytest.mark.parametrize("name", list(OPTIONS))
def test_one_int32_per_tracked_row_and_one_step_counter_whatever_the_options(name: str) -> None:
    options, defers = OPTIONS[name]
    options = {"learning_rate": 0.1, **options}
    tx = rj.rmsprop(**options, sparse_tables=TABLES)
    state = tx.init(PARAMS)
    ints = _int32_leaves(state)
    counters = [leaf for leaf in ints if leaf.shape == ()]
    rows = [leaf for leaf in ints if leaf.shape != ()]
    assert len(counters) == 1, f"{name}: {len(counters)} step counters"
    assert [r.shape for r in rows] == ([(SHAPE[0],)] if defers else [])
    # The counter counts steps (sparse and dense), and the rows' bookkeeping follows it.
    # (weight decay changes every row, so it takes dense gradients: every row is then current)
    sparse = "weight_decay" not in options
    table = rj.SparseRows(jnp.array([1, 1, 5]), jnp.ones((3, 3)), SHAPE)
    grads = {"table": table if sparse else table.todense(), "dense": jnp.ones(4)}
    for _ in range(3):
        _, state = tx.update(grads, state, PARAMS)
    (counter,) = [leaf for leaf in _int32_leaves(state) if leaf.shape == ()]
    assert int(counter) == 3
    if defers:
        (row_steps,) = [leaf for leaf in _int32_leaves(state) if leaf.shape != ()]
        expected = np.zeros(SHAPE[0], np.int32) if sparse else np.full(SHAPE[0], 3, np.int32)
        expected[[1, 5]] = 3
        np.testing.assert_array_equal(row_steps, expected)


@pytest.mark.parametrize("centered", [False, True])
def test_the_keras_front_end_keeps_one_int32_per_table_row(centered: bool) -> None:
    table = rk.Variable(np.zeros(SHAPE, np.float32), "table")
    opt = rk.RMSprop(0.1, centered=centered)  # tf.keras without momentum: ms (and mg) decay
    opt.apply_gradients([(rj.SparseRows(jnp.array([2]), jnp.ones((1, 3)), SHAPE), table)])
    # The table's own core state (its slot record), and the optimizer's `iterations`.
    ints = _int32_leaves((opt._records[id(table)].state, opt.iterations.value))
    assert [leaf.shape for leaf in ints if leaf.shape != ()] == [(SHAPE[0],)]
    # the optimizer's iteration count, and the core state's one clock
    assert len([leaf for leaf in ints if leaf.shape == ()]) == 2


def test_stages_keep_only_their_accumulators() -> None:
    assert rj.scale_by_rms(sparse_mode="dense", eps_in_sqrt=False, rho_complement="rounded").init(
        PARAMS
    )._fields == ("ms",)
    assert rj.scale_by_centered_rms(
        sparse_mode="dense", eps_in_sqrt=False, rho_complement="rounded"
    ).init(PARAMS)._fields == ("ms", "mg")
    assert rj.trace_momentum(0.9, sparse_mode="dense").init(PARAMS)._fields == ("mom",)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_the_state_is_read_by_name_whatever_the_layout(name: str) -> None:
    options, _ = OPTIONS[name]
    tx = rj.rmsprop(**{"learning_rate": 0.1, **options}, sparse_tables=TABLES)
    params = {"table": jnp.ones(SHAPE), "dense": jnp.ones(4)}
    grads = {"table": jnp.full(SHAPE, 2.0), "dense": jnp.full(4, 2.0)}
    _, state = tx.update(grads, tx.init(params), params)
    rho_weight = (
        np.float32(1 - np.float32(0.9)) if options.get("convention", "keras") == "keras" else 0.1
    )
    ms = optax.tree.get(state, "ms")
    np.testing.assert_allclose(ms["table"], np.full(SHAPE, 4 * rho_weight), rtol=1e-6)
    np.testing.assert_allclose(ms["dense"], np.full(4, 4 * rho_weight), rtol=1e-6)
    if options.get("momentum"):
        assert optax.tree.get(state, "mom")["table"].shape == SHAPE
