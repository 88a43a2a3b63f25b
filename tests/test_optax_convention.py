"""convention="optax" against optax.rmsprop itself, an independent implementation."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
from tests.conformance.tolerance import assert_close_along_path, path_length
from tests.reference import long_gradients

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)


def _grads(step: int) -> dict[str, jax.Array]:
    key = jax.random.fold_in(jax.random.key(7), step)
    grads = {"w": jax.random.normal(key, (4, 3)), "b": jax.random.normal(key, (3,))}
    if step == 2:  # an all-zero gradient step
        grads = jax.tree.map(jnp.zeros_like, grads)
    return grads


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize(
    "learning_rate",
    [0.01, optax.exponential_decay(0.1, transition_steps=2, decay_rate=0.5)],
    ids=["constant", "schedule"],
)
def test_matches_optax_rmsprop(
    centered: bool, momentum: float, nesterov: bool, learning_rate: Any, maybe_jit: Any
) -> None:
    ours = rj.rmsprop(
        learning_rate,
        rho=0.85,
        momentum=momentum,
        epsilon=1e-6,
        centered=centered,
        nesterov=nesterov,
        convention="optax",
    )
    theirs = optax.rmsprop(
        learning_rate,
        decay=0.85,
        eps=1e-6,
        centered=centered,
        momentum=momentum or None,
        nesterov=nesterov,
    )
    params_ours = params_theirs = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
    state_ours, state_theirs = ours.init(params_ours), theirs.init(params_theirs)
    update_ours, update_theirs = maybe_jit(ours.update), maybe_jit(theirs.update)
    for step in range(8):
        u_ours, state_ours = update_ours(_grads(step), state_ours, params_ours)
        u_theirs, state_theirs = update_theirs(_grads(step), state_theirs, params_theirs)
        params_ours = rj.apply_updates(params_ours, u_ours)
        params_theirs = optax.apply_updates(params_theirs, u_theirs)
        for name in params_ours:
            np.testing.assert_allclose(params_ours[name], params_theirs[name], rtol=1e-5, atol=1e-6)


# --- issue 12: long runs, rho near 1, gradients from 1e-4 to 1e2, complex params -------------


def _trajectory(tx: Any, params0: jax.Array, grads: jax.Array) -> np.ndarray:
    @jax.jit
    @jax.numpy_dtype_promotion("standard")  # optax mixes complex and real dtypes itself
    def run(params: jax.Array, grads: jax.Array) -> jax.Array:
        def body(carry: Any, grad: jax.Array) -> tuple[Any, jax.Array]:
            params, state = carry
            updates, state = tx.update(grad, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), params

        return jax.lax.scan(body, (params, tx.init(params)), grads)[1]

    return np.asarray(run(params0, grads))


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=["f32", "c64"])
@pytest.mark.parametrize("rho", [0.99, 0.999, 0.9999])
@pytest.mark.parametrize(
    "centered,momentum,nesterov",
    [(False, None, False), (True, 0.9, False), (False, 0.9, True)],
    ids=["plain", "centered_momentum", "nesterov"],
)
def test_two_hundred_steps_match_optax_rmsprop(
    dtype: Any, rho: float, centered: bool, momentum: float | None, nesterov: bool
) -> None:
    """optax.rmsprop live: 1 - rho rounded once from the Python float, |g|^2 for complex."""
    complex_run = dtype == jnp.complex64
    grads = np.stack(
        [
            long_gradients.dense(t) + (1j * long_gradients.dense(t, 1) if complex_run else 0)
            for t in range(long_gradients.STEPS)
        ]
    ).astype(dtype)
    p0 = long_gradients.params0() + (1j * long_gradients.params0(1) if complex_run else 0)
    params0 = jnp.asarray(p0.astype(dtype))
    kwargs = dict(centered=centered, momentum=momentum, nesterov=nesterov)
    ours = _trajectory(
        rj.rmsprop(1e-2, rho=rho, epsilon=1e-8, convention="optax", **kwargs), params0, grads
    )
    theirs = _trajectory(optax.rmsprop(1e-2, decay=rho, eps=1e-8, **kwargs), params0, grads)
    path = path_length(theirs, np.asarray(params0))
    for step in range(0, long_gradients.STEPS, 10):
        assert_close_along_path(ours[step], theirs[step], path[step], what=f"step {step + 1}")
