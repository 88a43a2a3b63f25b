"""The centering stage: scale by the root of the running variance, ms - mg**2."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import MomentForm, rms_scale
from ._scaling import check_rms_arguments, init_accumulator
from ._tree import check_matching_tree, map_unzip
from ._validation import check_float_dtype

__all__ = ["ScaleByCenteredRmsState", "scale_by_centered_rms"]


class ScaleByCenteredRmsState(NamedTuple):
    """State of `scale_by_centered_rms`."""

    ms: optax.Updates  # per param: running mean of g**2; state_dtype or the param's dtype and shape
    mg: optax.Updates  # per param: running mean of g; state_dtype or the param's dtype and shape


def scale_by_centered_rms(
    rho: jax.typing.ArrayLike = 0.9,
    epsilon: jax.typing.ArrayLike = 1e-7,
    *,
    eps_in_sqrt: bool = False,
    initial_scale: jax.typing.ArrayLike = 0.0,
    ms_form: MomentForm = "ema",
    mg_form: MomentForm = "ema",
    state_dtype: jnp.dtype | None = None,
) -> optax.GradientTransformation:
    r"""Scales updates by the root of their running variance (centered RMSprop).

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \qquad
      mg_t = \rho\, mg_{t-1} + (1 - \rho)\, g_t, \qquad
      v_t = \max(ms_t - mg_t^2,\, 0),

      u_t = \frac{g_t}{\sqrt{v_t} + \epsilon}
      \quad\text{or}\quad \frac{g_t}{\sqrt{v_t + \epsilon}} \;(\text{eps_in_sqrt}),

    with :math:`ms_0` = ``initial_scale`` and :math:`mg_0 = 0`.

    Warning:
      :math:`ms - mg^2` can round below zero; TF, Keras and PyTorch then return NaN. This stage
      clamps the variance at zero before epsilon is added, so it returns a finite step instead.

    Args:
      rho: decay of both running means, in [0, 1].
      epsilon: added to the denominator, >= 0.
      eps_in_sqrt: put epsilon inside the square root instead of outside it.
      initial_scale: the mean square's starting value (1.0 reproduces TF1).
      ms_form: the mean-square update's order of operations (see `scale_by_rms`).
      mg_form: the mean-gradient update's order of operations (``"lerp"`` for PyTorch).
      state_dtype: dtype of both accumulators; None keeps each param's dtype.

    Returns:
      An ``optax.GradientTransformation`` whose state is a `ScaleByCenteredRmsState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.scale_by_centered_rms(rho=0.5, epsilon=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> updates, state = tx.update(jnp.array([2.0]), state)
      >>> updates  # ms = 2, mg = 1, variance = 1: the step is g itself
      Array([2.], dtype=float32)
    """
    check_rms_arguments(
        rho, epsilon, eps_in_sqrt, initial_scale, {"ms_form": ms_form, "mg_form": mg_form}
    )
    dtype = check_float_dtype("state_dtype", state_dtype)

    def init_fn(params: optax.Params) -> ScaleByCenteredRmsState:
        return ScaleByCenteredRmsState(
            ms=init_accumulator(params, initial_scale, dtype),
            mg=init_accumulator(params, 0.0, dtype),
        )

    def update_fn(
        updates: optax.Updates, state: ScaleByCenteredRmsState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, ScaleByCenteredRmsState]:
        del params
        check_matching_tree(updates, state.ms, stage="scale_by_centered_rms")

        def leaf(grad: jax.Array, ms: jax.Array, mg: jax.Array) -> tuple[jax.Array, ...]:
            update, new_ms, new_mg = rms_scale(
                grad,
                ms,
                mg,
                rho,
                epsilon,
                eps_in_sqrt=eps_in_sqrt,
                ms_form=ms_form,
                mg_form=mg_form,
            )
            return update, new_ms, new_mg  # type: ignore[return-value]

        new_updates, new_ms, new_mg = map_unzip(leaf, 3, updates, state.ms, state.mg)
        return new_updates, ScaleByCenteredRmsState(ms=new_ms, mg=new_mg)

    return optax.GradientTransformation(init_fn, update_fn)  # type: ignore[arg-type]
