"""The demo: train a small model with `rmsprop` on synthetic data and print the loss falling."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._alias import rmsprop
from ._updates import apply_updates

__all__ = ["run_demo"]


def _make_data(key: jax.Array, samples: int) -> tuple[jax.Array, jax.Array]:
    """A synthetic regression problem: y = sin(x @ a) + noise, generated on the spot."""
    key_x, key_a, key_noise = jax.random.split(key, 3)
    x = jax.random.normal(key_x, (samples, 8))
    a = jax.random.normal(key_a, (8, 1))
    y = jnp.sin(x @ a) + 0.05 * jax.random.normal(key_noise, (samples, 1))
    return x, y


def _init_mlp(key: jax.Array) -> dict[str, jax.Array]:
    key_1, key_2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(key_1, (8, 32)) / jnp.sqrt(8.0),
        "b1": jnp.zeros(32),
        "w2": jax.random.normal(key_2, (32, 1)) / jnp.sqrt(32.0),
        "b2": jnp.zeros(1),
    }


def _loss(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
    return jnp.mean((hidden @ params["w2"] + params["b2"][None, :] - y) ** 2)


def run_demo(steps: int = 300, learning_rate: float = 1e-2, seed: int = 0) -> list[float]:
    """Trains a two-layer MLP with ``rmsprop`` and prints the loss every tenth of the run.

    Args:
      steps: number of training steps.
      learning_rate: the RMSprop learning rate.
      seed: seed of the synthetic data and the initial weights.

    Returns:
      The loss before each printed step, first to last.
    """
    key_data, key_params = jax.random.split(jax.random.key(seed))
    x, y = _make_data(key_data, 512)
    params = _init_mlp(key_params)
    tx = rmsprop(learning_rate=learning_rate, momentum=0.9, centered=True)
    state = tx.init(params)

    @jax.jit
    def step(params: dict[str, jax.Array], state: Any) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(_loss)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state, loss

    print(f"rmsprop_jax demo: 2-layer MLP, {x.shape[0]} samples, {steps} steps, lr={learning_rate}")
    every = max(1, steps // 10)
    losses = []
    for i in range(steps):
        params, state, loss = step(params, state)
        if i % every == 0 or i == steps - 1:
            losses.append(float(loss))
            print(f"step {i:5d}  loss {float(loss):.5f}")
    print(f"loss fell from {losses[0]:.5f} to {losses[-1]:.5f}")
    return losses
