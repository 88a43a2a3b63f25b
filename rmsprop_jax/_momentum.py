"""The momentum stage: a heavy-ball buffer of past steps, optionally with Nesterov's look-ahead."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import as_compute, compute_dtype
from ._scaling import init_accumulator
from ._tree import check_matching_tree, map_unzip
from ._validation import check_bool, check_float_dtype, check_range

__all__ = ["TraceMomentumState", "trace_momentum"]


class TraceMomentumState(NamedTuple):
    """State of `trace_momentum`."""

    mom: optax.Updates  # per param: the momentum buffer; state_dtype or the param's dtype and shape


def trace_momentum(
    momentum: jax.typing.ArrayLike = 0.9,
    *,
    nesterov: bool = False,
    state_dtype: jnp.dtype | None = None,
) -> optax.GradientTransformation:
    r"""Accumulates updates in a momentum buffer (heavy ball), optionally with Nesterov momentum.

    .. math::

      mom_t = \mu\, mom_{t-1} + u_t, \qquad
      \text{out}_t = mom_t \quad\text{or}\quad u_t + \mu\, mom_t \;(\text{nesterov}),

    with :math:`mom_0 = 0`. Placed after the learning-rate stage, the buffer holds ``lr * step``
    (TF, Keras, Optax); placed before it, the buffer holds the raw step (PyTorch), which differs as
    soon as the learning rate changes over time.

    Args:
      momentum: the decay :math:`\mu` of the buffer, in [0, 1].
      nesterov: add the look-ahead term :math:`u_t + \mu\, mom_t` instead of returning the buffer.
      state_dtype: dtype of the buffer; None keeps each param's dtype.

    Returns:
      An ``optax.GradientTransformation`` whose state is a `TraceMomentumState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.trace_momentum(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(jnp.ones(1), state)
      >>> tx.update(jnp.ones(1), state)[0]  # 0.5 * 1 + 1
      Array([1.5], dtype=float32)
    """
    check_range("momentum", momentum, low=0.0, high=1.0, hint="Use 0.0 to switch momentum off.")
    check_bool("nesterov", nesterov)
    dtype = check_float_dtype("state_dtype", state_dtype)

    def init_fn(params: optax.Params) -> TraceMomentumState:
        return TraceMomentumState(mom=init_accumulator(params, 0.0, dtype))

    def update_fn(
        updates: optax.Updates, state: TraceMomentumState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, TraceMomentumState]:
        del params
        check_matching_tree(updates, state.mom, stage="trace_momentum")

        def leaf(update: jax.Array, mom: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = compute_dtype(update.dtype, mom.dtype)
            mu = as_compute(momentum, dtype)
            u = update.astype(dtype)
            new_mom = mu * mom.astype(dtype) + u
            out = u + mu * new_mom if nesterov else new_mom
            return out.astype(update.dtype), new_mom.astype(mom.dtype)

        new_updates, new_mom = map_unzip(leaf, 2, updates, state.mom)
        return new_updates, TraceMomentumState(mom=new_mom)

    return optax.GradientTransformation(init_fn, update_fn)  # type: ignore[arg-type]
