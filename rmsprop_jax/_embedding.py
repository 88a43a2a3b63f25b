"""Sparse gradients for losses that look rows up from a table, without a dense table gradient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._sharding import gather_sharding
from ._sparse_rows import SparseRows

__all__ = ["value_and_sparse_grad"]


def value_and_sparse_grad(
    fn: Callable[..., Any],
    table: jax.Array,
    indices: jax.Array,
    *args: Any,
    has_aux: bool = False,
) -> tuple[Any, tuple[Any, ...]]:
    r"""Evaluates ``fn(table[indices], *args)`` and its gradient, the table's as `SparseRows`.

    JAX differentiates a lookup ``table[indices]`` into a dense, table-sized gradient. This
    helper gathers the rows first and differentiates with respect to the gathered rows, so the
    cost follows ``indices.size``, not the table:

    .. math::

      \frac{\partial L}{\partial \text{table}} =
      \text{SparseRows}\Big(\text{indices},\ \frac{\partial L}{\partial\, \text{rows}},\
      \text{table.shape}\Big), \qquad \text{rows} = \text{table}[\text{indices}].

    Args:
      fn: the loss, called as ``fn(rows, *args)`` where ``rows`` has shape
        ``indices.shape + table.shape[1:]``; returns a scalar (or ``(scalar, aux)``).
      table: the embedding table, ``[num_rows, *row_shape]``.
      indices: integer row numbers of any shape (out-of-range rows read as zeros and are
        dropped by the update).
      *args: further arguments of ``fn``, differentiated densely.
      has_aux: whether ``fn`` returns ``(value, aux)``.

    Returns:
      ``(value, (table_grad, *arg_grads))`` (``value`` is ``(value, aux)`` with ``has_aux``),
      where ``table_grad`` is a `SparseRows` with one row per entry of ``indices``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> table = jnp.arange(8.0).reshape(4, 2)
      >>> loss, (grad,) = rj.value_and_sparse_grad(lambda rows: jnp.sum(rows**2), table,
      ...                                          jnp.array([3, 1]))
      >>> grad.todense()
      Array([[ 0.,  0.],
             [ 4.,  6.],
             [ 0.,  0.],
             [12., 14.]], dtype=float32)
    """
    indices = jnp.asarray(indices)
    rows = table.at[indices].get(
        mode="fill", fill_value=0, out_sharding=gather_sharding(table, indices)
    )
    argnums = tuple(range(1 + len(args)))
    value, grads = jax.value_and_grad(fn, argnums=argnums, has_aux=has_aux)(rows, *args)
    flat = indices.reshape(-1)
    table_grad = SparseRows.tree_unflatten(
        (tuple(table.shape), False, False),
        (flat, grads[0].reshape((flat.shape[0], *table.shape[1:]))),
    )
    return value, (table_grad, *grads[1:])
