"""The momentum stage: a heavy-ball buffer of past steps, optionally with Nesterov's look-ahead."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import momentum_step
from ._rows import SparseMode, accumulator_stage
from ._validation import check_bool, check_choice, check_float_dtype, check_range


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

    with :math:`mom_0 = 0`.

    Args:
      momentum: the decay :math:`\mu` of the buffer, in [0, 1].
      nesterov: add the look-ahead term :math:`u_t + \mu\, mom_t` instead of returning the buffer.
      state_dtype: dtype of the buffer; None keeps each param's dtype.
      sparse_mode: ``"lazy"`` or ``"dense"`` (see docs/sparse.md).

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
    check_choice("sparse_mode", sparse_mode, ["lazy", "dense"])
    dtype = check_float_dtype("state_dtype", state_dtype, complex_ok=True)

    def step(update: jax.Array, accumulators: tuple[jax.Array, ...]) -> Any:
        out, mom = momentum_step(update, accumulators[0], momentum, nesterov)
        return out, (mom,)

    return accumulator_stage(
        TraceMomentumState, [0.0], dtype, step, mode=sparse_mode, stage="trace_momentum"
    )
