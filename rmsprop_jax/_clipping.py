"""The clipping stages, with TensorFlow's formulas: by value, by tensor norm, by global norm.

`rmsprop_jax.rmsprop` applies them in Keras's order: value, norm, global norm. On a `SparseRows`
gradient they act on its ``values`` before duplicate rows are summed, as TF does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._numerics import as_compute, compute_dtype
from ._sparse_rows import is_sparse
from ._tree import leaves, map_values
from ._validation import check_range

__all__ = ["clip_by_global_norm", "clip_by_norm", "clip_by_value"]


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


def clip_by_norm(clipnorm: jax.typing.ArrayLike) -> optax.GradientTransformation:
    r"""Rescales each tensor whose L2 norm exceeds ``clipnorm`` (Keras's ``clipnorm``).

    .. math:: \text{out} = \frac{g \cdot c}{\max(\lVert g \rVert_2,\, c)}

    per tensor, as ``tf.clip_by_norm`` (a zero tensor stays zero if :math:`c > 0`, else NaN).

    Args:
      clipnorm: the largest L2 norm :math:`c` a tensor may keep, >= 0.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.clip_by_norm(1.0).update(jnp.array([3.0, 4.0]), None)[0]
      Array([0.6, 0.8], dtype=float32)
    """
    check_range("clipnorm", clipnorm, low=0.0, hint="Use None for no clipping.")

    def leaf(grad: jax.Array) -> jax.Array:
        dtype = compute_dtype(grad.dtype)
        g, bound = grad.astype(dtype), as_compute(clipnorm, dtype)
        l2sum = jnp.sum(g * g)
        positive = l2sum > 0
        l2norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, l2sum, 1)), l2sum)
        return (g * bound / jnp.maximum(l2norm, bound)).astype(grad.dtype)

    return optax.stateless(lambda updates, _: map_values(leaf, updates))


def clip_by_global_norm(global_clipnorm: jax.typing.ArrayLike) -> optax.GradientTransformation:
    r"""Rescales the whole tree when its global L2 norm exceeds ``global_clipnorm``.

    .. math::

      n = \sqrt{\textstyle\sum_i \lVert g_i \rVert_2^2}, \qquad
      \text{out}_i = g_i \cdot c \cdot \min(1/n,\, 1/c)

    as ``tf.clip_by_global_norm``: a non-finite norm turns every update into NaN.

    Args:
      global_clipnorm: the largest global norm :math:`c`, >= 0.

    Returns:
      A stateless ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> grads = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
      >>> rj.clip_by_global_norm(1.0).update(grads, None)[0]
      {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}
    """
    check_range("global_clipnorm", global_clipnorm, low=0.0, hint="Use None for no clipping.")

    def clip(updates: optax.Updates, _: Any) -> optax.Updates:
        values = [leaf.values if is_sparse(leaf) else leaf for leaf in leaves(updates)]
        if not values:
            return updates
        dtype = compute_dtype(*(value.dtype for value in values))
        bound = as_compute(global_clipnorm, dtype)
        squares = [jnp.sum(jnp.square(value.astype(dtype))) for value in values]
        norm = jnp.sqrt(sum(squares[1:], start=squares[0]))
        scale = bound * jnp.minimum(1 / norm, 1 / bound) + (norm - norm)
        return map_values(lambda g: (g.astype(dtype) * scale).astype(g.dtype), updates)

    return optax.stateless(clip)
