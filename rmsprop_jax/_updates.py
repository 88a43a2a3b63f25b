"""Applying updates to params, dense or `SparseRows`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._sparse_rows import SparseRows, is_sparse

__all__ = ["apply_updates"]


def _apply(param: Any, update: Any) -> Any:
    if update is None:
        return param
    if isinstance(update, SparseRows):
        return update.scatter_add_into(param)
    return jnp.asarray(param + update).astype(jnp.asarray(param).dtype)


def apply_updates(params: optax.Params, updates: optax.Updates) -> optax.Params:
    """Adds updates to params, keeping each param's dtype: ``w + u``.

    A `SparseRows` update is scatter-added into its table (out-of-range rows are dropped); with
    donated params under ``jax.jit`` this is in place. ``optax.apply_updates`` gives the same.

    Args:
      params: the current params.
      updates: updates from ``tx.update``, with the structure of ``params``.

    Returns:
      The new params.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.apply_updates(jnp.ones(2), jnp.array([0.5, -1.0]))
      Array([1.5, 0. ], dtype=float32)
      >>> row_2 = rj.SparseRows(jnp.array([2]), jnp.ones((1, 1)), (3, 1))
      >>> rj.apply_updates(jnp.zeros((3, 1)), row_2)
      Array([[0.],
             [0.],
             [1.]], dtype=float32)
    """
    return jax.tree.map(_apply, params, updates, is_leaf=lambda x: x is None or is_sparse(x))
