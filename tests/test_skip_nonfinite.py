"""`rj.skip_nonfinite`: a step with NaN or Inf gradients leaves params and state bit for bit as
they were, for dense and sparse trees, eager and jitted, and in the Keras front end."""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
from rmsprop_jax import keras as rk
from tests.helpers import assert_bitwise_equal, compile_sparse_step

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

SHAPE = (10, 3)
TABLES = {"table": True, "dense": False}

CONFIGS = {
    "dense_centered_momentum_schedule": dict(
        learning_rate=optax.exponential_decay(0.1, 1, 0.5), momentum=0.9, centered=True
    ),
    "keras_sparse_row_steps": dict(learning_rate=0.1, sparse_tables=TABLES),
    "dense_mode_momentum": dict(
        learning_rate=0.1, momentum=0.9, sparse_mode="dense", sparse_tables=TABLES
    ),
    "lazy_centered_torch": dict(
        learning_rate=0.1, centered=True, sparse_mode="lazy", convention="torch"
    ),
}


def params0() -> dict[str, jax.Array]:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=4).astype(np.float32)
    dense[0] = -0.0  # a negative zero survives a skipped step: w + (-0.0) is w
    return {"table": jnp.asarray(rng.normal(size=SHAPE), jnp.float32), "dense": jnp.asarray(dense)}


def grads_at(step: int, sparse: bool, poison: float | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(100 + step)
    indices = rng.integers(0, SHAPE[0], size=4).astype(np.int32)
    values = rng.normal(size=(4, SHAPE[1])).astype(np.float32)
    dense = rng.normal(size=4).astype(np.float32)
    dense[0] = 0.0  # keeps the negative zero's gradient at zero
    if poison is not None:
        (values if sparse else dense)[1, ...] = poison
    table: Any = rj.SparseRows(indices, values, SHAPE) if sparse else np.zeros(SHAPE, np.float32)
    if not sparse:
        table[indices] = values
    return {"table": table, "dense": dense}


def run(tx: optax.GradientTransformation, grads: list[Any], update: Any) -> tuple[Any, Any]:
    params = params0()
    state = tx.init(params)
    for g in grads:
        updates, state = update(g, state, params)
        params = rj.apply_updates(params, updates)
    return params, state


@pytest.mark.fast_share(3)
@pytest.mark.parametrize(
    "name,poison", zip(CONFIGS, [np.nan, np.inf, -np.inf, np.nan], strict=True), ids=list(CONFIGS)
)
def test_a_nonfinite_step_is_invisible(name: str, poison: float, maybe_jit: Any) -> None:
    sparse = name != "dense_centered_momentum_schedule"
    tx = rj.skip_nonfinite(rj.rmsprop(**CONFIGS[name]))
    update = maybe_jit(tx.update)
    clean = [grads_at(step, sparse) for step in range(5)]
    # The uninterrupted run, and the same run with a bad batch before step 3: after it, params
    # and every accumulator, step count and row bookkeeping are the same bits.
    want_params, want_state = run(tx, clean, update)
    bad = grads_at(99, sparse, poison)
    params, state = run(tx, clean[:3], update)
    updates, after = update(bad, state, params)
    assert_bitwise_equal(after.inner_state, state.inner_state)
    assert int(after.skipped) == 1 and after.skipped.dtype == jnp.int32
    assert_bitwise_equal(rj.apply_updates(params, updates), params)
    assert np.signbit(np.asarray(params["dense"][0]))  # the -0.0 is still there
    for leaf in jax.tree.leaves(updates, is_leaf=lambda x: isinstance(x, rj.SparseRows)):
        if isinstance(leaf, rj.SparseRows):
            assert not np.any(np.asarray(leaf.valid()))  # no row named
            leaf = leaf.values
        assert np.all(np.asarray(leaf) == 0) and np.all(np.signbit(np.asarray(leaf)))
    params = rj.apply_updates(params, updates)
    for g in clean[3:]:
        updates, after = update(g, after, params)
        params = rj.apply_updates(params, updates)
    assert_bitwise_equal(params, want_params)
    assert_bitwise_equal(after.inner_state, want_state.inner_state)
    assert int(after.skipped) == 1 and int(want_state.skipped) == 0


def test_finite_steps_equal_the_unwrapped_optimizer(maybe_jit: Any) -> None:
    inner = rj.rmsprop(**CONFIGS["dense_mode_momentum"])
    grads = [grads_at(step, sparse=True) for step in range(4)]
    want_params, want_state = run(inner, grads, maybe_jit(inner.update))
    tx = rj.skip_nonfinite(inner)
    params, state = run(tx, grads, maybe_jit(tx.update))
    assert_bitwise_equal(params, want_params)
    assert_bitwise_equal(state.inner_state, want_state)
    assert int(state.skipped) == 0


def test_skipped_steps_are_counted_and_compile_once() -> None:
    tx = rj.skip_nonfinite(rj.rmsprop(0.1, momentum=0.9))
    update = jax.jit(tx.update)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    for g in ([1.0, 2.0, 3.0], [np.nan, 0, 0], [1.0, 1.0, 1.0], [0, np.inf, 0], [0, 0, -np.inf]):
        updates, state = update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        params = rj.apply_updates(params, updates)
    assert int(state.skipped) == 3
    count = optax.tree.get(state.inner_state, "count")
    assert int(count) == 2  # only the two finite steps counted (the chain's one counter)
    assert update._cache_size() == 1


def test_all_finite_reads_every_sparse_value_and_ignores_integers() -> None:
    # A NaN in a row whose index is out of range still counts: clipping by norm reads it.
    out_of_range = rj.SparseRows.from_parts(
        jnp.array([0, 12]), jnp.array([[1.0] * 3, [np.nan] * 3]), SHAPE
    )
    assert not bool(jax.jit(rj.all_finite)({"t": out_of_range}))
    assert bool(rj.all_finite({"t": rj.SparseRows(jnp.array([0]), jnp.ones((1, 3)), SHAPE)}))
    assert bool(rj.all_finite({"steps": jnp.array([2**31 - 1]), "none": None}))
    assert bool(rj.all_finite({}))
    assert not bool(rj.all_finite([jnp.ones(2, jnp.bfloat16), jnp.array([jnp.inf], jnp.float16)]))


def test_materialize_goes_through_the_wrapper() -> None:
    inner = rj.rmsprop(0.1, sparse_tables=TABLES)
    tx = rj.skip_nonfinite(inner)
    params, state = run(tx, [grads_at(step, sparse=True) for step in range(3)], tx.update)
    got_params, got_state = rj.materialize(params, state)
    want_params, want_inner = rj.materialize(params, state.inner_state)
    assert_bitwise_equal(got_params, want_params)
    assert_bitwise_equal(got_state.inner_state, want_inner)
    assert int(got_state.skipped) == 0


def test_donated_sparse_step_stays_in_place() -> None:
    # lax.cond, not jnp.where: a select would keep the old and the new table alive at once and
    # copy every accumulator on every step (measured: 12.8 MB of temporaries for this table).
    rows, dim, k = 100_000, 16, 64
    tx = rj.skip_nonfinite(rj.rmsprop(1e-3, momentum=0.9, sparse_mode="lazy"))
    compiled = compile_sparse_step(tx, rows, dim, k)
    assert compiled.memory_analysis().temp_size_in_bytes < rows * dim * 4 // 100
    copies = [
        line
        for line in compiled.as_text().splitlines()
        if re.search(rf"f32\[{rows},{dim}\]\S* (copy|select)\(", line)
    ]
    assert not copies, copies


def test_wrapping_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"`tx` must be an optax.GradientTransformation"):
        rj.skip_nonfinite(0.1)  # type: ignore[arg-type]


# --- the Keras front end --------------------------------------------------------------------


def _keras_run(opt: rk.RMSprop, grads: list[Any]) -> list[rk.Variable]:
    params = params0()
    variables = [rk.Variable(params["table"], "table"), rk.Variable(params["dense"], "dense")]
    for g in grads:
        opt.apply_gradients(zip((g["table"], g["dense"]), variables, strict=True))
    return variables


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_keras_skip_nonfinite_leaves_variables_slots_and_iterations(momentum: float) -> None:
    clean = [grads_at(step, sparse=True) for step in range(4)]
    bad = grads_at(99, sparse=True, poison=np.nan)
    want = rk.RMSprop(0.1, momentum=momentum, centered=True, skip_nonfinite=True)
    want_vars = _keras_run(want, clean[:2])
    # get_weights() applies the decay deferred on untouched sparse rows (rho**k at once rounds
    # differently from k separate decays), so both runs read their weights at the same step.
    want.get_weights()
    for g in clean[2:]:
        want.apply_gradients(zip((g["table"], g["dense"]), want_vars, strict=True))
    opt = rk.RMSprop(0.1, momentum=momentum, centered=True, skip_nonfinite=True)
    variables = _keras_run(opt, clean[:2])
    before = ([v.numpy() for v in variables], opt.get_weights())
    pairs = zip((bad["table"], bad["dense"]), variables, strict=True)
    assert int(opt.apply_gradients(pairs).numpy()) == 2
    assert_bitwise_equal(([v.numpy() for v in variables], opt.get_weights()), before)
    assert opt.skipped_steps == 1
    for g in clean[2:]:
        opt.apply_gradients(zip((g["table"], g["dense"]), variables, strict=True))
    assert_bitwise_equal(
        ([v.numpy() for v in variables], opt.get_weights()),
        ([v.numpy() for v in want_vars], want.get_weights()),
    )
    assert opt.skipped_steps == 1 and want.skipped_steps == 0


def test_keras_without_the_option_lets_nan_through() -> None:
    opt = rk.RMSprop(0.1)
    var = rk.Variable(jnp.ones(2))
    opt.apply_gradients([(jnp.array([np.nan, 1.0]), var)])
    assert np.isnan(var.numpy()[0]) and int(opt.iterations.numpy()) == 1
    assert opt.skipped_steps == 0


def test_keras_skip_nonfinite_config_and_optax_face() -> None:
    opt = rk.RMSprop(0.1, skip_nonfinite=True)
    config = opt.get_config()
    assert config["skip_nonfinite"] is True
    assert rk.RMSprop.from_config(config).skip_nonfinite
    assert "skip_nonfinite" not in rk.RMSprop(0.1).get_config()  # tf.keras's keys when off
    with pytest.raises(TypeError, match=r"`skip_nonfinite` must be True or False"):
        rk.RMSprop.from_config({"skip_nonfinite": "yes"})
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    assert isinstance(state, rj.SkipNonfiniteState)
    updates, state = opt.update({"w": jnp.array([np.inf, 1.0])}, state, params)
    assert_bitwise_equal(rj.apply_updates(params, updates), params)
    assert int(state.skipped) == 1
