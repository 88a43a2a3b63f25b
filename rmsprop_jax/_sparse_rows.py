"""`SparseRows`: a gradient that is nonzero only at some rows of a table (TF's IndexedSlices)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from ._sharding import scatter_sharding
from ._validation import is_tracer

__all__ = ["SparseRows", "check_indices", "check_integer_indices", "is_sparse"]


_TREE_MAPPED_INDICES = (
    "SparseRows indices must be integers. Received: indices of dtype {dtype}, which happens when "
    "a function is mapped over the leaves of a gradient tree that holds a SparseRows (optax.scale, "
    "optax.clip, a cast or a mean with jax.tree.map, ...): it treats the row numbers as numbers. "
    "Use this library's stages (rj.clip_by_value, rj.clip_by_global_norm, rj.skip_nonfinite), "
    "add SparseRows gradients with `+` and scale them with `*` or `/`, or map with "
    "is_leaf=lambda x: isinstance(x, rj.SparseRows) and act on `.values` (see docs/sparse.md)."
)


def _check_integer_indices(indices: Any) -> None:
    """Raises the TypeError of `_TREE_MAPPED_INDICES` for inexact (float, complex) indices.

    Children without a dtype (pytree utilities pass ``object()``, None, optax's ``MaskedNode``) and
    ``float0`` tangents (what ``jax.grad`` gives integer leaves) pass.
    """
    dtype = getattr(indices, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(_TREE_MAPPED_INDICES.format(dtype=dtype))


def _shapes_match(a: SparseRows, b: SparseRows) -> None:
    if a.shape != b.shape:
        raise ValueError(
            "Two SparseRows add up only for the same table. "
            f"Received: shapes {list(a.shape)} and {list(b.shape)}."
        )


@jax.tree_util.register_pytree_node_class
class SparseRows:
    r"""A gradient for a table of ``shape`` that is nonzero only at rows ``indices``.

    The dense gradient it stands for is

    .. math:: G[r] = \sum_{i:\, \text{indices}[i] = r} \text{values}[i],

    so duplicate indices add up, as with TF's ``IndexedSlices``. It is a pytree (``indices`` and
    ``values`` are its leaves, ``shape`` and the flags are static), so it jits, vmaps and shards.
    Every stage of this library accepts it and returns ``SparseRows`` updates, which
    `rmsprop_jax.apply_updates` scatter-adds into the table.

    Arithmetic is defined on the object, so generic code that adds updates to params works:
    ``table + rows`` is `scatter_add_into` (``optax.apply_updates``, Flax's
    ``TrainState.apply_gradients`` and ``nnx.Optimizer.update`` give `rmsprop_jax.apply_updates`'s
    result), ``rows1 + rows2`` is their sum (the rows of both, concatenated), and ``-rows``,
    ``c * rows``, ``rows / c`` act on the values. A function mapped over the *leaves* of a tree
    reaches the indices too: map with ``is_leaf=lambda x: isinstance(x, SparseRows)``. Indices
    that such a map turned into floats raise a TypeError when the tree is rebuilt.

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
        _check_range_on_host(indices, shape[0])
        self.indices, self.values, self.shape = indices, values, shape
        self.unique_indices, self.indices_are_sorted = unique_indices, indices_are_sorted

    @classmethod
    def from_parts(
        cls,
        indices: jax.Array,
        values: jax.Array,
        shape: tuple[int, ...],
        *,
        unique_indices: bool,
        indices_are_sorted: bool,
    ) -> SparseRows:
        """Internal constructor without checks, for arrays a stage has already validated.

        It takes no host round trip and accepts traced arrays; the public constructor validates.
        """
        rows = object.__new__(cls)
        rows.indices, rows.values, rows.shape = indices, values, shape
        rows.unique_indices, rows.indices_are_sorted = unique_indices, indices_are_sorted
        return rows

    def with_values(self, values: jax.Array) -> SparseRows:
        """The same rows (indices, shape and flags) carrying new ``values``."""
        return SparseRows.from_parts(
            self.indices,
            values,
            self.shape,
            unique_indices=self.unique_indices,
            indices_are_sorted=self.indices_are_sorted,
        )

    def tree_flatten(self) -> tuple[tuple[jax.Array, jax.Array], tuple[Any, ...]]:
        """The pytree children (``indices``, ``values``) and the static data."""
        return (self.indices, self.values), (
            self.shape,
            self.unique_indices,
            self.indices_are_sorted,
        )

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: tuple[Any, Any]) -> SparseRows:
        """Rebuilds without range checks (pytree utilities pass placeholders as children).

        Inexact indices are refused: they mean a tree function mapped over the row numbers.
        """
        indices, values = children
        _check_integer_indices(indices)
        shape, unique_indices, indices_are_sorted = aux
        return cls.from_parts(
            indices,
            values,
            shape,
            unique_indices=unique_indices,
            indices_are_sorted=indices_are_sorted,
        )

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

    def scatter_add_into(self, table: jax.typing.ArrayLike) -> jax.Array:
        """``table`` with ``values`` added at ``indices``, in ``table``'s dtype.

        Only the named rows change; out-of-range rows are dropped. This is ``table + self``.
        """
        table = jnp.asarray(table)
        if tuple(table.shape) != self.shape:
            raise ValueError(
                f"A SparseRows for a table of shape {list(self.shape)} cannot be added to an "
                f"array of shape {list(table.shape)}."
            )
        rows = jnp.where(self.valid(), self.indices, self.num_rows)
        return table.at[rows].add(
            self.values.astype(table.dtype),
            mode="drop",
            unique_indices=self.unique_indices,
            indices_are_sorted=self.indices_are_sorted,
            out_sharding=scatter_sharding(table),
        )

    # numpy arrays defer `ndarray + SparseRows` to `__radd__` instead of looping over elements.
    __array_ufunc__ = None

    def __add__(self, other: Any) -> Any:
        """``g1 + g2`` of two `SparseRows`: their sum, as the concatenation of their rows.

        Concatenation is exact because duplicate indices are summed. With a dense array, the
        array with these rows added (`scatter_add_into`), so ``param + update`` applies an update
        (``optax.apply_updates``, Flax's ``TrainState.apply_gradients``, ``nnx.Optimizer``).
        """
        if isinstance(other, SparseRows):
            _shapes_match(self, other)
            return SparseRows.from_parts(
                jnp.concatenate([self.indices, other.indices.astype(self.indices.dtype)]),
                jnp.concatenate([self.values, other.values.astype(self.values.dtype)]),
                self.shape,
                unique_indices=False,
                indices_are_sorted=False,
            )
        if isinstance(other, jax.Array | np.ndarray) or is_tracer(other):
            return self.scatter_add_into(other)
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        """``param + update``: see `__add__`."""
        return self.__add__(other)

    def __neg__(self) -> SparseRows:
        """The negated gradient (negated values, same rows)."""
        return self.with_values(-self.values)

    def __sub__(self, other: Any) -> Any:
        """``g1 - g2`` of two `SparseRows` (the rows of both, ``g2``'s negated)."""
        if isinstance(other, SparseRows):
            return self + (-other)
        return NotImplemented

    def __mul__(self, scale: Any) -> Any:
        """``g * c`` for a scalar ``c``: the values scaled, the rows kept (e.g. a mean of grads)."""
        if isinstance(scale, SparseRows) or jnp.ndim(scale) != 0:
            return NotImplemented
        return self.with_values(self.values * jnp.asarray(scale).astype(self.values.dtype))

    def __rmul__(self, scale: Any) -> Any:
        """``c * g``: see `__mul__`."""
        return self.__mul__(scale)

    def __truediv__(self, scale: Any) -> Any:
        """``g / c`` for a scalar ``c``."""
        if jnp.ndim(scale) != 0 or isinstance(scale, SparseRows):
            return NotImplemented
        return self.with_values(self.values / jnp.asarray(scale).astype(self.values.dtype))

    def __repr__(self) -> str:
        return f"SparseRows(indices={self.indices!r}, values={self.values!r}, shape={self.shape})"


def _check_range_on_host(indices: jax.Array, num_rows: int) -> None:
    """Outside jit, raises a ValueError naming the first index outside ``[0, num_rows)``.

    Traced indices are not checked here (the stages drop out-of-range rows; see `check_indices`),
    nor are indices that span several processes (not fully addressable: no host holds them all).
    """
    if is_tracer(indices) or not indices.is_fully_addressable:
        return
    host = np.asarray(indices)
    bad = np.flatnonzero((host < 0) | (host >= num_rows))
    if bad.size:
        raise ValueError(
            f"`indices` must lie in [0, {num_rows}) for a table of {num_rows} rows. "
            f"Received: indices[{bad[0]}]={host[bad[0]]} "
            f"({bad.size} out of range in all)."
        )


def check_integer_indices(indices: Any, *, name: str = "indices") -> jax.Array:
    """``indices`` as an array, or a TypeError if they are not integers (floats, bools)."""
    array = jnp.asarray(indices)
    if not jnp.issubdtype(array.dtype, jnp.integer):
        raise TypeError(
            f"`{name}` must be integer row numbers (int32 or int64). Received: {name} of dtype "
            f"{array.dtype}. Cast them, e.g. {name}.astype(jnp.int32), if they are whole numbers."
        )
    return array


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
