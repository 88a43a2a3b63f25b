"""Optax's optimizer battery, ported for every convention x {no momentum, momentum, Nesterov} x
centered.

Ported in this project's words from optax/_src/alias_test.py (``test_optimization``,
``test_optimizers_accept_extra_args``, ``test_optimizers_can_be_wrapped_in_inject_hyperparams``,
``test_preserve_dtype``, ``test_state_shape_dtype_shard_stability``,
``test_gradient_accumulation``), optax/_src/transform_test.py (``test_scalers``) and
optax/_src/sharding_test.py (``test_init_with_abstract_input``).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
from tests.helpers import pairwise

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

MOMENTA = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
}
CONFIGS = [
    pytest.param(
        {"convention": convention, "centered": centered, **kwargs},
        id=f"{convention}-{name}{'-centered' if centered else ''}",
    )
    for convention in rj.CONVENTIONS
    for name, kwargs in MOMENTA.items()
    for centered in (False, True)
]


def _abs_sq(x: jax.Array) -> jax.Array:
    return (jnp.conj(x) * x).real


def _parabola(dtype: Any) -> tuple[jax.Array, jax.Array, Any]:
    start = jnp.array([-1.0, 10.0, 1.0], dtype)
    target = jnp.array([1.0, -1.0, 1.0], dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        target = target * jnp.asarray(1 + 1j, dtype)
    return start, target, lambda p: jnp.sum(_abs_sq(p - target))


def _rosenbrock(dtype: Any) -> tuple[jax.Array, jax.Array, Any]:
    a = jnp.asarray(1 + 1j if jnp.issubdtype(dtype, jnp.complexfloating) else 1.0, dtype)
    start = jnp.zeros(2, dtype)
    target = jnp.stack([a, a * a])

    def objective(p: jax.Array) -> jax.Array:
        return _abs_sq(a - p[0]) + 100.0 * _abs_sq(p[1] - p[0] ** 2)

    return start, target, objective


def _descent_direction(grads: Any) -> Any:
    # JAX's gradient of a real loss in a complex param is the conjugate of the descent direction
    # (https://gist.github.com/wdphy16/118aef6fb5f82c49790d7678cf87da29), as in optax's battery.
    return jax.tree.map(jnp.conj, grads)


def _converges_on_complex(convention: str) -> bool:
    """TF's complex kernels divide g by sqrt(mean of the complex g*g), a rotation, not a scale:
    that is TF's behaviour (checked against recorded TF runs in test_long_recorded.py), and it
    does not descend a complex objective, so convergence is only asked of the other rules."""
    return rj.CONVENTIONS[convention].complex_square in ("abs", "split")


# Every config in float32; in complex64 those whose complex rule descends (TF's g*g rule is
# compared with TF's own numbers instead, in test_long_recorded.py).
RUNS = [
    pytest.param(*config.values, dtype, id=f"{config.id}-{dtype_id}")
    for config in CONFIGS
    for dtype, dtype_id in ((jnp.float32, "f32"), (jnp.complex64, "c64"))
    if dtype_id == "f32" or _converges_on_complex(config.values[0]["convention"])
]


@pytest.mark.slow  # 84 compiled 10,000-step runs: about 80 s on 2 cores
@pytest.mark.parametrize("target", [_parabola, _rosenbrock], ids=["parabola", "rosenbrock"])
@pytest.mark.parametrize(("config", "dtype"), RUNS)
def test_optimization(config: dict[str, Any], target: Any, dtype: Any) -> None:
    tx = rj.rmsprop(5e-3, **config)
    start, want, objective = target(dtype)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params: jax.Array, state: Any) -> tuple[jax.Array, Any]:
        grads = _descent_direction(jax.grad(objective)(params))
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    chex.clear_trace_counter()
    params, state = step(start, tx.init(start))
    params, state = step(params, state)  # a second call must not recompile

    @jax.jit
    def run(params: jax.Array, state: Any) -> jax.Array:
        def body(carry: Any, _: None) -> tuple[Any, None]:
            params, state = carry
            grads = _descent_direction(jax.grad(objective)(params))
            updates, state = tx.update(grads, state, params)
            return (rj.apply_updates(params, updates), state), None

        return jax.lax.scan(body, (params, state), None, length=10_000)[0][0]

    np.testing.assert_allclose(run(params, state), want, rtol=3e-2, atol=3e-2)


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("config", CONFIGS)
def test_accepts_extra_args_inject_and_multisteps(config: dict[str, Any]) -> None:
    tx = rj.rmsprop(5e-3, **config)
    params = [-jnp.ones((2, 3)), jnp.ones((2, 5, 2))]
    grads = [jnp.ones((2, 3)), -jnp.ones((2, 5, 2))]

    # optax's test_optimizers_accept_extra_args
    updates, state = jax.jit(
        lambda g, s, p: tx.update(g, s, p, unexpected_extra_args_your_optimizer_doesnt_expect=1)
    )(grads, jax.jit(tx.init)(params), params)

    # test_optimization's "tree_map_params works": a no-op map over the state's params
    chex.assert_trees_all_equal(optax.tree.map_params(tx, lambda v: v, state), state)

    # test_optimizers_can_be_wrapped_in_inject_hyperparams, with both injectors
    for inject in (rj.inject_hyperparams, optax.inject_hyperparams):
        injected = inject(rj.rmsprop)(learning_rate=5e-3, **config)
        with jax.numpy_dtype_promotion("standard"):  # optax casts with Python floats
            got, got_state = injected.update(grads, injected.init(params), params)
        # optax's injector also injects the default rho: fl(1 - fl(rho)), 3e-7 relative at 0.9
        chex.assert_trees_all_close(got, updates, rtol=1e-6)
        chex.assert_trees_all_close(got_state.inner_state, state, rtol=1e-6)

    # test_gradient_accumulation: MultiSteps emits zeros until the k-th microbatch
    with jax.numpy_dtype_promotion("standard"):  # optax.MultiSteps mixes dtypes itself
        multi = optax.MultiSteps(tx, every_k_schedule=4)
        p = jnp.array([1.0, 2.0])
        u, _ = multi.update(2 * p, multi.init(p), p)
    np.testing.assert_array_equal(u, jnp.zeros(2))


def _pairwise_configs(dtypes: list[Any]) -> list[Any]:
    """Every pair of (convention, momentum, centered, dtype) values once: these properties may
    depend on any two of them, and the full product repeats each pair many times."""
    axes = {
        "convention": list(rj.CONVENTIONS),
        "momentum": list(MOMENTA),
        "centered": [False, True],
        "dtype": dtypes,
    }
    return [
        pytest.param(
            {"convention": c["convention"], "centered": c["centered"], **MOMENTA[c["momentum"]]},
            c["dtype"],
            id=f"{c['convention']}-{c['momentum']}{'-centered' if c['centered'] else ''}-"
            f"{jnp.dtype(c['dtype']).name}",
        )
        for c in pairwise(axes)
    ]


@pytest.mark.parametrize(("config", "dtype"), _pairwise_configs([jnp.bfloat16, jnp.float32]))
def test_updates_keep_the_gradient_dtype(config: dict[str, Any], dtype: Any) -> None:
    tx = rj.rmsprop(5e-3, **config)
    params = jnp.array([1.0, 2.0], dtype)
    grads = jax.grad(lambda x: jnp.sum(x**2))(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates.dtype == grads.dtype


DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64, jnp.complex64, jnp.complex128]


@pytest.mark.parametrize(("config", "dtype"), _pairwise_configs(DTYPES))
def test_state_dtype_and_shape_stable_through_cond(config: dict[str, Any], dtype: Any) -> None:
    with jax.enable_x64(dtype in (jnp.float64, jnp.complex128)):
        tx = rj.rmsprop(5e-3, **config)
        params, _, objective = _parabola(dtype)

        def step(params: jax.Array, state: Any) -> tuple[jax.Array, Any]:
            grads = _descent_direction(jax.grad(objective)(params))
            # lax.cond needs both branches to give the same types: a state that changed dtype
            # or shape in update would fail here (optax's test_state_shape_dtype_shard_stability)
            cond = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
            updates, state = jax.lax.cond(
                cond, lambda: tx.update(grads, state, params), lambda: (params, state)
            )
            return rj.apply_updates(params, updates), state

        # Tracing is where a type mismatch between the branches fails, so eval_shape (trace,
        # no compile) checks what optax's jitted version checks.
        state = tx.init(params)
        new_params, new_state = jax.eval_shape(step, params, state)
        assert new_params.dtype == dtype
        chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)


@pytest.mark.parametrize("config", CONFIGS)
def test_scalers_and_abstract_init(config: dict[str, Any]) -> None:
    # transform_test.py's test_scalers: finite state and updates, shapes kept, under jit
    tx = rj.rmsprop(1.0, **config)
    params = (jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
    grads = (jnp.array([500.0, 5.0]), jnp.array([300.0, 3.0]))
    state = tx.init(params)
    chex.assert_tree_all_finite(state)
    updates, state = tx.update(grads, state, params)
    chex.assert_tree_all_finite((params, updates, state))
    chex.assert_trees_all_equal_shapes(params, updates)
    # sharding_test.py's test_init_with_abstract_input
    abstract = jax.ShapeDtypeStruct(shape=(2, 4, 8), dtype=jnp.float32)
    chex.assert_trees_all_equal_shapes_and_dtypes(tx.init(abstract), tx.init(jnp.zeros((2, 4, 8))))
