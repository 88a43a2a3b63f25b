"""Per-element RMSprop maths, shared by every stage (and by the sparse path) so they cannot drift.

Each helper follows a framework's order of floating-point operations, not only its algebra:
``m + (x - m) * (1 - rho)`` (TF's C++ kernels) and ``rho * m + (1 - rho) * x`` (Keras's Python
path) are equal on paper but round differently, which matters when ``rho`` is 0 or values are tiny.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import is_static

__all__ = [
    "MomentForm",
    "as_compute",
    "compute_dtype",
    "rms_denominator",
    "rms_scale",
    "update_moment",
]

MomentForm = Literal["ema", "interpolate", "lerp"]
"""How an accumulator moves towards its target ``x`` with decay ``rho``.

- ``"ema"``: ``rho * m + (1 - rho) * x`` (Keras, Keras 3, Optax, PyTorch's mean square).
- ``"interpolate"``: ``m + (x - m) * (1 - rho)`` (TF's ``ApplyRMSProp`` kernels).
- ``"lerp"``: PyTorch's ``torch.lerp(m, x, w)`` with ``w = 1 - rho``: ``m + w * (x - m)`` when
  ``w < 0.5``, else ``x - (x - m) * (1 - w)`` (PyTorch's centered mean gradient).
"""

MOMENT_FORMS: tuple[MomentForm, ...] = ("ema", "interpolate", "lerp")


def compute_dtype(*dtypes: jnp.dtype) -> jnp.dtype:
    """The dtype the maths runs in: float64 if any input is float64, else float32.

    Low-precision params and state (bfloat16, float16) are widened for the arithmetic and rounded
    once on the way out, so hyperparameters like ``rho=0.999`` keep their float32 value.
    """
    if any(jnp.dtype(dtype) == jnp.float64 for dtype in dtypes):
        return jnp.dtype(jnp.float64)
    return jnp.dtype(jnp.float32)


def as_compute(value: jax.typing.ArrayLike, dtype: jnp.dtype) -> jax.Array:
    """Casts a hyperparameter or array to the compute dtype (explicitly, for strict promotion).

    A static number (fixed when the optimizer was built) becomes a NumPy scalar, so arithmetic on
    hyperparameters alone (``1 - rho``, ``-lr``) runs once in NumPy, with the same IEEE rounding
    as XLA, instead of adding ops to every leaf's compiled graph.
    """
    if is_static(value):
        return np.asarray(value, dtype)[()]  # type: ignore[return-value]
    return jnp.asarray(value).astype(dtype)


def update_moment(
    moment: jax.Array, target: jax.Array, rho: jax.Array, form: MomentForm
) -> jax.Array:
    """Moves an accumulator towards ``target`` with decay ``rho``, in the order of ``form``.

    Args:
      moment: the accumulator ``m`` (mean square or mean gradient), in the compute dtype.
      target: ``g * g`` for the mean square, ``g`` for the mean gradient.
      rho: the decay, a scalar in the compute dtype.
      form: one of ``"ema"``, ``"interpolate"``, ``"lerp"`` (see `MomentForm`).

    Returns:
      The new accumulator, ``rho * m + (1 - rho) * target`` up to the rounding of ``form``.
    """
    weight = 1 - rho
    if form == "ema":
        return rho * moment + weight * target
    if form == "interpolate":
        return moment + (target - moment) * weight
    return jnp.where(
        weight < 0.5,
        moment + weight * (target - moment),
        target - (target - moment) * (1 - weight),
    )


def rms_denominator(
    variance: jax.Array, epsilon: jax.Array, *, eps_in_sqrt: bool, clamp: bool = True
) -> jax.Array:
    """The RMS denominator: ``sqrt(variance + eps)`` or ``sqrt(variance) + eps``.

    With ``clamp``, ``variance`` is clamped at zero first: for the centered variant
    ``ms - mg**2`` can round to a tiny negative number, where a plain square root would return
    NaN. An uncentered mean square is a sum of non-negative products and never needs it.
    """
    if clamp:
        variance = jnp.maximum(variance, 0)
    if eps_in_sqrt:
        return jnp.sqrt(variance + epsilon)
    return jnp.sqrt(variance) + epsilon


def rms_scale(
    grad: jax.Array,
    ms: jax.Array,
    mg: jax.Array | None,
    rho: jax.typing.ArrayLike,
    epsilon: jax.typing.ArrayLike,
    *,
    eps_in_sqrt: bool,
    ms_form: MomentForm,
    mg_form: MomentForm,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    r"""One RMS scaling of one gradient array: the maths every scaling stage applies per element.

    .. math::

      ms \leftarrow \rho\, ms + (1 - \rho)\, g^2, \qquad
      mg \leftarrow \rho\, mg + (1 - \rho)\, g \;\text{(centered)}, \qquad
      u = g / \operatorname{den}(ms - mg^2)

    Args:
      grad: the gradient ``g``.
      ms: the mean square, in the state dtype.
      mg: the mean gradient, or None when not centered.
      rho: the decay.
      epsilon: the denominator's epsilon.
      eps_in_sqrt: ``den(v) = sqrt(v + eps)`` if True, ``sqrt(v) + eps`` if False.
      ms_form: the mean square's order of operations.
      mg_form: the mean gradient's order of operations.

    Returns:
      ``(u, ms, mg)``: the scaled gradient in ``grad.dtype``, and the new accumulators in their
      own dtypes (``mg`` None when it was None).
    """
    dtypes = [grad.dtype, ms.dtype] + ([] if mg is None else [mg.dtype])
    dtype = compute_dtype(*dtypes)
    g = grad.astype(dtype)
    rho = as_compute(rho, dtype)
    # The denominator reads the accumulators as stored (rounded to their dtype, a no-op for
    # float32 state): a low-precision state is then written once and read back, instead of the
    # compiler recomputing it in a second kernel and copying the donated buffer to do so.
    new_ms = update_moment(ms.astype(dtype), g * g, rho, ms_form).astype(ms.dtype).astype(dtype)
    variance = new_ms
    new_mg = None
    if mg is not None:
        new_mg = update_moment(mg.astype(dtype), g, rho, mg_form).astype(mg.dtype).astype(dtype)
        variance = new_ms - new_mg * new_mg
    denominator = rms_denominator(
        variance, as_compute(epsilon, dtype), eps_in_sqrt=eps_in_sqrt, clamp=mg is not None
    )
    update = g / denominator
    return (
        update.astype(grad.dtype),
        new_ms.astype(ms.dtype),
        None if mg is None else new_mg.astype(mg.dtype),  # type: ignore[union-attr]
    )
