"""`SparseRows`: a gradient that is nonzero only at some rows of a table (TF's IndexedSlices)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

__all__ = ["SparseRows", "check_indices", "is_sparse"]


def _is_concrete(array: Any) -> bool:
    return not isinstance(array, jax.core.Tracer)  # pyright: ignore[reportAttributeAccessIssue]


@jax.tree_util.register_pytree_node_class
class SparseRows:
    r"""A gradient for a table of ``shape`` that is nonzero only at rows ``indices``.

    The dense gradient it stands for is

    .. math:: G[r] = \sum_{i:\, \text{indices}[i] = r} \text{values}[i],

    so duplicate indices add up, as with TF's ``IndexedSlices``. It is a pytree (``indices`` and
    ``values`` are its leaves, ``shape`` and the flags are static), so it jits, vmaps and shards.
    Every stage of this library accepts it and returns ``SparseRows`` updates, which
    `rmsprop_jax.apply_updates` scatter-adds into the table.

    Indices outside ``[0, shape[0])`` never wrap around and never touch another row: outside
    ``jax.jit`` they raise a ValueError here; under ``jax.jit`` the stages drop them (wrap a step
    in ``jax.experimental.checkify`` with `check_indices` to turn that into an error). Indices
    that span several processes (a global array under ``jax.distributed`` that is not fully
    addressable) cannot be read on one host, so they are not checked here either: they are
    dropped as under ``jax.jit``.

    Args:
      indices: int32 or int64 row indices, shape ``[k]``, in any order, duplicates allowed.
      values: the rows' gradients, shape ``[k, *shape[1:]]``.
      shape: the table's shape (static).
      unique_indices: promise that ``indices`` has no duplicates (JAX's scatter flag).
      indices_are_sorted: promise that ``indices`` is sorted (JAX's scatter flag).

    Raises:
      ValueError: if ``values`` does not fit ``shape``, or (outside jit) an index is out of range.
      TypeError: if ``indices`` is not an integer vector.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> g = rj.SparseRows(jnp.array([2, 0, 2]), jnp.ones((3, 2)), (4, 2))
      >>> g.todense()
      Array([[1., 1.],
             [0., 0.],
             [2., 2.],
             [0., 0.]], dtype=float32)
    """

    indices: jax.Array
    values: jax.Array
    shape: tuple[int, ...]
    unique_indices: bool
    indices_are_sorted: bool

    def __init__(
        self,
        indices: jax.typing.ArrayLike,
        values: jax.typing.ArrayLike,
        shape: tuple[int, ...] | list[int],
        *,
        unique_indices: bool = False,
        indices_are_sorted: bool = False,
    ) -> None:
        indices, values = jnp.asarray(indices), jnp.asarray(values)
        shape = tuple(int(size) for size in shape)
        if indices.ndim != 1 or not jnp.issubdtype(indices.dtype, jnp.integer):
            raise TypeError(
                "`indices` must be a vector of int32 or int64 row numbers. "
                f"Received: indices of shape {indices.shape} and dtype {indices.dtype}."
            )
        if len(shape) < 1 or values.shape != (indices.shape[0], *shape[1:]):
            raise ValueError(
                f"`values` must have shape [len(indices), *shape[1:]] = "
                f"{[indices.shape[0], *shape[1:]]} for a table of shape {list(shape)}. "
                f"Received: values of shape {list(values.shape)}."
            )
        if _is_concrete(indices) and indices.is_fully_addressable:
            host = np.asarray(indices)
            bad = np.flatnonzero((host < 0) | (host >= shape[0]))
            if bad.size:
                raise ValueError(
                    f"`indices` must lie in [0, {shape[0]}) for a table of {shape[0]} rows. "
                    f"Received: indices[{bad[0]}]={host[bad[0]]} "
                    f"({bad.size} out of range in all)."
                )
        self.indices, self.values, self.shape = indices, values, shape
        self.unique_indices, self.indices_are_sorted = unique_indices, indices_are_sorted

    def tree_flatten(self) -> tuple[tuple[jax.Array, jax.Array], tuple[Any, ...]]:
        """The pytree children (``indices``, ``values``) and the static data."""
        return (self.indices, self.values), (
            self.shape,
            self.unique_indices,
            self.indices_are_sorted,
        )

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: tuple[Any, Any]) -> SparseRows:
        """Rebuilds without checks: pytree utilities pass placeholders as children."""
        rows = object.__new__(cls)
        rows.indices, rows.values = children
        rows.shape, rows.unique_indices, rows.indices_are_sorted = aux
        return rows

    @property
    def dtype(self) -> jnp.dtype:
        """The dtype of the values."""
        return self.values.dtype

    @property
    def num_rows(self) -> int:
        """The number of rows of the table."""
        return self.shape[0]

    def valid(self) -> jax.Array:
        """A boolean vector: which indices lie inside the table."""
        return (self.indices >= 0) & (self.indices < self.num_rows)

    def todense(self) -> jax.Array:
        """The dense gradient: ``values`` summed into a zero table (out-of-range rows dropped)."""
        rows = jnp.where(self.valid(), self.indices, self.num_rows)
        return jnp.zeros(self.shape, self.dtype).at[rows].add(self.values, mode="drop")

    def __repr__(self) -> str:
        return f"SparseRows(indices={self.indices!r}, values={self.values!r}, shape={self.shape})"


def is_sparse(leaf: Any) -> bool:
    """Whether a pytree leaf is a `SparseRows` (use as ``is_leaf`` in ``jax.tree`` calls)."""
    return isinstance(leaf, SparseRows)


def check_indices(tree: Any) -> None:
    """Inside ``jax.experimental.checkify.checkify``, fails on out-of-range `SparseRows` indices.

    Under ``jax.jit`` out-of-range indices are dropped silently; call this on the gradients in a
    checkified step to make them an error instead.

    Args:
      tree: a gradient tree whose `SparseRows` leaves are checked (dense leaves are ignored).

    Example:
      >>> import jax, jax.numpy as jnp, rmsprop_jax as rj
      >>> from jax.experimental import checkify
      >>> def step(indices):
      ...     rj.check_indices(rj.SparseRows(indices, jnp.ones((2, 1)), (3, 1)))
      >>> error, _ = checkify.checkify(jax.jit(step))(jnp.array([0, 5]))
      >>> print(error.get())
      SparseRows index out of range: indices[1]=5 at the root for a table of 3 rows (`check` failed)
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree, is_leaf=is_sparse):
        if is_sparse(leaf):
            if not leaf.indices.size:
                continue  # no index, nothing out of range (and no element to name)
            first_bad = jnp.argmin(leaf.valid())
            checkify.check(
                jnp.all(leaf.valid()),
                "SparseRows index out of range: indices[{i}]={v} at "
                + (jax.tree_util.keystr(path) or "the root")
                + f" for a table of {leaf.num_rows} rows",
                i=first_bad,
                v=leaf.indices[first_bad],
            )
