"""Train a Flax Linen model with a ``TrainState`` whose ``tx`` is ``rj.rmsprop(...)``.

A small classifier learns which of three synthetic Gaussian blobs a point comes from.

Run: ``python docs/examples/flax_linen.py --steps 200``
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

import rmsprop_jax as rj


class Classifier(nn.Module):
    """Dense -> relu -> Dense logits."""

    classes: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """The logits of ``x``."""
        return nn.Dense(self.classes)(nn.relu(nn.Dense(32)(x)))


def make_data(key: jax.Array, samples: int = 512) -> tuple[jax.Array, jax.Array]:
    """Points around three centres, and the index of their centre."""
    key_label, key_noise = jax.random.split(key)
    labels = jax.random.randint(key_label, (samples,), 0, 3)
    centres = jnp.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return centres[labels] + 0.7 * jax.random.normal(key_noise, (samples, 2)), labels


def main(steps: int = 200, seed: int = 0) -> list[float]:
    """Trains the classifier for ``steps`` full-batch steps; returns the loss at each step."""
    key_data, key_init = jax.random.split(jax.random.key(seed))
    x, labels = make_data(key_data)
    model = Classifier()
    state = train_state.TrainState.create(
        apply_fn=model.apply,
        params=model.init(key_init, x[:1])["params"],
        tx=rj.rmsprop(learning_rate=1e-2, rho=0.9, momentum=0.9),
    )

    @jax.jit
    def train_step(
        state: train_state.TrainState, x: jax.Array, labels: jax.Array
    ) -> tuple[train_state.TrainState, jax.Array]:
        def loss_fn(params: dict) -> jax.Array:
            logits = state.apply_fn({"params": params}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    losses = []
    for _ in range(steps):
        state, loss = train_step(state, x, labels)
        losses.append(float(loss))
    accuracy = float(
        jnp.mean(jnp.argmax(state.apply_fn({"params": state.params}, x), -1) == labels)
    )
    print(
        f"flax.linen classifier: loss {losses[0]:.4f} -> {losses[-1]:.4f}, accuracy {accuracy:.3f}"
    )
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed)
