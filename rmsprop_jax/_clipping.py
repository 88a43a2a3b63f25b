"""The clipping stages: by value, by tensor norm, by global norm, each with a framework's formula.

On a `SparseRows` gradient they act on its ``values``. The formulas: see docs/conventions.md.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from ._numerics import as_compute, compute_dtype
from ._sparse_rows import is_sparse
from ._tree import leaves, map_values
from ._validation import check_choice, check_range

ClipFormula = Literal["tf", "torch", "optax"]  # TF and Keras, clip_grad_norm_, Optax
_FORMULAS = ["tf", "torch", "optax"]


def _scale(norm: jax.Array, bound: jax.Array, formula: ClipFormula) -> jax.Array:
    """The factor a gradient of norm ``norm`` is multiplied by (``"optax"``: see its caller)."""
    if formula == "torch":  # clip_coef = max_norm / (total_norm + 1e-6), clamped at 1
        return jnp.minimum(bound / (norm + as_compute(1e-6, norm.dtype)), 1)
    return bound * jnp.minimum(1 / norm, 1 / bound) + (norm - norm)  # NaN for a non-finite norm


def clip_by_value(clipvalue: jax.typing.ArrayLike) -> optax.GradientTransformation:
    r"""Clips every element to ``[-clipvalue, clipvalue]`` (Keras's ``clipvalue``).

    .. math:: \text{out} = \min(\max(g, -c), c)

    Args:
      clipvalue: the bound :math:`c`, >= 0.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.clip_by_value(0.5).update(jnp.array([-2.0, 0.1, 3.0]), None)[0]
      Array([-0.5,  0.1,  0.5], dtype=float32)
    """
    check_range("clipvalue", clipvalue, low=0.0, hint="Use None for no clipping.")

    def leaf(grad: jax.Array) -> jax.Array:
        bound = as_compute(clipvalue, compute_dtype(grad.dtype))
        return jnp.clip(grad.astype(bound.dtype), -bound, bound).astype(grad.dtype)

    return optax.stateless(lambda updates, _: map_values(leaf, updates))


def clip_by_norm(
    clipnorm: jax.typing.ArrayLike, *, formula: ClipFormula = "tf"
) -> optax.GradientTransformation:
    r"""Rescales each tensor whose L2 norm exceeds ``clipnorm`` (Keras's ``clipnorm``).

    .. math::

      \text{"tf"}: \frac{g \cdot c}{\max(\lVert g \rVert_2,\, c)}, \quad
      \text{"torch"}: g \cdot \min\Big(\frac{c}{\lVert g \rVert_2 + 10^{-6}}, 1\Big), \quad
      \text{"optax"}: g \text{ if } \lVert g \rVert_2 < c
        \text{ else } g / \lVert g \rVert_2 \cdot c

    per tensor: ``tf.clip_by_norm``, ``torch.nn.utils.clip_grad_norm_`` or Optax's rule.

    Args:
      clipnorm: the largest L2 norm :math:`c` a tensor may keep, >= 0.
      formula: ``"tf"``, ``"torch"`` or ``"optax"``.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.clip_by_norm(1.0).update(jnp.array([3.0, 4.0]), None)[0]
      Array([0.6, 0.8], dtype=float32)
    """
    check_range("clipnorm", clipnorm, low=0.0, hint="Use None for no clipping.")
    check_choice("formula", formula, _FORMULAS)

    def leaf(grad: jax.Array) -> jax.Array:
        if formula == "optax":
            return _optax_clip([grad], clipnorm)[0]
        dtype = compute_dtype(grad.dtype)
        g, bound = grad.astype(dtype), as_compute(clipnorm, dtype)
        l2sum = jnp.sum(g * g)
        if formula == "torch":
            return (g * _scale(jnp.sqrt(l2sum), bound, formula)).astype(grad.dtype)
        positive = l2sum > 0
        l2norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, l2sum, 1)), l2sum)
        return (g * bound / jnp.maximum(l2norm, bound)).astype(grad.dtype)

    return optax.stateless(lambda updates, _: map_values(leaf, updates))


def clip_by_global_norm(
    max_norm: jax.typing.ArrayLike, *, formula: ClipFormula = "optax"
) -> optax.GradientTransformation:
    r"""Rescales the whole tree when its global L2 norm exceeds ``max_norm``.

    .. math::

      n = \sqrt{\textstyle\sum_i \lVert g_i \rVert_2^2}, \qquad
      \text{out}_i = \begin{cases}
        g_i \text{ if } n < c \text{ else } g_i / n \cdot c & \text{"optax"} \\
        g_i \cdot c \cdot \min(1/n,\, 1/c) & \text{"tf"} \\
        g_i \cdot \min(c / (n + 10^{-6}),\, 1) & \text{"torch"}
      \end{cases}

    ``"optax"`` is ``optax.clip_by_global_norm`` bit for bit, ``"tf"`` is
    ``tf.clip_by_global_norm`` and ``"torch"`` is ``torch.nn.utils.clip_grad_norm_``.

    Args:
      max_norm: the largest global norm :math:`c`, >= 0.
      formula: ``"optax"``, ``"tf"`` or ``"torch"``.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> grads = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
      >>> rj.clip_by_global_norm(1.0).update(grads, None)[0]
      {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}
    """
    check_range("max_norm", max_norm, low=0.0, hint="Use None for no clipping.")
    check_choice("formula", formula, _FORMULAS)

    def clip(updates: optax.Updates, _: Any) -> optax.Updates:
        values = [leaf.values if is_sparse(leaf) else leaf for leaf in leaves(updates)]
        if not values:
            return updates
        if formula == "optax":
            clipped = iter(_optax_clip(values, max_norm))
            return map_values(lambda g: next(clipped), updates)
        dtype = compute_dtype(*(value.dtype for value in values))
        bound = as_compute(max_norm, dtype)
        squares = [jnp.sum(jnp.square(value.astype(dtype))) for value in values]
        if formula == "torch":  # torch: the norm of the per-tensor norms
            squares = [jnp.square(jnp.sqrt(square)) for square in squares]
        norm = jnp.sqrt(sum(squares[1:], start=squares[0]))
        scale = _scale(norm, bound, formula)
        return map_values(lambda g: (g.astype(dtype) * scale).astype(g.dtype), updates)

    return optax.stateless(clip)


def _optax_clip(values: list[jax.Array], max_norm: jax.typing.ArrayLike) -> list[jax.Array]:
    """``optax.clip_by_global_norm``'s arithmetic on ``values`` (strict promotion allowed)."""
    sums = [jnp.sum(jnp.square(v.real) + jnp.square(v.imag)) for v in values]
    with jax.numpy_dtype_promotion("standard"):  # the dtype optax's implicit sum ends in
        dtype = jnp.result_type(*sums)
    norm = jnp.sqrt(sum((total.astype(dtype) for total in sums), start=jnp.zeros((), dtype)))
    return [
        jax.lax.select(norm < max_norm, v, (v / norm.astype(v.dtype)) * max_norm) for v in values
    ]
