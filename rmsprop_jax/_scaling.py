"""The scaling stages: divide each gradient by the root of its running mean square or variance."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import ComplexSquare, MomentForm, RhoComplement, RmsNumerics, rms_scale
from ._rows import SparseMode, accumulator_stage
from ._validation import check_choice, check_float_dtype, check_range


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`."""

    ms: optax.Updates  # per param: running mean of g**2; state_dtype or the param's dtype and shape


class ScaleByCenteredRmsState(NamedTuple):
    """State of `scale_by_centered_rms`."""

    ms: optax.Updates  # per param: running mean of g**2; state_dtype or the param's dtype and shape
    mg: optax.Updates  # per param: running mean of g; state_dtype or the param's dtype and shape


def _rms_transformation(
    centered: bool,
    rho: jax.typing.ArrayLike,
    epsilon: jax.typing.ArrayLike,
    initial_scale: jax.typing.ArrayLike,
    rule: RmsNumerics,
    state_dtype: jnp.dtype | None,
    sparse_mode: SparseMode,
) -> optax.GradientTransformationExtraArgs:
    """The scaling stage, centered or not: validation, init and the row-wise update."""
    check_range(
        "decay", rho, low=0.0, high=1.0, hint="It is the decay of the mean square, e.g. 0.9."
    )
    check_range("eps", epsilon, low=0.0, hint="A small positive number such as 1e-8.")
    check_range("initial_scale", initial_scale, low=0.0)
    check_choice("sparse_mode", sparse_mode, ["lazy", "dense", "keras"])
    dtype = check_float_dtype("state_dtype", state_dtype, complex_ok=True)

    def step(grad: jax.Array, accumulators: tuple[jax.Array, ...]) -> Any:
        ms, mg = accumulators if centered else (accumulators[0], None)
        update, new_ms, new_mg = rms_scale(grad, ms, mg, rho, epsilon, rule)
        return update, (new_ms, new_mg) if centered else (new_ms,)

    state = ScaleByCenteredRmsState if centered else ScaleByRmsState
    initial = [initial_scale, 0.0][: len(state._fields)]
    complex_slots = [rule.complex_square != "abs", True][: len(initial)]  # Optax's |g|**2 is real
    stage = "scale_by_centered_rms" if centered else "scale_by_rms"
    return accumulator_stage(
        state, initial, dtype, step, mode=sparse_mode, stage=stage, complex_slots=complex_slots
    )


def scale_by_rms(
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    *,
    ms_form: MomentForm = "ema",
    rho_complement: RhoComplement = "exact",
    complex_square: ComplexSquare = "abs",
    state_dtype: jnp.dtype | None = None,
    sparse_mode: SparseMode = "lazy",
) -> optax.GradientTransformationExtraArgs:
    r"""Scales updates by the root of the running mean of their squares: ``optax.scale_by_rms``.

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \qquad
      u_t = g_t / \sqrt{ms_t + \epsilon} \quad\text{or}\quad g_t / (\sqrt{ms_t} + \epsilon),

    with :math:`\rho` = ``decay`` and :math:`ms_0` = ``initial_scale``; the arguments, defaults
    and numbers are ``optax.scale_by_rms``'s. The keyword-only rules reproduce another
    framework's rounding (``rj.rmsprop(convention=...)`` sets them; see docs/conventions.md).

    Args:
      decay: the decay :math:`\rho` of the mean square, in [0, 1].
      eps: added to the denominator, >= 0.
      initial_scale: the mean square's starting value (1.0 reproduces TF1).
      eps_in_sqrt: epsilon inside the root, or outside (tf.keras without momentum, PyTorch).
      ms_form: the order of operations of the update (`MomentForm`).
      rho_complement: ``"exact"`` (``fl(1 - rho)``) or ``"rounded"`` (``fl(1 - fl(rho))``).
      complex_square: a complex gradient's mean square: ``"abs"``, ``"square"`` or ``"split"``.
      state_dtype: dtype of the mean square; None keeps each param's dtype.
      sparse_mode: ``"lazy"``, ``"dense"`` or ``"keras"`` (see docs/sparse.md).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `ScaleByRmsState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.scale_by_rms(decay=0.75, eps=0.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> updates  # g / sqrt(0.25 * g**2) = 2 * sign(g)
      Array([ 2., -2.], dtype=float32)
    """
    rule = RmsNumerics(eps_in_sqrt, ms_form, "ema", rho_complement, complex_square)
    return _rms_transformation(False, decay, eps, initial_scale, rule, state_dtype, sparse_mode)


def scale_by_centered_rms(
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    *,
    ms_form: MomentForm = "ema",
    mg_form: MomentForm = "ema",
    rho_complement: RhoComplement = "exact",
    complex_square: ComplexSquare = "abs",
    state_dtype: jnp.dtype | None = None,
    sparse_mode: SparseMode = "lazy",
) -> optax.GradientTransformationExtraArgs:
    r"""Scales updates by the root of their running variance: ``optax.scale_by_stddev``.

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \quad
      mg_t = \rho\, mg_{t-1} + (1 - \rho)\, g_t, \quad
      u_t = g_t / \operatorname{den}(\max(ms_t - mg_t^2, 0)),

    with ``den`` and the arguments as in `scale_by_rms` (``optax.scale_by_stddev``'s names and
    defaults), :math:`mg_0 = 0` and ``mg_form`` the mean gradient's order of operations.

    Warning:
      :math:`ms - mg^2` can round below zero; TF, Keras and PyTorch then return NaN, this stage
      a finite step (it clamps the variance at zero before epsilon is added).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `ScaleByCenteredRmsState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.scale_by_centered_rms(decay=0.5, eps=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> updates, state = tx.update(jnp.array([2.0]), state)
      >>> updates  # ms = 2, mg = 1, variance = 1: the step is g itself
      Array([2.], dtype=float32)
    """
    rule = RmsNumerics(eps_in_sqrt, ms_form, mg_form, rho_complement, complex_square)
    return _rms_transformation(True, decay, eps, initial_scale, rule, state_dtype, sparse_mode)
