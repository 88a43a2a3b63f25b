"""`SparseRows`: a gradient that is nonzero only at some rows of a table (TF's IndexedSlices)."""

from __future__ import annotations

from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from ._sharding import scatter_sharding
from ._validation import is_tracer

__all__ = ["SparseRows", "check_indices", "is_sparse", "is_sparse_or_none"]


_TREE_MAPPED_INDICES = (
    "SparseRows row numbers were replaced by an array of dtype {dtype}: a function was mapped "
    "over the leaves of a gradient tree that holds a SparseRows, reaching its row numbers. Map "
    "with is_leaf=lambda x: isinstance(x, rj.SparseRows) and act on `.values`, or use `-g`, "
    "`c * g`, `g / c`, `g1 + g2` (see docs/sparse.md)."
)


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("SparseRows row numbers are not random keys.")


# A key type whose name says what it holds and what to do: JAX's errors print it, e.g.
# "multiply does not accept dtypes key<SparseRows row numbers: ...>, float32".
_ROWS = jax.extend.random.define_prng_impl(
    key_shape=(2,),
    seed=_refuse,
    split=_refuse,
    random_bits=_refuse,
    fold_in=_refuse,
    name="SparseRows row numbers",
    tag="SparseRows row numbers: map a gradient tree with "
    "is_leaf=lambda x: isinstance(x, rj.SparseRows)",
)


def _encode(indices: jax.Array) -> jax.Array:
    """Row numbers as a key array: the same bits, in a dtype that refuses arithmetic.

    ``-x``, ``c * x``, a cast or ``lax.psum`` raise a TypeError (also at trace time), so no tree
    map over a gradient's leaves moves other rows.
    """
    words = jax.lax.bitcast_convert_type(indices, jnp.uint32)
    if words.ndim == indices.ndim:  # 32-bit row numbers: one word, a zero beside it
        words = jnp.stack([words, jnp.zeros_like(words)], axis=-1)
    return jax.random.wrap_key_data(words, impl=_ROWS)


def _decode(keys: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """The row numbers `_encode` stored, in their own integer dtype."""
    words = jax.random.key_data(keys)
    if jnp.dtype(dtype).itemsize == 4:
        words = words[..., 0]
    return jax.lax.bitcast_convert_type(words, dtype)


def _check_stored_rows(keys: Any) -> None:
    """A TypeError when a tree map replaced the stored row numbers by a numeric array.

    Placeholders without a dtype (``object()``, None, ``MaskedNode``) and ``float0`` tangents pass.
    """
    dtype = getattr(keys, "dtype", None)
    if dtype is None or jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype != jax.dtypes.float0:
        raise TypeError(_TREE_MAPPED_INDICES.format(dtype=dtype))


@jax.tree_util.register_pytree_node_class
class SparseRows:
    r"""A gradient for a table of ``shape`` that is nonzero only at rows ``indices``.

    The dense gradient it stands for is

    .. math:: G[r] = \sum_{i:\, \text{indices}[i] = r} \text{values}[i],

    so duplicate indices add up, as with TF's ``IndexedSlices``. A pytree (``shape`` and the flags
    static) whose row numbers refuse arithmetic, so a tree map over a gradient's leaves raises a
    TypeError instead of moving other rows: act on the object (``-g``, ``c * g``, ``g / c``,
    ``g1 + g2``, `psum`, ``table + g``). Indices outside ``[0, shape[0])`` never touch another
    row: a ValueError outside ``jax.jit``, dropped under it. See docs/sparse.md.

    ``max_distinct_rows=b`` bounds the distinct rows of a batch of ``k`` indices: a jitted step
    then works on ``b`` deduplicated slots instead of ``k`` (faster when many indices repeat).
    A batch with more than ``b`` distinct rows is never cut short: the step takes as many
    turns of ``b`` rows as it needs (a ``lax.while_loop``; eager steps use ``k`` slots). The
    maths is the unbounded step's; XLA may round a fused multiply-add differently (an ulp).

    Args:
      indices: int32 or int64 row indices, shape ``[k]``, in any order, duplicates allowed.
      values: the rows' gradients, shape ``[k, *shape[1:]]``.
      shape: the table's shape (static).
      unique_indices: promise that ``indices`` has no duplicates (JAX's scatter flag).
      indices_are_sorted: promise that ``indices`` is sorted (JAX's scatter flag).
      max_distinct_rows: an expected bound on the distinct rows (static), or None.

    Raises:
      ValueError: if ``values`` does not fit ``shape``, (outside jit) an index is out of range,
        or ``max_distinct_rows`` is not positive.
      TypeError: if ``indices`` is not an integer vector or ``max_distinct_rows`` not an int.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> g = rj.SparseRows(jnp.array([2, 0, 2]), jnp.ones((3, 2)), (4, 2))
      >>> g.todense()
      Array([[1., 1.],
             [0., 0.],
             [2., 2.],
             [0., 0.]], dtype=float32)
    """

    rows: Any  # the row numbers, stored by `_encode`
    values: jax.Array
    shape: tuple[int, ...]
    unique_indices: bool
    indices_are_sorted: bool
    index_dtype: jnp.dtype
    max_distinct_rows: int | None

    def __init__(
        self,
        indices: jax.typing.ArrayLike,
        values: jax.typing.ArrayLike,
        shape: tuple[int, ...] | list[int],
        *,
        unique_indices: bool = False,
        indices_are_sorted: bool = False,
        max_distinct_rows: int | None = None,
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
        if indices.dtype.itemsize not in (4, 8):
            indices = indices.astype(jnp.int32)
        self.rows, self.values = _encode(indices), values
        self.shape, self.index_dtype = shape, indices.dtype
        self.unique_indices, self.indices_are_sorted = unique_indices, indices_are_sorted
        self.max_distinct_rows = _checked_bound(max_distinct_rows)

    @classmethod
    def from_parts(
        cls,
        indices: jax.Array,
        values: jax.Array,
        shape: tuple[int, ...],
        *,
        unique_indices: bool = False,
        indices_are_sorted: bool = False,
        max_distinct_rows: int | None = None,
    ) -> SparseRows:
        """Internal constructor without checks (no host round trip; traced arrays welcome)."""
        bound = _checked_bound(max_distinct_rows)
        aux = (shape, unique_indices, indices_are_sorted, indices.dtype, bound)
        return cls.tree_unflatten(aux, (_encode(indices), values))

    @property
    def indices(self) -> jax.Array:
        """The row numbers, in the integer dtype they were given in."""
        return _decode(self.rows, self.index_dtype)

    def replace(
        self,
        indices: jax.Array,
        values: jax.Array,
        *,
        unique_indices: bool | None = None,
        indices_are_sorted: bool | None = None,
    ) -> SparseRows:
        """The same table with other rows and values, unchecked; flags left None are kept."""
        unique = self.unique_indices if unique_indices is None else unique_indices
        ordered = self.indices_are_sorted if indices_are_sorted is None else indices_are_sorted
        return SparseRows.from_parts(
            indices.astype(self.index_dtype),
            values,
            self.shape,
            unique_indices=unique,
            indices_are_sorted=ordered,
            max_distinct_rows=self.max_distinct_rows,
        )

    def with_values(self, values: jax.Array) -> SparseRows:
        """The same rows (indices, shape and flags) carrying new ``values``."""
        return self.tree_unflatten(self.tree_flatten()[1], (self.rows, values))

    def tree_flatten(self) -> tuple[tuple[Any, jax.Array], tuple[Any, ...]]:
        """The pytree children (stored row numbers, ``values``) and the static data."""
        static = (self.shape, self.unique_indices, self.indices_are_sorted, self.index_dtype)
        return (self.rows, self.values), (*static, self.max_distinct_rows)

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: tuple[Any, Any]) -> SparseRows:
        """Rebuilds without range checks; numeric row numbers mean a tree map reached them."""
        _check_stored_rows(children[0])
        rows = object.__new__(cls)
        rows.rows, rows.values = children
        rows.shape, rows.unique_indices, rows.indices_are_sorted, rows.index_dtype = aux[:4]
        rows.max_distinct_rows = aux[4]
        return rows

    def psum(self, axis_name: Any) -> SparseRows:
        """``lax.psum`` over a mapped axis: every device's rows and values, concatenated."""
        return self.replace(
            jax.lax.all_gather(self.indices, axis_name, tiled=True),
            jax.lax.all_gather(self.values, axis_name, tiled=True),
            unique_indices=False,
            indices_are_sorted=False,
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
        """``table + self``: ``values`` added at ``indices``, in ``table``'s dtype (others kept)."""
        table = jnp.asarray(table)
        if tuple(table.shape) != self.shape:
            raise ValueError(
                f"A SparseRows for a table of shape {list(self.shape)} cannot be added to an "
                f"array of shape {list(table.shape)}."
            )
        rows = jnp.where(self.valid(), self.indices, self.num_rows)
        # t - (-v) is t + v exactly (IEEE defines subtraction so); a descent step's values are
        # mostly -x, and XLA folds -(-x) to x, so the rows that fed x's scatter feed this one.
        return table.at[rows].subtract(
            -self.values.astype(table.dtype),
            mode="drop",
            unique_indices=self.unique_indices,
            indices_are_sorted=self.indices_are_sorted,
            out_sharding=scatter_sharding(table),  # pyright: ignore[reportCallIssue]
        )

    # numpy arrays defer `ndarray + SparseRows` to `__radd__` instead of looping over elements.
    __array_ufunc__ = None

    def __add__(self, other: Any) -> Any:
        """``g1 + g2``: the rows of both, concatenated; ``param + g``: `scatter_add_into`."""
        if isinstance(other, SparseRows):
            if self.shape != other.shape:
                raise ValueError(
                    "Two SparseRows add up only for the same table. "
                    f"Received: shapes {list(self.shape)} and {list(other.shape)}."
                )
            return self.replace(
                jnp.concatenate([self.indices, other.indices.astype(self.index_dtype)]),
                jnp.concatenate([self.values, other.values.astype(self.values.dtype)]),
                unique_indices=False,
                indices_are_sorted=False,
            )
        if isinstance(other, jax.Array | np.ndarray) or is_tracer(other):
            return self.scatter_add_into(other)
        return NotImplemented

    __radd__ = __add__  # param + update

    def __neg__(self) -> SparseRows:
        """The negated gradient (negated values, same rows)."""
        return self.with_values(-self.values)

    def __sub__(self, other: Any) -> Any:
        """``g1 - g2`` of two `SparseRows` (the rows of both, ``g2``'s negated)."""
        if isinstance(other, SparseRows):
            return self + (-other)
        return NotImplemented

    def __mul__(self, scale: Any) -> Any:
        """``g * c`` or ``c * g`` for a scalar ``c``: the values scaled, the rows kept."""
        if isinstance(scale, SparseRows) or jnp.ndim(scale) != 0:
            return NotImplemented
        return self.with_values(self.values * jnp.asarray(scale).astype(self.values.dtype))

    __rmul__ = __mul__

    def __truediv__(self, scale: Any) -> Any:
        """``g / c`` for a scalar ``c``."""
        if jnp.ndim(scale) != 0 or isinstance(scale, SparseRows):
            return NotImplemented
        return self.with_values(self.values / jnp.asarray(scale).astype(self.values.dtype))

    def __repr__(self) -> str:
        return f"SparseRows(indices={self.indices!r}, values={self.values!r}, shape={self.shape})"


def _checked_bound(bound: Any) -> int | None:
    """``max_distinct_rows`` as a positive int or None; an error naming it otherwise."""
    if bound is None:
        return None
    if isinstance(bound, bool) or not isinstance(bound, int | np.integer):
        raise TypeError(
            "`max_distinct_rows` must be a positive int (the most distinct rows a batch is "
            f"expected to hold) or None (no bound). Received: {bound!r} of type "
            f"{type(bound).__name__}; write e.g. max_distinct_rows=4096."
        )
    if bound < 1:
        raise ValueError(
            "`max_distinct_rows` must be a positive int (at least 1) or None (no bound). "
            f"Received: max_distinct_rows={bound}; write None to leave the rows unbounded."
        )
    return int(bound)


def _check_range_on_host(indices: jax.Array, num_rows: int) -> None:
    """Outside jit, a ValueError naming the first index outside ``[0, num_rows)``.

    Traced indices and indices spanning several processes (no host holds them all) pass.
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


def is_sparse(leaf: Any) -> bool:
    """Whether a pytree leaf is a `SparseRows` (use as ``is_leaf`` in ``jax.tree`` calls)."""
    return isinstance(leaf, SparseRows)


def is_sparse_or_none(leaf: Any) -> bool:
    """A `SparseRows` or None: the leaves of a gradient tree (None: no gradient this step)."""
    return leaf is None or isinstance(leaf, SparseRows)


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
