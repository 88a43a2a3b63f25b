"""The compiled training step: no buffers beyond the returned state, exact state bytes, layouts.

These check what `benchmarks/suite.py` reports for speed with facts that do not depend on timing:
XLA's memory analysis of the donated, jitted step, the bytes the state holds per parameter, and
that stacking same-shape leaves (the layout the benchmarks recommend for many small tensors)
gives bit-identical numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

PARAMS = {"kernel": (64, 32), "bias": (32,), "scale": (7, 3, 5)}
SIZE = sum(int(np.prod(shape)) for shape in PARAMS.values())

SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "centered": {"centered": True},
    "centered+momentum": {"centered": True, "momentum": 0.9},
    "torch": {"convention": "torch", "momentum": 0.9, "centered": True},
    "optax": {"convention": "optax", "momentum": 0.9},
    "clipnorm": {"clipnorm": 1.0, "momentum": 0.9},
    "global_clipnorm": {"global_clipnorm": 1.0},
}


def make_tree(dtype: jnp.dtype, scale: float, seed: int) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        name: jnp.asarray(scale * rng.standard_normal(shape), dtype)
        for name, shape in PARAMS.items()
    }


def compiled_step(tx: optax.GradientTransformation, params: Any) -> tuple[Any, Any, Any]:
    state = tx.init(params)
    grads = jax.tree.map(lambda p: 0.1 * p, params)

    def step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    return compiled, state, grads


def state_buffers(options: dict[str, Any]) -> int:
    """Per-parameter buffers the options need: ms, plus mg if centered, plus momentum if > 0."""
    return 1 + int(options.get("centered", False)) + int(options.get("momentum", 0.0) > 0)


# Settings whose step reads one per-parameter value in two kernels: the scaled gradient that both
# the momentum buffer and Nesterov's look-ahead use, or the gradient read once for its norm and
# again to scale it. XLA keeps that value in one gradient-sized temporary (optax.rmsprop and
# optax.clip_by_global_norm do the same); the others run entirely in the donated buffers.
ONE_TEMPORARY = {"nesterov", "clipnorm", "global_clipnorm"}


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize(
    ("param_dtype", "state_dtype"),
    [(jnp.float32, None), (jnp.bfloat16, None), (jnp.bfloat16, jnp.float32)],
)
def test_donated_step_allocates_nothing_beyond_its_state(
    setting: str, param_dtype: jnp.dtype, state_dtype: jnp.dtype | None
) -> None:
    params = make_tree(param_dtype, 1.0, seed=0)
    tx = rj.rmsprop(1e-3, state_dtype=state_dtype, **SETTINGS[setting])
    compiled, state, grads = compiled_step(tx, params)
    memory = compiled.memory_analysis()
    grad_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(grads))
    if setting in ONE_TEMPORARY:
        assert memory.temp_size_in_bytes <= 4 * SIZE + 64  # one float32 gradient-sized value
    else:
        assert memory.temp_size_in_bytes == 0
    # Every output (params and state) is written into a donated input buffer.
    out_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves((params, state)))
    assert memory.alias_size_in_bytes == out_bytes
    assert memory.argument_size_in_bytes == out_bytes + grad_bytes


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize(
    ("param_dtype", "state_dtype"),
    [(jnp.float32, None), (jnp.bfloat16, None), (jnp.bfloat16, jnp.float32)],
)
def test_state_bytes_are_exactly_what_the_options_need(
    setting: str, param_dtype: jnp.dtype, state_dtype: jnp.dtype | None
) -> None:
    options = SETTINGS[setting]
    tx = rj.rmsprop(1e-3, state_dtype=state_dtype, **options)
    state = tx.init(make_tree(param_dtype, 1.0, seed=0))
    itemsize = jnp.dtype(state_dtype or param_dtype).itemsize
    per_param = [leaf for leaf in jax.tree.leaves(state) if leaf.ndim > 0]
    scalars = [leaf for leaf in jax.tree.leaves(state) if leaf.ndim == 0]
    assert sum(leaf.nbytes for leaf in per_param) == SIZE * itemsize * state_buffers(options)
    # One int32 step count (the chain's clock) and nothing else per step.
    assert [(leaf.dtype, leaf.shape) for leaf in scalars] == [(jnp.int32, ())]


def test_sparse_dense_mode_adds_only_one_int32_per_table_row() -> None:
    shape = (100, 8)
    tx = rj.rmsprop(1e-3, momentum=0.9, sparse_mode="dense", sparse_tables={"emb": True})
    state = tx.init({"emb": jnp.zeros(shape)})
    leaves = jax.tree.leaves(state)
    rows = [leaf for leaf in leaves if leaf.dtype == jnp.int32 and leaf.ndim == 1]
    floats = [leaf for leaf in leaves if leaf.dtype == jnp.float32]
    assert sum(leaf.nbytes for leaf in floats) == 2 * 100 * 8 * 4  # ms and momentum
    assert [leaf.shape for leaf in rows] == [(100,)]  # one per table row: the chain's clock


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if s not in ("clipnorm", "global_clipnorm")]
)
def test_stacked_leaves_give_bit_identical_numbers(setting: str) -> None:
    """Stacking same-shape leaves (scan over layers) changes the layout, not the numbers.

    Per-tensor ``clipnorm`` is the exception by definition: it clips each tensor's norm, and
    stacking makes one tensor of many.
    """
    rng = np.random.default_rng(1)
    leaves = [jnp.asarray(rng.standard_normal(50), jnp.float32) for _ in range(20)]
    grads = [[jnp.asarray(rng.standard_normal(50), jnp.float32) for _ in range(20)]] * 2
    grads += [[jnp.zeros(50, jnp.float32)] * 20]
    tx = rj.rmsprop(1e-2, **SETTINGS[setting])
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))

    def run(params: Any, per_step: list[Any]) -> Any:
        state = tx.init(params)
        for g in per_step:
            updates, state = step(params, state, g)
            params = rj.apply_updates(params, updates)
        return params

    separate = run(leaves, grads)
    stacked = run(jnp.stack(leaves), [jnp.stack(g) for g in grads])
    np.testing.assert_array_equal(np.stack(separate), stacked)


def test_stacked_global_clipping_matches_to_rounding() -> None:
    """The global norm sums the same squares in another order: equal up to float rounding."""
    rng = np.random.default_rng(2)
    leaves = [jnp.asarray(rng.standard_normal(50), jnp.float32) for _ in range(20)]
    grads = [jnp.asarray(3 * rng.standard_normal(50), jnp.float32) for _ in range(20)]
    tx = rj.rmsprop(1e-2, global_clipnorm=1.0)
    separate, _ = tx.update(grads, tx.init(leaves), leaves)
    stacked, _ = tx.update(jnp.stack(grads), tx.init(jnp.stack(leaves)), jnp.stack(leaves))
    np.testing.assert_allclose(np.stack(separate), stacked, rtol=1e-6, atol=0)
