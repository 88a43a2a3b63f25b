"""The per-element maths of RMSprop, written once for the stages and the sparse driver.

Each helper follows a framework's order of floating-point operations, not only its algebra:
``m + (x - m) * (1 - rho)`` and ``rho * m + (1 - rho) * x`` round differently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_bool, check_choice, is_static

__all__ = ["ComplexSquare", "MomentForm", "RhoComplement", "RmsNumerics", "rms_scale"]
__all__ += ["as_compute", "compute_dtype", "decay_rows", "learning_rate_at", "scale_values"]
__all__ += ["momentum_catch_up", "momentum_step"]

MomentForm = Literal["ema", "interpolate", "lerp", "addcmul"]
"""How an accumulator moves towards ``x``: ``rho*m + (1-rho)*x`` (``"ema"``: Keras, Optax),
``m + (x-m)*(1-rho)`` (``"interpolate"``: TF's kernels), ``torch.lerp(m, x, 1-rho)``
(``"lerp"``: PyTorch's mean gradient) or, for the mean square of ``g`` only,
``rho*m + ((1-rho)*g)*g`` (``"addcmul"``: PyTorch's ``addcmul_``, which keeps ``(1-rho)*g*g``
finite where ``g*g`` overflows)."""

RhoComplement = Literal["exact", "rounded"]
"""How ``w = 1 - rho`` rounds: ``fl(1 - rho)`` from the Python float (``"exact"``: PyTorch,
Optax, Keras 3) or ``fl(1 - fl(rho))`` (``"rounded"``: TF, tf.keras); docs/conventions.md."""

ComplexSquare = Literal["abs", "square", "split"]
"""A complex gradient's mean square: ``|g|**2`` (``"abs"``: Optax), the complex ``g*g``
(``"square"``: TF) or the real and imaginary parts apart (``"split"``: PyTorch)."""


@dataclasses.dataclass(frozen=True)
class RmsNumerics:
    """The per-element rules of one framework's code path: every choice `rms_scale` makes.

    Attributes:
      eps_in_sqrt: ``sqrt(v + eps)`` if True, ``sqrt(v) + eps`` if False.
      ms_form: the mean square's order of operations (`MomentForm`).
      mg_form: the mean gradient's order of operations (centered only).
      rho_complement: how ``1 - rho`` is rounded (`RhoComplement`).
      complex_square: the mean square of a complex gradient (`ComplexSquare`).
    """

    eps_in_sqrt: bool = True
    ms_form: MomentForm = "ema"
    mg_form: MomentForm = "ema"
    rho_complement: RhoComplement = "exact"
    complex_square: ComplexSquare = "abs"

    def __post_init__(self) -> None:
        check_bool("eps_in_sqrt", self.eps_in_sqrt)
        check_choice("ms_form", self.ms_form, ["ema", "interpolate", "lerp", "addcmul"])
        check_choice("mg_form", self.mg_form, ["ema", "interpolate", "lerp"])
        check_choice("rho_complement", self.rho_complement, ["exact", "rounded"])
        check_choice("complex_square", self.complex_square, ["abs", "square", "split"])


def compute_dtype(*dtypes: jnp.dtype) -> jnp.dtype:
    """The dtype the maths runs in: float64 (complex128) if any input is 64-bit, else float32.

    Low-precision inputs are widened and rounded once on the way out; complex inputs stay
    complex. Raises a TypeError for an integer or boolean dtype.
    """
    kinds = [jnp.dtype(dtype) for dtype in dtypes]
    for dtype in kinds:
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"RMSprop needs floating (or complex) arrays, but received one of dtype {dtype}: "
                "an integer or boolean array would round every step to garbage. Cast the params "
                "and gradients to a floating dtype, e.g. "
                "jax.tree.map(lambda p: p.astype(jnp.float32), params)."
            )
    wide = any(dtype in (jnp.float64, jnp.complex128) for dtype in kinds)
    if any(jnp.issubdtype(dtype, jnp.complexfloating) for dtype in kinds):
        return jnp.dtype(jnp.complex128 if wide else jnp.complex64)
    return jnp.dtype(jnp.float64 if wide else jnp.float32)


def slot_dtype(param_dtype: jnp.dtype, state_dtype: jnp.dtype | None, holds_complex: bool) -> Any:
    """The dtype of an accumulator: ``state_dtype`` (None: the param's), complex where it must be.

    ``state_dtype`` sets the precision; a complex param's slot that ``holds_complex`` takes the
    complex dtype of that precision (Optax's mean square ``|g|**2`` is real and does not).
    Raises a TypeError for a complex ``state_dtype`` with a real param.
    """
    if state_dtype is None:
        return param_dtype
    state_dtype = jnp.dtype(state_dtype)
    if not jnp.issubdtype(param_dtype, jnp.complexfloating):
        if jnp.issubdtype(state_dtype, jnp.complexfloating):
            raise TypeError(
                f"state_dtype={state_dtype} is for complex params, but a param has dtype "
                f"{jnp.dtype(param_dtype)}. Use a real state_dtype such as jnp.float32."
            )
        return state_dtype
    if holds_complex and not jnp.issubdtype(state_dtype, jnp.complexfloating):
        return jnp.dtype(jnp.complex128 if state_dtype.itemsize == 8 else jnp.complex64)
    return state_dtype


def decay_and_complement(
    rho: jax.typing.ArrayLike, dtype: jnp.dtype, complement: RhoComplement
) -> tuple[jax.Array, jax.Array]:
    """``rho`` and ``w = 1 - rho`` in ``dtype``, ``w`` rounded as ``complement`` says."""
    decay = as_compute(rho, dtype)
    if complement == "rounded":
        return decay, 1 - decay
    if is_static(rho):
        return decay, np.asarray(1 - np.asarray(rho, np.float64), dtype)[()]  # type: ignore[return-value]
    array = jnp.asarray(rho)
    wider = jnp.promote_types(array.dtype, dtype)
    return decay, (1 - array.astype(wider)).astype(dtype)


def as_compute(value: jax.typing.ArrayLike, dtype: jnp.dtype) -> jax.Array:
    """``value`` in ``dtype``; a static number becomes a NumPy scalar (computed once)."""
    if is_static(value):
        return np.asarray(value, dtype)[()]  # type: ignore[return-value]
    return jnp.asarray(value).astype(dtype)


def update_moment(
    moment: jax.Array, target: jax.Array, rho: jax.Array, form: MomentForm, weight: jax.Array
) -> jax.Array:
    """``rho * m + weight * target`` in the order of ``form`` (``weight``: ``1 - rho``).

    For ``"addcmul"`` ``target`` is ``g`` and the result ``rho * m + (weight * g) * g``.
    """
    if form == "ema":
        return rho * moment + weight * target
    if form == "addcmul":
        return rho * moment + (weight * target) * target
    if form == "interpolate":
        return moment + (target - moment) * weight
    return jnp.where(
        weight < 0.5,
        moment + weight * (target - moment),
        target - (target - moment) * (1 - weight),
    )


def rms_denominator(
    variance: jax.Array, epsilon: jax.Array, *, eps_in_sqrt: bool, clamp: bool
) -> jax.Array:
    """``sqrt(v + eps)`` or ``sqrt(v) + eps``; ``clamp`` first clamps a centered variance at 0."""
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
    rule: RmsNumerics,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    r"""One RMS scaling of one gradient array, in the order ``rule`` says.

    .. math::

      ms \leftarrow \rho\, ms + (1 - \rho)\, g^2, \quad
      mg \leftarrow \rho\, mg + (1 - \rho)\, g \;\text{(centered)}, \quad
      u = g / \operatorname{den}(ms - mg^2)

    Returns ``(u, ms, mg)`` in the dtypes of ``grad``, ``ms`` and ``mg`` (``mg`` None if None).
    Raises a TypeError for a complex gradient with a real state where both parts must be kept.
    """
    dtypes = [grad.dtype, ms.dtype] + ([] if mg is None else [mg.dtype])
    dtype = compute_dtype(*dtypes)
    if jnp.issubdtype(grad.dtype, jnp.complexfloating):
        states = [ms] + ([] if mg is None else [mg])
        if rule.complex_square != "abs" and not all(jnp.iscomplexobj(s) for s in states):
            raise TypeError(
                f"complex_square={rule.complex_square!r} keeps a complex state for a complex "
                f"gradient, but the state has dtype {ms.dtype}. Use state_dtype=None (the "
                "param's dtype) or a complex state_dtype."
            )
        if rule.complex_square == "split":
            # PyTorch's view_as_real: real and imaginary parts are two independent reals.
            re, im = (
                rms_scale(
                    part(grad), part(ms), None if mg is None else part(mg), rho, epsilon, rule
                )
                for part in (jnp.real, jnp.imag)
            )
            join = lambda a, b, like: jax.lax.complex(a, b).astype(like.dtype)  # noqa: E731
            return (
                join(re[0], im[0], grad),
                join(re[1], im[1], ms),
                None if mg is None else join(re[2], im[2], mg),
            )
        if rule.complex_square == "abs":
            return _abs_square_scale(grad, ms, mg, rho, epsilon, rule, dtype)
    g = grad.astype(dtype)
    rho, weight = decay_and_complement(rho, dtype, rule.rho_complement)
    # The denominator reads the accumulators as stored (rounded to their dtype, a no-op for
    # float32 state): a low-precision state is then written once and read back, instead of the
    # compiler recomputing it in a second kernel and copying the donated buffer to do so.
    square = g if rule.ms_form == "addcmul" else g * g  # addcmul squares g itself
    new_ms = update_moment(ms.astype(dtype), square, rho, rule.ms_form, weight)
    new_ms = new_ms.astype(ms.dtype).astype(dtype)
    variance = new_ms
    new_mg = None
    if mg is not None:
        new_mg = update_moment(mg.astype(dtype), g, rho, rule.mg_form, weight)
        new_mg = new_mg.astype(mg.dtype).astype(dtype)
        variance = new_ms - new_mg * new_mg
    complex_state = jnp.issubdtype(dtype, jnp.complexfloating)  # TF's complex kernels: no clamp
    denominator = rms_denominator(
        variance,
        as_compute(epsilon, dtype),
        eps_in_sqrt=rule.eps_in_sqrt,
        clamp=mg is not None and not complex_state,
    )
    update = g / denominator
    return (
        update.astype(grad.dtype),
        new_ms.astype(ms.dtype),
        None if mg is None else new_mg.astype(mg.dtype),  # type: ignore[union-attr]
    )


def _abs_square_scale(
    grad: jax.Array,
    ms: jax.Array,
    mg: jax.Array | None,
    rho: jax.typing.ArrayLike,
    epsilon: jax.typing.ArrayLike,
    rule: RmsNumerics,
    dtype: jnp.dtype,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Optax's complex RMS: a real mean square of ``|g|**2``, one real denominator per element.

    The mean gradient (centered) is complex and ``mg**2`` is read as ``|mg|**2``, so the variance
    ``ms - |mg|**2`` stays real. Both parts of ``g`` are divided by the same denominator.
    """
    real = jnp.dtype(jnp.finfo(dtype).dtype)  # the dtype of the complex dtype's parts
    g = grad.astype(dtype)
    rho_r, weight_r = decay_and_complement(rho, real, rule.rho_complement)
    target = (jnp.conj(g) * g).real  # optax.abs_sq
    form = "ema" if rule.ms_form == "addcmul" else rule.ms_form  # the target is |g|**2 itself
    new_ms = update_moment(jnp.real(ms).astype(real), target, rho_r, form, weight_r)
    variance = new_ms
    new_mg = None
    if mg is not None:
        rho_c, weight_c = decay_and_complement(rho, dtype, rule.rho_complement)
        new_mg = update_moment(mg.astype(dtype), g, rho_c, rule.mg_form, weight_c)
        new_mg = new_mg.astype(mg.dtype).astype(dtype)
        variance = new_ms - (jnp.conj(new_mg) * new_mg).real
    denominator = rms_denominator(
        variance, as_compute(epsilon, real), eps_in_sqrt=rule.eps_in_sqrt, clamp=mg is not None
    )
    update = jax.lax.complex(jnp.real(g) / denominator, jnp.imag(g) / denominator)
    return (
        update.astype(grad.dtype),
        new_ms.astype(ms.dtype),
        None if mg is None else new_mg.astype(mg.dtype),  # type: ignore[union-attr]
    )


def momentum_step(
    update: jax.Array, mom: jax.Array, momentum: jax.typing.ArrayLike, nesterov: bool
) -> tuple[jax.Array, jax.Array]:
    r"""One heavy-ball step: :math:`m \leftarrow \mu m + u`; out :math:`m` or :math:`u + \mu m`.

    Returns ``(out, mom)``: the output in ``update.dtype`` and the buffer in its own dtype.
    """
    work = compute_dtype(update.dtype, mom.dtype)
    mu = as_compute(momentum, work)
    u = update.astype(work)
    new_mom = mu * mom.astype(work) + u
    out = u + mu * new_mom if nesterov else new_mom
    return out.astype(update.dtype), new_mom.astype(mom.dtype)


def decay_rows(acc: jax.Array, rho: jax.typing.ArrayLike, missed: jax.Array) -> jax.Array:
    r"""``missed`` zero-gradient steps of a running mean at once: :math:`m\, \rho^k`.

    ``missed`` broadcasts against ``acc`` (one count per row).
    """
    work = compute_dtype(acc.dtype)
    factor = as_compute(rho, work) ** missed.astype(work)
    return (acc.astype(work) * factor).astype(acc.dtype)


def momentum_catch_up(
    mom: jax.Array, momentum: jax.typing.ArrayLike, missed: jax.Array
) -> tuple[jax.Array, jax.Array]:
    r"""``missed`` zero-update steps of the momentum buffer at once.

    After :math:`k` such steps the buffer is :math:`\mu^k m` and its outputs add up to
    :math:`\sum_{j=1}^{k} \mu^j m = m\, \mu (1 - \mu^k)/(1 - \mu)` (:math:`k m` at
    :math:`\mu = 1`). Returns ``(mom, summed)``, the sum in the compute dtype.
    """
    work = compute_dtype(mom.dtype)
    mu, steps = as_compute(momentum, work), missed.astype(work)
    mu_k = mu**steps
    series = jnp.where(mu == 1, steps, mu * (1 - mu_k) / jnp.where(mu == 1, 1, 1 - mu))
    buffer = mom.astype(work)
    return (buffer * mu_k).astype(mom.dtype), buffer * series


def scale_values(update: jax.Array, factor: jax.Array) -> jax.Array:
    """``update * factor`` in the compute dtype (``factor`` already in it), rounded once."""
    return (update.astype(factor.dtype) * factor).astype(update.dtype)


def learning_rate_at(
    learning_rate: jax.typing.ArrayLike | Callable[[jax.Array], jax.typing.ArrayLike],
    decay: jax.typing.ArrayLike,
    count: jax.Array,
    dtype: jnp.dtype,
) -> jax.Array:
    """The learning rate at step ``count``: ``schedule(count) / (1 + decay * count)``.

    ``count`` is the number of updates applied before this one (Keras's ``iterations``).
    """
    value = as_compute(learning_rate(count) if callable(learning_rate) else learning_rate, dtype)
    if is_static(decay) and float(decay) == 0.0:  # type: ignore[arg-type]
        return value  # lr / (1 + 0 * t) is lr exactly; skip it in the compiled step
    return value / (1 + as_compute(decay, dtype) * count.astype(dtype))
