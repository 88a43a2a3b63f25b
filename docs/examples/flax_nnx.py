"""Train a Flax NNX model with ``nnx.Optimizer(model, rj.rmsprop(...))``.

A two-layer MLP learns a synthetic regression target, y = sin(x @ a), generated on the spot.
``rj.rmsprop`` is an optax transformation, so NNX's optimizer wraps it like any other.

Run: ``python docs/examples/flax_nnx.py --steps 300``
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from flax import nnx

import rmsprop_jax as rj


class MLP(nnx.Module):
    """Two dense layers with a tanh between them."""

    def __init__(self, features: int, hidden: int, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(features, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """The prediction for ``x``."""
        return self.out(jnp.tanh(self.hidden(x)))


def main(steps: int = 300, seed: int = 0) -> list[float]:
    """Trains the MLP for ``steps`` full-batch steps and returns the loss at each step."""
    key_x, key_a = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(key_x, (256, 8))
    y = jnp.sin(x @ jax.random.normal(key_a, (8, 1)))

    model = MLP(8, 32, rngs=nnx.Rngs(seed))
    # tf.keras numbers by default; convention="torch" etc. for another framework's.
    tx = rj.rmsprop(learning_rate=3e-3, rho=0.9, momentum=0.9, centered=True)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model: MLP, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
        def loss_fn(model: MLP) -> jax.Array:
            return jnp.mean((model(x) - y) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(train_step(model, optimizer, x, y)) for _ in range(steps)]
    print(f"flax.nnx MLP: loss {losses[0]:.4f} -> {losses[-1]:.4f} in {steps} steps")
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed)
