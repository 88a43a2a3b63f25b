"""convention="optax" against optax.rmsprop itself, an independent implementation."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj


def _grads(step: int) -> dict[str, jax.Array]:
    key = jax.random.fold_in(jax.random.key(7), step)
    grads = {"w": jax.random.normal(key, (4, 3)), "b": jax.random.normal(key, (3,))}
    if step == 2:  # an all-zero gradient step
        grads = jax.tree.map(jnp.zeros_like, grads)
    return grads


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
