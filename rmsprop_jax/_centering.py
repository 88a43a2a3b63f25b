"""The centering stage: scale by the root of the running variance, ms - mg**2."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ._numerics import ComplexSquare, MomentForm, RhoComplement
from ._scaling import ScaleByCenteredRmsState, rms_transformation
from ._sparse_update import SparseMode

__all__ = ["ScaleByCenteredRmsState", "scale_by_centered_rms"]


def scale_by_centered_rms(
    rho: jax.typing.ArrayLike = 0.9,
    epsilon: jax.typing.ArrayLike = 1e-7,
    *,
    eps_in_sqrt: bool = False,
    initial_scale: jax.typing.ArrayLike = 0.0,
    ms_form: MomentForm = "ema",
    mg_form: MomentForm = "ema",
    state_dtype: jnp.dtype | None = None,
    sparse_mode: SparseMode = "lazy",
    rho_complement: RhoComplement = "rounded",
    complex_square: ComplexSquare = "abs",
) -> optax.GradientTransformationExtraArgs:
    r"""Scales updates by the root of their running variance (centered RMSprop).

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \qquad
      mg_t = \rho\, mg_{t-1} + (1 - \rho)\, g_t, \qquad
      v_t = \max(ms_t - mg_t^2,\, 0),

      u_t = \frac{g_t}{\sqrt{v_t} + \epsilon}
      \quad\text{or}\quad \frac{g_t}{\sqrt{v_t + \epsilon}} \;(\text{eps_in_sqrt}),

    with :math:`ms_0` = ``initial_scale`` and :math:`mg_0 = 0`. `SparseRows` gradients are
    handled as in `scale_by_rms`; in ``"dense"`` mode both ``ms`` and ``mg`` decay on untouched
    rows.

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
      sparse_mode: ``"lazy"`` (untouched rows keep ``ms`` and ``mg``) or ``"dense"``.
      rho_complement: how ``1 - rho`` rounds (see `scale_by_rms`).
      complex_square: the mean square of a complex gradient (see `scale_by_rms`).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `ScaleByCenteredRmsState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.scale_by_centered_rms(rho=0.5, epsilon=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> updates, state = tx.update(jnp.array([2.0]), state)
      >>> updates  # ms = 2, mg = 1, variance = 1: the step is g itself
      Array([2.], dtype=float32)
    """
    return rms_transformation(
        stage="scale_by_centered_rms",
        centered=True,
        rho=rho,
        epsilon=epsilon,
        eps_in_sqrt=eps_in_sqrt,
        initial_scale=initial_scale,
        ms_form=ms_form,
        mg_form=mg_form,
        state_dtype=state_dtype,
        sparse_mode=sparse_mode,
        rho_complement=rho_complement,
        complex_square=complex_square,
    )
