"""Sparse gradients for losses that look rows up from a table, without a dense table gradient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._sharding import gather_sharding
from ._sparse_rows import SparseRows, check_integer_indices

__all__ = ["value_and_sparse_grad"]


def value_and_sparse_grad(
    fn: Callable[..., Any],
    table: jax.Array,
    indices: jax.typing.ArrayLike,
    *args: Any,
    argnums: int | Sequence[int] | None = None,
    has_aux: bool = False,
) -> tuple[Any, Any]:
    r"""Evaluates ``fn(table[indices], *args)`` and its gradient, the table's as `SparseRows`.

    JAX differentiates a lookup ``table[indices]`` into a dense, table-sized gradient. This
    helper gathers the rows first and differentiates with respect to the gathered rows, so the
    cost follows ``indices.size``, not the table:

    .. math::

      \frac{\partial L}{\partial \text{table}} =
      \text{SparseRows}\Big(\text{indices},\ \frac{\partial L}{\partial\, \text{rows}},\
      \text{table.shape}\Big), \qquad \text{rows} = \text{table}[\text{indices}].

    Forward pass and gradient follow `SparseRows`'s rule for indices outside
    ``[0, table.shape[0])``, negative ones included: they never wrap around, read as zero rows
    and get no gradient (``table[-1]`` is not the last row here).

    Args:
      fn: the loss, called as ``fn(rows, *args)`` where ``rows`` has shape
        ``indices.shape + table.shape[1:]``; returns a scalar (or ``(scalar, aux)``).
      table: the embedding table, ``[num_rows, *row_shape]``.
      indices: integer row numbers of any shape.
      *args: further arguments of ``fn``.
      argnums: which of ``fn``'s arguments to differentiate, as in ``jax.value_and_grad``:
        position 0 is the table (its rows), ``1 + i`` is ``args[i]``. An int gives that one
        gradient, a sequence a tuple of them. None (the default) differentiates the table and
        every argument and gives the tuple ``(table_grad, *arg_grads)``.
      has_aux: whether ``fn`` returns ``(value, aux)``.

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
      >>> labels = jnp.array([1.0, 0.0])
      >>> loss, grad = rj.value_and_sparse_grad(
      ...     lambda rows, y: jnp.sum((rows[:, 0] - y) ** 2), table, jnp.array([3, 1]), labels,
      ...     argnums=0)
      >>> grad.values[:, 0]
      Array([10.,  4.], dtype=float32)
    """
    indices = check_integer_indices(indices)
    count = 1 + len(args)
    if argnums is None:
        positions, single = tuple(range(count)), False
    elif isinstance(argnums, int) and not isinstance(argnums, bool):
        positions, single = (argnums,), True
    elif isinstance(argnums, Sequence) and all(
        isinstance(n, int) and not isinstance(n, bool) for n in argnums
    ):
        positions, single = tuple(argnums), False
    else:
        raise TypeError(
            "`argnums` must be an int, a sequence of ints or None (every argument). "
            f"Received: argnums={argnums!r}."
        )
    for position in positions:
        if not 0 <= position < count:
            raise ValueError(
                f"`argnums` entries must name one of fn's {count} arguments (0 is the table's "
                f"rows, 1 + i is args[i]). Received: argnums={argnums!r}."
            )
    num_rows = table.shape[0]
    inside = (indices >= 0) & (indices < num_rows)
    rows = table.at[jnp.where(inside, indices, num_rows)].get(
        mode="fill", fill_value=0, out_sharding=gather_sharding(table, indices)
    )
    value, grads = jax.value_and_grad(fn, argnums=positions, has_aux=has_aux)(rows, *args)
    flat = indices.reshape(-1)
    grads = list(grads)
    if 0 in positions:
        slot = positions.index(0)
        grads[slot] = SparseRows.from_parts(
            flat,
            grads[slot].reshape((flat.shape[0], *table.shape[1:])),
            tuple(table.shape),
            unique_indices=False,
            indices_are_sorted=False,
        )
    return value, grads[0] if single else tuple(grads)
