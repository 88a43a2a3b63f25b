"""Per-element RMSprop maths, shared by every stage (and by the sparse path) so they cannot drift.

Each helper follows a framework's order of floating-point operations, not only its algebra:
``m + (x - m) * (1 - rho)`` (TF's C++ kernels) and ``rho * m + (1 - rho) * x`` (Keras's Python
path) are equal on paper but round differently, which matters when ``rho`` is 0 or values are tiny.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_bool, check_choice, is_static

__all__ = [
    "ComplexSquare",
    "MomentForm",
    "RhoComplement",
    "RmsNumerics",
    "as_compute",
    "compute_dtype",
    "decay_rows",
    "learning_rate_at",
    "momentum_catch_up",
    "momentum_step",
    "rms_scale",
    "scale_values",
]

MomentForm = Literal["ema", "interpolate", "lerp"]
"""How an accumulator moves towards its target ``x`` with decay ``rho``.

- ``"ema"``: ``rho * m + (1 - rho) * x`` (Keras, Keras 3, Optax, PyTorch's mean square).
- ``"interpolate"``: ``m + (x - m) * (1 - rho)`` (TF's ``ApplyRMSProp`` kernels).
- ``"lerp"``: PyTorch's ``torch.lerp(m, x, w)`` with ``w = 1 - rho``: ``m + w * (x - m)`` when
  ``w < 0.5``, else ``x - (x - m) * (1 - w)`` (PyTorch's centered mean gradient).
"""

RhoComplement = Literal["exact", "rounded"]
r"""How the weight :math:`w = 1 - \rho` of the new value is rounded (``fl`` rounds to the compute
dtype, float32 for float32 params).

- ``"exact"``: :math:`w = \mathrm{fl}(1 - \rho)`, the difference taken in the precision
  ``rho`` is given in (float64 for a Python float) and rounded once. PyTorch
  (``addcmul_(g, g, value=1 - alpha)``), Optax (``(1 - decay) * g**2``) and Keras 3
  (``ops.multiply(1 - rho, ...)``) compute ``1 - rho`` in Python this way.
- ``"rounded"``: :math:`w = \mathrm{fl}(1 - \mathrm{fl}(\rho))`, ``rho`` rounded to the compute
  dtype first. TF's ``ApplyRMSProp`` kernels (``1 - rho`` in ``T``) and tf.keras's
  ``one_minus_rho = 1.0 - rho_t`` (a float32 tensor) do this.

The two differ by :math:`|\mathrm{fl}(\rho) - \rho| / (1 - \rho)` relative, every step with the same
sign: 9e-7 at ``rho=0.99``, 1.3e-5 at 0.999, 1.7e-4 at 0.9999 in float32. For an injected
(array) ``rho`` both compute ``1 - rho`` in the array's own dtype, as
``optax.inject_hyperparams(optax.rmsprop)`` does: the double-precision value is gone by then.
"""

ComplexSquare = Literal["abs", "square", "split"]
"""What the mean square accumulates for a complex gradient ``g = a + b i``.

- ``"abs"``: ``|g|**2 = a*a + b*b``, a real mean square; both parts of ``g`` are divided by the
  same real denominator (Optax: ``abs_sq(g) = (conj(g) * g).real``).
- ``"square"``: the complex ``g*g``, with a complex square root (TF's kernels and tf.keras's
  ``tf.square``, which are generic in ``T``).
- ``"split"``: ``a`` and ``b`` are two separate reals, each with its own mean square, stored as
  the real and imaginary parts of the state (PyTorch: ``torch.view_as_real`` on params, grads and
  state).
"""


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
        for name in ("ms_form", "mg_form"):
            check_choice(name, getattr(self, name), ["ema", "interpolate", "lerp"])
        check_choice("rho_complement", self.rho_complement, ["exact", "rounded"])
        check_choice("complex_square", self.complex_square, ["abs", "square", "split"])


_NOT_INEXACT = (
    "RMSprop needs floating (or complex) arrays, but received one of dtype {dtype}: an integer "
    "or boolean array would round every step to garbage. Cast the params and gradients to a "
    "floating dtype, e.g. jax.tree.map(lambda p: p.astype(jnp.float32), params)."
)


def compute_dtype(*dtypes: jnp.dtype) -> jnp.dtype:
    """The dtype the maths runs in: float64 if any input is float64, else float32.

    Low-precision params and state (bfloat16, float16) are widened for the arithmetic and rounded
    once on the way out, so hyperparameters like ``rho=0.999`` keep their float32 value. Complex
    inputs give complex64 (complex128 where any input has 64-bit parts), so the imaginary part is
    never dropped.

    Raises:
      TypeError: for an integer or boolean dtype (checked when the step is traced).
    """
    kinds = [jnp.dtype(dtype) for dtype in dtypes]
    for dtype in kinds:
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(_NOT_INEXACT.format(dtype=dtype))
    wide = any(dtype in (jnp.float64, jnp.complex128) for dtype in kinds)
    if any(jnp.issubdtype(dtype, jnp.complexfloating) for dtype in kinds):
        return jnp.dtype(jnp.complex128 if wide else jnp.complex64)
    return jnp.dtype(jnp.float64 if wide else jnp.float32)


def real_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The real dtype of a complex dtype's parts (the dtype itself when it is real)."""
    return jnp.dtype(jnp.finfo(dtype).dtype)


def decay_and_complement(
    rho: jax.typing.ArrayLike, dtype: jnp.dtype, complement: RhoComplement
) -> tuple[jax.Array, jax.Array]:
    r"""``rho`` and ``w = 1 - rho`` in the compute ``dtype``, ``w`` rounded as ``complement`` says.

    .. math::

      \text{exact: } w = \mathrm{fl}(1 - \rho), \qquad
      \text{rounded: } w = \mathrm{fl}(1 - \mathrm{fl}(\rho))

    See `RhoComplement`. A static ``rho`` gives NumPy scalars (computed once, not per leaf).
    """
    decay = as_compute(rho, dtype)
    if complement == "rounded":
        return decay, 1 - decay
    if is_static(rho):
        return decay, np.asarray(1 - np.asarray(rho, np.float64), dtype)[()]  # type: ignore[return-value]
    array = jnp.asarray(rho)
    wider = jnp.promote_types(array.dtype, dtype)
    return decay, (1 - array.astype(wider)).astype(dtype)


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
    moment: jax.Array,
    target: jax.Array,
    rho: jax.Array,
    form: MomentForm,
    weight: jax.Array | None = None,
) -> jax.Array:
    """Moves an accumulator towards ``target`` with decay ``rho``, in the order of ``form``.

    Args:
      moment: the accumulator ``m`` (mean square or mean gradient), in the compute dtype.
      target: ``g * g`` for the mean square, ``g`` for the mean gradient.
      rho: the decay, a scalar in the compute dtype.
      form: one of ``"ema"``, ``"interpolate"``, ``"lerp"`` (see `MomentForm`).
      weight: ``1 - rho`` as the framework rounds it (see `decay_and_complement`); None
        computes it from the rounded ``rho``.

    Returns:
      The new accumulator, ``rho * m + (1 - rho) * target`` up to the rounding of ``form``.
    """
    if weight is None:
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
    rule: RmsNumerics,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    r"""One RMS scaling of one gradient array: the maths every scaling path applies per element.

    .. math::

      ms \leftarrow \rho\, ms + w\, g^2, \qquad
      mg \leftarrow \rho\, mg + w\, g \;\text{(centered)}, \qquad
      u = g / \operatorname{den}(ms - mg^2), \qquad w = 1 - \rho

    with :math:`w` rounded and, for a complex ``g``, :math:`g^2` read as ``rule`` says.

    Args:
      grad: the gradient ``g``.
      ms: the mean square, in the state dtype.
      mg: the mean gradient, or None when not centered.
      rho: the decay.
      epsilon: the denominator's epsilon.
      rule: the framework's per-element rules.

    Returns:
      ``(u, ms, mg)``: the scaled gradient in ``grad.dtype``, and the new accumulators in their
      own dtypes (``mg`` None when it was None).

    Raises:
      TypeError: for integer arrays, or a complex gradient with a real state where the state
        must hold both parts.
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
    new_ms = update_moment(ms.astype(dtype), g * g, rho, rule.ms_form, weight)
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
    real = real_dtype(dtype)
    g = grad.astype(dtype)
    rho_r, weight_r = decay_and_complement(rho, real, rule.rho_complement)
    target = (jnp.conj(g) * g).real  # optax.abs_sq
    new_ms = update_moment(jnp.real(ms).astype(real), target, rho_r, rule.ms_form, weight_r)
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
    mom: jax.Array, momentum: jax.typing.ArrayLike, missed: jax.Array, nesterov: bool
) -> tuple[jax.Array, jax.Array]:
    r"""``missed`` zero-update steps of the momentum buffer at once.

    After :math:`k` such steps the buffer is :math:`\mu^k m` and the outputs it gave add up to

    .. math:: \sum_{j=1}^{k} \mu^j\, m = m\, \frac{\mu (1 - \mu^k)}{1 - \mu}

    (times :math:`\mu` with Nesterov; :math:`k\, m` at :math:`\mu = 1`).

    Returns:
      ``(mom, out)``: the buffer in its dtype and the summed outputs in the compute dtype.
    """
    work = compute_dtype(mom.dtype)
    mu, steps = as_compute(momentum, work), missed.astype(work)
    mu_k = mu**steps
    series = jnp.where(mu == 1, steps, mu * (1 - mu_k) / jnp.where(mu == 1, 1, 1 - mu))
    if nesterov:
        series = mu * series
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
