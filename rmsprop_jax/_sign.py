"""The sign stage: turn an ascent direction into a descent step, or a loss into a gain."""

from __future__ import annotations

import optax

from ._tree import map_values

__all__ = ["negate_updates"]


def negate_updates() -> optax.GradientTransformation:
    r"""Negates every update: :math:`\text{out} = -u`.

    `rmsprop_jax.rmsprop` uses it last, after the momentum buffer when the learning rate sits
    inside that buffer, so the buffer keeps the framework's sign; and first with
    ``maximize=True``, to climb the objective as ``torch.optim.RMSprop(maximize=True)`` does.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.negate_updates().update(jnp.array([1.0, -2.0]), None)[0]
      Array([-1.,  2.], dtype=float32)
    """

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        del params
        return map_values(lambda u: -u, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)
