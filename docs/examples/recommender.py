"""A recommender with a large item-embedding table, trained with sparse row updates.

Each user is a feature vector fed through a dense tower; each item is a row of a
``num_items x dim`` embedding table; the predicted rating is their dot product. Ratings are
generated on the spot from hidden "true" embeddings, with item popularity following a Zipf law, so
a batch touches a few hundred rows of a table of a million.

``rj.value_and_sparse_grad`` differentiates the loss with respect to the looked-up rows only, so
the table's gradient is an ``rj.SparseRows`` of the batch's rows and never a dense 1M x 32 array.
With params and state donated to the jitted step, ``rj.apply_updates`` scatters into the table in
place: a step costs what the touched rows cost. ``sparse_mode="lazy"`` leaves untouched rows (and
their RMSprop state) alone.

Run: ``python docs/examples/recommender.py --steps 300`` (``--items 1000000`` by default).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rmsprop_jax as rj


def make_batch(
    rng: np.random.Generator, truth: dict[str, np.ndarray], batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users' features, the items they rated (Zipf-popular) and the ratings."""
    num_items = truth["items"].shape[0]
    users = rng.normal(size=(batch, truth["tower"].shape[0])).astype(np.float32)
    items = ((rng.zipf(1.2, size=batch) - 1) % num_items).astype(np.int32)
    ratings = np.einsum("bd,bd->b", np.tanh(users @ truth["tower"]), truth["items"][items])
    return users, items, ratings.astype(np.float32)


def main(steps: int = 300, items: int = 1_000_000, dim: int = 32, seed: int = 0) -> dict[str, Any]:
    """Trains for ``steps`` steps of 1,024 ratings.

    Returns:
      ``{"losses": [...], "touched": sorted rows ever looked up, "params0": the initial params,
      "params": the final params}``.
    """
    features, batch = 16, 1024
    rng = np.random.default_rng(seed)
    truth = {
        "tower": rng.normal(size=(features, dim)).astype(np.float32) / np.sqrt(features),
        "items": rng.normal(size=(items, dim)).astype(np.float32) / np.sqrt(dim),
    }
    key_table, key_tower = jax.random.split(jax.random.key(seed))
    params = {
        "items": 0.1 * jax.random.normal(key_table, (items, dim)),
        "tower": jax.random.normal(key_tower, (features, dim)) / np.sqrt(features),
    }
    params0 = jax.tree.map(np.asarray, params)
    tx = rj.rmsprop(1e-2, rho=0.9, sparse_mode="lazy")
    state = tx.init(params)

    def train_step(params: Any, state: Any, users: jax.Array, items: jax.Array, y: jax.Array):
        def loss_of_rows(item_rows: jax.Array, tower: jax.Array) -> jax.Array:
            predicted = jnp.einsum("bd,bd->b", jnp.tanh(users @ tower), item_rows)
            return jnp.mean((predicted - y) ** 2)

        # The loss of the looked-up rows; the table's gradient comes back as rj.SparseRows.
        loss, (table_grad, tower_grad) = rj.value_and_sparse_grad(
            loss_of_rows, params["items"], items, params["tower"]
        )
        grads = {"items": table_grad, "tower": tower_grad}
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state, loss

    # Donating params and state lets XLA update the table and its `ms` rows in place.
    train_step = jax.jit(train_step, donate_argnums=(0, 1))

    losses, touched = [], set()
    start = time.perf_counter()
    for _ in range(steps):
        users, item_ids, ratings = make_batch(rng, truth, batch)
        touched.update(item_ids.tolist())
        params, state, loss = train_step(params, state, users, item_ids, ratings)
        losses.append(float(loss))
    seconds = time.perf_counter() - start
    print(
        f"recommender: {items:,} x {dim} item table, {len(touched):,} rows touched; "
        f"loss {np.mean(losses[:10]):.4f} -> {np.mean(losses[-10:]):.4f} in {steps} steps "
        f"({1e3 * seconds / steps:.1f} ms/step, compilation included)"
    )
    return {"losses": losses, "touched": sorted(touched), "params0": params0, "params": params}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--items", type=int, default=1_000_000, help="rows of the item table")
    parser.add_argument("--dim", type=int, default=32, help="embedding width")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(steps=args.steps, items=args.items, dim=args.dim, seed=args.seed)
