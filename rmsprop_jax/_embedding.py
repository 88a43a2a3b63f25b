"""Sparse gradients for losses that look rows up from a table, without a dense table gradient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._sharding import gather_sharding
from ._sparse_rows import SparseRows

__all__ = ["value_and_sparse_grad"]


def value_and_sparse_grad(
    fn: Callable[..., Any],
    table: jax.Array,
    indices: jax.typing.ArrayLike,
    *args: Any,
    argnums: int | Sequence[int] | None = None,
    has_aux: bool = False,
    max_distinct_rows: int | None = None,
) -> tuple[Any, Any]:
    r"""Evaluates ``fn(table[indices], *args)`` and its gradient, the table's as `SparseRows`.

    It differentiates the gathered rows, not the table, so the cost follows ``indices.size``:

    .. math::

      \frac{\partial L}{\partial \text{table}} =
      \text{SparseRows}\Big(\text{indices},\ \frac{\partial L}{\partial\, \text{rows}},\
      \text{table.shape}\Big), \qquad \text{rows} = \text{table}[\text{indices}].

    Args:
      fn: the loss, called as ``fn(rows, *args)`` where ``rows`` has shape
        ``indices.shape + table.shape[1:]``; returns a scalar (or ``(scalar, aux)``).
      table: the embedding table, ``[num_rows, *row_shape]``.
      indices: integer row numbers of any shape; those outside ``[0, table.shape[0])``, negative
        ones too, read as zero rows and get no gradient (as in `SparseRows`).
      *args: further arguments of ``fn``.
      argnums: as in ``jax.value_and_grad``: 0 is the table (its rows), ``1 + i`` is ``args[i]``.
        None (the default) gives the tuple ``(table_grad, *arg_grads)`` of every argument.
      has_aux: whether ``fn`` returns ``(value, aux)``.
      max_distinct_rows: the `SparseRows` bound on distinct rows per batch (None: none).

    Returns:
      ``(value, grads)`` (``value`` is ``(value, aux)`` with ``has_aux``), where the table's
      gradient is a `SparseRows` with one row per entry of ``indices``.

    Raises:
      TypeError: if ``indices`` are not integers, or ``argnums`` is not an int, a sequence of
        ints or None.
      ValueError: if an ``argnums`` entry names no argument.

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
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(
            "`indices` must be integer row numbers (int32 or int64). Received: indices of dtype "
            f"{indices.dtype}. Cast them, e.g. indices.astype(jnp.int32), if they are whole "
            "numbers."
        )

    def is_int(n: Any) -> bool:
        return isinstance(n, int) and not isinstance(n, bool)

    count, single = 1 + len(args), is_int(argnums)
    positions: Any = tuple(range(count)) if argnums is None else (argnums,) if single else argnums
    if not isinstance(positions, Sequence) or not all(map(is_int, positions)):
        raise TypeError(
            "`argnums` must be an int, a sequence of ints or None (every argument). "
            f"Received: argnums={argnums!r}."
        )
    if not all(0 <= position < count for position in positions):
        raise ValueError(
            f"`argnums` entries must name one of fn's {count} arguments (0 is the table's "
            f"rows, 1 + i is args[i]). Received: argnums={argnums!r}."
        )
    positions, num_rows = tuple(positions), table.shape[0]
    inside = (indices >= 0) & (indices < num_rows)
    rows = table.at[jnp.where(inside, indices, num_rows)].get(
        mode="fill", fill_value=0, out_sharding=gather_sharding(table, indices)
    )
    value, grads = jax.value_and_grad(fn, argnums=positions, has_aux=has_aux)(rows, *args)
    grads = list(grads)
    if 0 in positions:
        flat, slot = indices.reshape(-1), positions.index(0)
        grads[slot] = SparseRows.from_parts(
            flat,
            grads[slot].reshape((flat.shape[0], *table.shape[1:])),
            tuple(table.shape),
            max_distinct_rows=max_distinct_rows,
        )
    return value, grads[0] if single else tuple(grads)
