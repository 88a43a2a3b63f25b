"""The scaling stage: divide each gradient by the root of its running mean square."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import MOMENT_FORMS, MomentForm, rms_scale
from ._tree import check_matching_tree, map_unzip
from ._validation import check_bool, check_choice, check_float_dtype, check_range

__all__ = ["ScaleByRmsState", "init_accumulator", "scale_by_rms"]


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`."""

    ms: optax.Updates  # per param: running mean of g**2; state_dtype or the param's dtype and shape


def init_accumulator(
    params: optax.Params, value: jax.typing.ArrayLike, dtype: jnp.dtype | None
) -> optax.Updates:
    """A tree of arrays shaped like ``params``, filled with ``value``, in ``dtype`` or the param's.

    Accepts ``jax.ShapeDtypeStruct`` leaves, so ``init`` can run on abstract params.
    """
    return jax.tree.map(lambda p: jnp.full(p.shape, value, dtype=dtype or p.dtype), params)


def check_rms_arguments(
    rho: jax.typing.ArrayLike,
    epsilon: jax.typing.ArrayLike,
    eps_in_sqrt: bool,
    initial_scale: jax.typing.ArrayLike,
    forms: dict[str, MomentForm],
) -> None:
    """Validates the arguments shared by the scaling and centering stages."""
    check_range("rho", rho, low=0.0, high=1.0, hint="It is the decay of the mean square, e.g. 0.9.")
    check_range("epsilon", epsilon, low=0.0, hint="A small positive number such as 1e-7.")
    check_range("initial_scale", initial_scale, low=0.0)
    check_bool("eps_in_sqrt", eps_in_sqrt)
    for name, form in forms.items():
        check_choice(name, form, list(MOMENT_FORMS))


def scale_by_rms(
    rho: jax.typing.ArrayLike = 0.9,
    epsilon: jax.typing.ArrayLike = 1e-7,
    *,
    eps_in_sqrt: bool = False,
    initial_scale: jax.typing.ArrayLike = 0.0,
    ms_form: MomentForm = "ema",
    state_dtype: jnp.dtype | None = None,
) -> optax.GradientTransformation:
    r"""Scales updates by the root of the running mean of their squares (uncentered RMSprop).

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \qquad
      u_t = \frac{g_t}{\sqrt{ms_t} + \epsilon}
      \quad\text{or}\quad \frac{g_t}{\sqrt{ms_t + \epsilon}} \;(\text{eps_in_sqrt}),

    with :math:`ms_0` = ``initial_scale``. The learning rate is not applied here.

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

    Returns:
      An ``optax.GradientTransformation`` whose state is a `ScaleByRmsState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.scale_by_rms(rho=0.75, epsilon=0.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> updates  # g / sqrt(0.25 * g**2) = 2 * sign(g)
      Array([ 2., -2.], dtype=float32)
    """
    check_rms_arguments(rho, epsilon, eps_in_sqrt, initial_scale, {"ms_form": ms_form})
    dtype = check_float_dtype("state_dtype", state_dtype)

    def init_fn(params: optax.Params) -> ScaleByRmsState:
        return ScaleByRmsState(ms=init_accumulator(params, initial_scale, dtype))

    def update_fn(
        updates: optax.Updates, state: ScaleByRmsState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, ScaleByRmsState]:
        del params
        check_matching_tree(updates, state.ms, stage="scale_by_rms")

        def leaf(grad: jax.Array, ms: jax.Array) -> tuple[jax.Array, jax.Array]:
            update, new_ms, _ = rms_scale(
                grad,
                ms,
                None,
                rho,
                epsilon,
                eps_in_sqrt=eps_in_sqrt,
                ms_form=ms_form,
                mg_form="ema",
            )
            return update, new_ms

        new_updates, new_ms = map_unzip(leaf, 2, updates, state.ms)
        return new_updates, ScaleByRmsState(ms=new_ms)

    return optax.GradientTransformation(init_fn, update_fn)  # type: ignore[arg-type]
