"""The momentum stage: a heavy-ball buffer of past steps, optionally with Nesterov's look-ahead."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import as_compute, compute_dtype
from ._scaling import check_sparse_arguments, init_accumulator
from ._sparse_update import SparseMode, map_rows
from ._tree import check_matching_tree
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
    sparse_mode: SparseMode = "lazy",
) -> optax.GradientTransformationExtraArgs:
    r"""Accumulates updates in a momentum buffer (heavy ball), optionally with Nesterov momentum.

    .. math::

      mom_t = \mu\, mom_{t-1} + u_t, \qquad
      \text{out}_t = mom_t \quad\text{or}\quad u_t + \mu\, mom_t \;(\text{nesterov}),

    with :math:`mom_0 = 0`. Placed after the learning-rate stage, the buffer holds ``lr * step``
    (TF, Keras, Optax); placed before it, the buffer holds the raw step (PyTorch), which differs as
    soon as the learning rate changes over time.

    With `SparseRows` updates only the touched rows of the buffer are read and written. With
    ``sparse_mode="dense"``, an untouched row keeps moving as a zero update would move it; for a
    table the chain's `rmsprop_jax.row_clock` tracks, after :math:`k` such steps the buffer is
    :math:`\mu^k mom` and the outputs it missed add up to the geometric series

    .. math:: \sum_{j=1}^{k} \mu^j\, mom = mom\, \frac{\mu (1 - \mu^k)}{1 - \mu}

    (times :math:`\mu` with Nesterov), emitted when the row is touched again or by
    `rmsprop_jax.materialize`.

    Args:
      momentum: the decay :math:`\mu` of the buffer, in [0, 1].
      nesterov: add the look-ahead term :math:`u_t + \mu\, mom_t` instead of returning the buffer.
      state_dtype: dtype of the buffer; None keeps each param's dtype.
      sparse_mode: ``"lazy"`` (untouched rows stand still) or ``"dense"`` (they keep moving).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `TraceMomentumState`.

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
    check_sparse_arguments(sparse_mode)
    dtype = check_float_dtype("state_dtype", state_dtype)

    def init_fn(params: optax.Params) -> TraceMomentumState:
        return TraceMomentumState(mom=init_accumulator(params, 0.0, dtype))

    def step(update: jax.Array, accumulators: tuple[jax.Array, ...]) -> Any:
        (mom,) = accumulators
        work = compute_dtype(update.dtype, mom.dtype)
        mu = as_compute(momentum, work)
        u = update.astype(work)
        new_mom = mu * mom.astype(work) + u
        out = u + mu * new_mom if nesterov else new_mom
        return out.astype(update.dtype), (new_mom.astype(mom.dtype),)

    def catch_up(accumulators: tuple[jax.Array, ...], missed: jax.Array) -> Any:
        """``missed`` zero updates: the buffer shrinks by mu**k, its outputs sum a series."""
        (mom,) = accumulators
        work = compute_dtype(mom.dtype)
        mu, steps = as_compute(momentum, work), missed.astype(work)
        mu_k = mu**steps
        series = jnp.where(mu == 1, steps, mu * (1 - mu_k) / jnp.where(mu == 1, 1, 1 - mu))
        if nesterov:
            series = mu * series
        buffer = mom.astype(work)
        return ((buffer * mu_k).astype(mom.dtype),), buffer * series

    def update_fn(
        updates: optax.Updates,
        state: TraceMomentumState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, TraceMomentumState]:
        del params, extra_args
        check_matching_tree(updates, state.mom, stage="trace_momentum")
        updates, (mom,) = map_rows(
            updates,
            [state.mom],
            step=step,
            catch_up=catch_up,
            mode=sparse_mode,
            stage="trace_momentum",
        )
        return updates, TraceMomentumState(mom=mom)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]
