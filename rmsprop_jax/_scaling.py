"""The scaling stage: divide each gradient by the root of its running mean square."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import (
    COMPLEX_SQUARES,
    MOMENT_FORMS,
    RHO_COMPLEMENTS,
    ComplexSquare,
    MomentForm,
    RhoComplement,
    as_compute,
    compute_dtype,
    rms_scale,
)
from ._sharding import filled_like
from ._sparse_update import SparseMode, map_rows
from ._tree import check_matching_tree
from ._validation import check_bool, check_choice, check_float_dtype, check_range

__all__ = [
    "ScaleByCenteredRmsState",
    "ScaleByRmsState",
    "init_accumulator",
    "rms_transformation",
    "scale_by_rms",
]

SPARSE_MODES: list[str] = ["lazy", "dense"]


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


def check_sparse_arguments(sparse_mode: str) -> None:
    """Validates a stage's ``sparse_mode``."""
    check_choice("sparse_mode", sparse_mode, SPARSE_MODES)


def rms_transformation(
    *,
    stage: str,
    centered: bool,
    rho: jax.typing.ArrayLike,
    epsilon: jax.typing.ArrayLike,
    eps_in_sqrt: bool,
    initial_scale: jax.typing.ArrayLike,
    ms_form: MomentForm,
    mg_form: MomentForm,
    state_dtype: jnp.dtype | None,
    sparse_mode: SparseMode,
    rho_complement: RhoComplement = "rounded",
    complex_square: ComplexSquare = "abs",
) -> optax.GradientTransformationExtraArgs:
    """The scaling stage, centered or not: validation, init and the row-wise update."""
    check_range("rho", rho, low=0.0, high=1.0, hint="It is the decay of the mean square, e.g. 0.9.")
    check_range("epsilon", epsilon, low=0.0, hint="A small positive number such as 1e-7.")
    check_range("initial_scale", initial_scale, low=0.0)
    check_bool("eps_in_sqrt", eps_in_sqrt)
    check_choice("ms_form", ms_form, list(MOMENT_FORMS))
    check_choice("mg_form", mg_form, list(MOMENT_FORMS))
    check_choice("rho_complement", rho_complement, list(RHO_COMPLEMENTS))
    check_choice("complex_square", complex_square, list(COMPLEX_SQUARES))
    check_sparse_arguments(sparse_mode)
    dtype = check_float_dtype("state_dtype", state_dtype)

    def init_fn(params: optax.Params) -> Any:
        ms = init_accumulator(params, initial_scale, dtype)
        if centered:
            return ScaleByCenteredRmsState(ms, init_accumulator(params, 0.0, dtype))
        return ScaleByRmsState(ms)

    def step(grad: jax.Array, accumulators: tuple[jax.Array, ...]) -> Any:
        ms, mg = accumulators if centered else (accumulators[0], None)
        update, new_ms, new_mg = rms_scale(
            grad,
            ms,
            mg,
            rho,
            epsilon,
            eps_in_sqrt=eps_in_sqrt,
            ms_form=ms_form,
            mg_form=mg_form,
            rho_complement=rho_complement,
            complex_square=complex_square,
        )
        return update, (new_ms, new_mg) if centered else (new_ms,)

    def catch_up(accumulators: tuple[jax.Array, ...], missed: jax.Array) -> Any:
        """Zero-gradient steps only decay the running means: m * rho**missed."""
        decayed = []
        for acc in accumulators:
            work = compute_dtype(acc.dtype)
            factor = as_compute(rho, work) ** missed.astype(work)
            decayed.append((acc.astype(work) * factor).astype(acc.dtype))
        return tuple(decayed), None

    def update_fn(
        updates: optax.Updates,
        state: Any,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, Any]:
        del params, extra_args
        check_matching_tree(updates, state.ms, stage=stage)
        updates, accumulators = map_rows(
            updates, state, step=step, catch_up=catch_up, mode=sparse_mode, stage=stage
        )
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
    return rms_transformation(
        stage="scale_by_rms",
        centered=False,
        rho=rho,
        epsilon=epsilon,
        eps_in_sqrt=eps_in_sqrt,
        initial_scale=initial_scale,
        ms_form=ms_form,
        mg_form="ema",
        state_dtype=state_dtype,
        sparse_mode=sparse_mode,
        rho_complement=rho_complement,
        complex_square=complex_square,
    )
