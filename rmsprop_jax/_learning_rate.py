"""The learning-rate stage (a constant, an optax schedule, Keras's `decay`) and the sign stage."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeAlias

import jax
import jax.numpy as jnp
import optax

from ._numerics import compute_dtype, learning_rate_at, scale_values
from ._sharding import replicated_like
from ._tree import map_values
from ._validation import check_bool, check_range

LearningRate: TypeAlias = jax.typing.ArrayLike | optax.Schedule


class ScaleByLearningRateState(NamedTuple):
    """State of `scale_by_learning_rate`."""

    count: jax.Array  # int32 scalar: updates applied so far, the step the schedule sees


def check_learning_rate(
    learning_rate: LearningRate, decay: jax.typing.ArrayLike, *, decay_name: str = "decay"
) -> None:
    """Validates a learning rate (number or schedule) and Keras's inverse-time ``decay``."""
    check_range(
        "learning_rate",
        learning_rate,
        low=0.0,
        allow_schedule=True,
        hint="Pass a non-negative float or an optax schedule such as optax.exponential_decay(...).",
    )
    check_range(decay_name, decay, low=0.0, hint="Use 0.0 for no inverse-time decay.")


def scale_by_learning_rate(
    learning_rate: LearningRate, *, decay: jax.typing.ArrayLike = 0.0, flip_sign: bool = True
) -> optax.GradientTransformationExtraArgs:
    r"""Multiplies updates by the learning rate at the current step.

    .. math::

      \eta_t = \frac{\operatorname{lr}(t)}{1 + \text{decay} \cdot t}, \qquad
      \text{out}_t = \mp\, \eta_t\, u_t,

    where :math:`t` counts the updates applied before this one (from 0).

    Args:
      learning_rate: a number >= 0 or an optax schedule ``step -> lr``.
      decay: tf.keras's inverse-time decay, >= 0; it divides a schedule too.
      flip_sign: return :math:`-\eta_t u_t` (a descent step) instead of :math:`\eta_t u_t`.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `ScaleByLearningRateState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.scale_by_learning_rate(0.1, decay=1.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(jnp.ones(1), state)
      >>> tx.update(jnp.ones(1), state)[0]  # step 1: -0.1 / (1 + 1)
      Array([-0.05], dtype=float32)
    """
    check_learning_rate(learning_rate, decay)
    check_bool("flip_sign", flip_sign)

    def init_fn(params: optax.Params) -> ScaleByLearningRateState:
        return ScaleByLearningRateState(count=replicated_like(params, 0, jnp.int32))

    def update_fn(
        updates: optax.Updates, state: ScaleByLearningRateState, params: Any = None, **extra: Any
    ) -> tuple[optax.Updates, ScaleByLearningRateState]:
        del params, extra

        def leaf(u: jax.Array) -> jax.Array:
            lr = learning_rate_at(learning_rate, decay, state.count, compute_dtype(u.dtype))
            return scale_values(u, -lr if flip_sign else lr)

        updates = map_values(leaf, updates)
        return updates, ScaleByLearningRateState(jnp.asarray(optax.safe_increment(state.count)))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]


def negate_updates() -> optax.GradientTransformation:
    r"""Negates every update: :math:`\text{out} = -u`.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.negate_updates().update(jnp.array([1.0, -2.0]), None)[0]
      Array([-1.,  2.], dtype=float32)
    """
    return optax.stateless(lambda updates, _: map_values(lambda u: -u, updates))
