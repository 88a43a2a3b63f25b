"""Train Flax Linen models with a ``TrainState`` whose ``tx`` is ``rj.rmsprop(...)``.

A small classifier learns which of three synthetic Gaussian blobs a point comes from.

``sparse_main`` trains an ``nn.Embed`` table with ``rj.SparseRows`` gradients through the
standard ``state.apply_gradients``: the model is split at the lookup, ``rj.value_and_sparse_grad``
differentiates the loss with respect to the looked-up rows only, and ``optax.apply_updates``
(inside ``apply_gradients``) scatter-adds the touched rows.

Run: ``python docs/examples/flax_linen.py --steps 200``
"""

from __future__ import annotations

import argparse
from typing import Any

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


class Head(nn.Module):
    """The mean of a bag of embedded tokens, then one logit per class."""

    classes: int = 3

    @nn.compact
    def __call__(self, rows: jax.Array) -> jax.Array:
        """The logits for rows of shape ``[batch, bag, dim]``."""
        return nn.Dense(self.classes)(rows.mean(axis=1))


def sparse_main(steps: int = 200, seed: int = 0, vocab: int = 5_000) -> dict[str, Any]:
    """Trains an embedding table and a head; the table's gradients are `SparseRows`.

    Token ``t`` belongs to class ``t % 3``; each bag holds tokens of one class, its label.
    Returns the losses, the table before and after, and which rows any batch looked up.
    """
    key_init, key_head, key_tokens = jax.random.split(jax.random.key(seed), 3)
    embed, head = nn.Embed(vocab, 16), Head()
    params = {
        "embed": embed.init(key_init, jnp.zeros((1,), jnp.int32))["params"]["embedding"],
        "head": head.init(key_head, jnp.zeros((1, 4, 16)))["params"],
    }
    state = train_state.TrainState.create(
        apply_fn=head.apply,
        params=params,
        # lazy: untouched rows and their `ms` stay as they are (TF1's sparse semantics)
        tx=rj.rmsprop(learning_rate=1e-2, momentum=0.9, sparse_mode="lazy"),
    )

    @jax.jit
    def train_step(
        state: train_state.TrainState, tokens: jax.Array
    ) -> tuple[train_state.TrainState, jax.Array]:
        labels = tokens[:, 0] % 3

        def loss_of_rows(rows: jax.Array, head_params: dict) -> jax.Array:
            logits = state.apply_fn({"params": head_params}, rows)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, (table_grad, head_grad) = rj.value_and_sparse_grad(
            loss_of_rows, state.params["embed"], tokens, state.params["head"]
        )
        grads = {"embed": table_grad, "head": head_grad}
        return state.apply_gradients(grads=grads), loss

    key_class, key_tokens = jax.random.split(key_tokens)
    classes = jax.random.randint(key_class, (steps, 64, 1), 0, 3)
    batches = classes + 3 * jax.random.randint(key_tokens, (steps, 64, 4), 0, vocab // 30)
    losses = []
    for tokens in batches:
        state, loss = train_step(state, tokens)
        losses.append(float(loss))
    print(f"flax.linen sparse embedding: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return {
        "losses": losses,
        "table0": params["embed"],
        "table": state.params["embed"],
        "touched": jnp.unique(batches),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed)
    sparse_main(steps=args.steps, seed=args.seed)
