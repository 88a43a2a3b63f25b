"""Train Flax NNX models with ``nnx.Optimizer(model, rj.rmsprop(...))``, dense and sparse.

A two-layer MLP learns a synthetic regression target, y = sin(x @ a), generated on the spot.
``rj.rmsprop`` is an optax transformation, so NNX's optimizer wraps it like any other.

``sparse_main`` trains a bag-of-tokens regressor whose ``nnx.Embed`` table gets its gradient as
``rj.SparseRows`` (``rj.value_and_sparse_grad``, so no dense table gradient is built); the
standard ``optimizer.update(model, grads)`` applies it (``param + SparseRows`` is a scatter-add of
the touched rows).

Run: ``python docs/examples/flax_nnx.py --steps 300``
"""

from __future__ import annotations

import argparse
from typing import Any

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


class BagRegressor(nnx.Module):
    """The mean of the looked-up token embeddings, then a linear head."""

    def __init__(self, vocab: int, dim: int, rngs: nnx.Rngs) -> None:
        self.embed = nnx.Embed(vocab, dim, rngs=rngs)
        self.head = nnx.Linear(dim, 1, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """The prediction for each bag of tokens, ``[batch, bag] -> [batch, 1]``."""
        return self.head(self.embed(tokens).mean(axis=1))


def sparse_main(steps: int = 200, seed: int = 0, vocab: int = 5_000) -> dict[str, Any]:
    """Trains `BagRegressor` with `SparseRows` table gradients through ``nnx.Optimizer``.

    Returns the losses, the table before and after, and which rows any batch looked up.
    """
    key_tokens, key_weight = jax.random.split(jax.random.key(seed))
    token_weight = jax.random.normal(key_weight, (vocab,))  # the hidden target
    model = BagRegressor(vocab, 16, rngs=nnx.Rngs(seed))
    # The default (tf.keras) mode decays `ms` on every row; naming the table gives it one int32
    # of bookkeeping per row, so a step costs the touched rows. A dict prefix of the params works.
    tx = rj.rmsprop(learning_rate=1e-2, sparse_tables={"embed": True, "head": False})
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    table0 = jnp.array(model.embed.embedding[...])

    @nnx.jit
    def train_step(model: BagRegressor, optimizer: nnx.Optimizer, tokens: jax.Array) -> jax.Array:
        y = token_weight[tokens].mean(axis=1, keepdims=True)
        head_def, head_params = nnx.split(model.head, nnx.Param)

        def loss_of_rows(rows: jax.Array, head_params: nnx.State) -> jax.Array:
            head = nnx.merge(head_def, head_params)
            return jnp.mean((head(rows.mean(axis=1)) - y) ** 2)

        loss, (table_grad, head_grad) = rj.value_and_sparse_grad(
            loss_of_rows, model.embed.embedding[...], tokens, head_params
        )
        grads = nnx.state(model, nnx.Param)
        grads["embed"]["embedding"] = grads["embed"]["embedding"].replace(table_grad)
        grads["head"] = head_grad
        optimizer.update(model, grads)  # optax.apply_updates: param + SparseRows
        return loss

    batches = jax.random.randint(key_tokens, (steps, 64, 8), 0, vocab // 10)  # a hot tenth
    losses = [float(train_step(model, optimizer, tokens)) for tokens in batches]
    print(f"flax.nnx sparse embedding: loss {losses[0]:.4f} -> {losses[-1]:.4f} in {steps} steps")
    return {
        "losses": losses,
        "table0": table0,
        "table": jnp.array(model.embed.embedding[...]),
        "touched": jnp.unique(batches),
        "optimizer": optimizer,
        "model": model,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed)
    sparse_main(steps=args.steps, seed=args.seed)
