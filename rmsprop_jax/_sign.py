"""The sign stage: turn an ascent direction into a descent step, or a loss into a gain."""

from __future__ import annotations

import optax

from ._tree import map_values, stateless

__all__ = ["negate_updates"]


def negate_updates() -> optax.GradientTransformation:
    r"""Negates every update: :math:`\text{out} = -u`.

    `rmsprop_jax.rmsprop` puts it last where the learning rate sits inside the momentum buffer,
    and first with ``maximize=True``.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.negate_updates().update(jnp.array([1.0, -2.0]), None)[0]
      Array([-1.,  2.], dtype=float32)
    """
    return stateless(lambda updates, _: map_values(lambda u: -u, updates))
