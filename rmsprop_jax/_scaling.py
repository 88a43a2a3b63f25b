"""The scaling stages: divide each gradient by the root of its running mean square or variance."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import ComplexSquare, MomentForm, RhoComplement, RmsNumerics, rms_scale
from ._rows import SparseMode, map_rows
from ._sharding import filled_like
from ._tree import check_matching_tree
from ._validation import check_choice, check_float_dtype, check_range

__all__ = [
    "ScaleByCenteredRmsState",
    "ScaleByRmsState",
    "init_accumulator",
    "scale_by_centered_rms",
    "scale_by_rms",
]


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`."""

    ms: optax.Updates  # per param: running mean of g**2; state_dtype or the param's dtype and shape


class ScaleByCenteredRmsState(NamedTuple):
    """State of `scale_by_centered_rms`."""

    ms: optax.Updates  # per param: running mean of g**2; state_dtype or the param's dtype and shape
    mg: optax.Updates  # per param: running mean of g; state_dtype or the param's dtype and shape


def init_accumulator(
    params: optax.Params, value: jax.typing.ArrayLike, dtype: jnp.dtype | None
) -> optax.Updates:
    """A tree of arrays shaped like ``params``, filled with ``value``, in ``dtype`` or the param's.

    Accepts ``jax.ShapeDtypeStruct`` leaves, so ``init`` can run on abstract params. Each array
    is sharded like its param (see `rmsprop_jax._sharding`).
    """
    return jax.tree.map(lambda p: filled_like(p, value, dtype or p.dtype), params)


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
    check_range("rho", rho, low=0.0, high=1.0, hint="It is the decay of the mean square, e.g. 0.9.")
    check_range("epsilon", epsilon, low=0.0, hint="A small positive number such as 1e-7.")
    check_range("initial_scale", initial_scale, low=0.0)
    check_choice("sparse_mode", sparse_mode, ["lazy", "dense", "keras"])
    dtype = check_float_dtype("state_dtype", state_dtype)
    stage = "scale_by_centered_rms" if centered else "scale_by_rms"

    def init_fn(params: optax.Params) -> Any:
        ms = init_accumulator(params, initial_scale, dtype)
        if centered:
            return ScaleByCenteredRmsState(ms, init_accumulator(params, 0.0, dtype))
        return ScaleByRmsState(ms)

    def step(grad: jax.Array, accumulators: tuple[jax.Array, ...]) -> Any:
        ms, mg = accumulators if centered else (accumulators[0], None)
        update, new_ms, new_mg = rms_scale(grad, ms, mg, rho, epsilon, rule)
        return update, (new_ms, new_mg) if centered else (new_ms,)

    def update_fn(
        updates: optax.Updates,
        state: Any,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, Any]:
        del params, extra_args
        check_matching_tree(updates, state.ms, stage=stage)
        updates, accumulators = map_rows(updates, list(state), step, mode=sparse_mode, stage=stage)
        return updates, type(state)(*accumulators)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]


def scale_by_rms(
    rho: jax.typing.ArrayLike = 0.9,
    epsilon: jax.typing.ArrayLike = 1e-7,
    *,
    eps_in_sqrt: bool = False,
    initial_scale: jax.typing.ArrayLike = 0.0,
    ms_form: MomentForm = "ema",
    state_dtype: jnp.dtype | None = None,
    sparse_mode: SparseMode = "lazy",
    rho_complement: RhoComplement = "rounded",
    complex_square: ComplexSquare = "abs",
) -> optax.GradientTransformationExtraArgs:
    r"""Scales updates by the root of the running mean of their squares (uncentered RMSprop).

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \qquad
      u_t = \frac{g_t}{\sqrt{ms_t} + \epsilon}
      \quad\text{or}\quad \frac{g_t}{\sqrt{ms_t + \epsilon}} \;(\text{eps_in_sqrt}),

    with :math:`ms_0` = ``initial_scale``. The learning rate is not applied here.

    A `SparseRows` gradient is deduplicated (duplicate rows summed), and only its rows of ``ms``
    are read and written. With ``sparse_mode="dense"`` the untouched rows still decay as a zero
    gradient would decay them, :math:`ms \leftarrow \rho^{k} ms` after :math:`k` untouched steps:
    for a table the chain's `rmsprop_jax.row_clock` tracks, when the row is touched again (the
    clock says how many steps it missed) or by `rmsprop_jax.materialize`; for any other table,
    on every step (a pass over the whole table).

    Args:
      rho: decay of the mean square, in [0, 1].
      epsilon: added to the denominator, >= 0.
      eps_in_sqrt: put epsilon inside the square root (TF kernels, Keras 3, Optax) instead of
        outside it (Keras without momentum, PyTorch).
      initial_scale: the mean square's starting value (1.0 reproduces TF1).
      ms_form: the order of floating-point operations of the mean-square update: ``"ema"``
        (``rho*ms + (1-rho)*g*g``), ``"interpolate"`` (TF kernels: ``ms + (g*g - ms)*(1-rho)``)
        or ``"lerp"`` (``torch.lerp``).
      state_dtype: dtype of the mean square; None keeps each param's dtype.
      sparse_mode: ``"lazy"`` (untouched rows keep their ``ms``) or ``"dense"`` (they decay).
      rho_complement: how ``1 - rho`` rounds: ``"rounded"`` (``fl(1 - fl(rho))``: TF, tf.keras;
        the default) or ``"exact"`` (``fl(1 - rho)`` from the Python float: PyTorch, Optax,
        Keras 3).
      complex_square: the mean square of a complex gradient: ``"abs"`` (``|g|**2``, Optax),
        ``"square"`` (complex ``g*g``, TF) or ``"split"`` (real and imaginary parts apart,
        PyTorch).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `ScaleByRmsState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.scale_by_rms(rho=0.75, epsilon=0.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> updates  # g / sqrt(0.25 * g**2) = 2 * sign(g)
      Array([ 2., -2.], dtype=float32)
    """
    rule = RmsNumerics(eps_in_sqrt, ms_form, "ema", rho_complement, complex_square)
    return _rms_transformation(False, rho, epsilon, initial_scale, rule, state_dtype, sparse_mode)


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
    rule = RmsNumerics(eps_in_sqrt, ms_form, mg_form, rho_complement, complex_square)
    return _rms_transformation(True, rho, epsilon, initial_scale, rule, state_dtype, sparse_mode)
