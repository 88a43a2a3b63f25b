"""Applying updates to params."""

from __future__ import annotations

import optax

__all__ = ["apply_updates"]


def apply_updates(params: optax.Params, updates: optax.Updates) -> optax.Params:
    """Adds updates to params, keeping each param's dtype: ``w + u``.

    Same as ``optax.apply_updates`` for dense trees.

    Args:
      params: the current params.
      updates: updates from ``tx.update``, with the structure of ``params``.

    Returns:
      The new params.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.apply_updates(jnp.ones(2), jnp.array([0.5, -1.0]))
      Array([1.5, 0. ], dtype=float32)
    """
    return optax.apply_updates(params, updates)
