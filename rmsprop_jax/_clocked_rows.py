"""`ClockedRows`: a gradient on a table whose rows the chain's clock keeps, with missed steps."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._sparse_rows import SparseRows

__all__ = ["ClockedRows", "per_row"]


@jax.tree_util.register_pytree_node_class
class ClockedRows(SparseRows):
    """A gradient on a tracked table, with each row's missed steps (internal to a chain).

    Three forms:

    - touched rows (``all_rows=False``): deduplicated rows, ``missed[i]`` the steps row
      ``indices[i]`` missed (0 for padding rows);
    - every row (``all_rows=True``): ``values`` is a dense gradient of the table's shape,
      ``missed`` has one entry per row;
    - catch-up only (``all_rows=True, take_step=False``): `rmsprop_jax.materialize` brings the
      rows up to date without a step; ``values`` are zeros.
    """

    missed: jax.Array | None
    all_rows: bool
    take_step: bool

    @classmethod
    def attach(
        cls,
        rows: SparseRows,
        missed: jax.Array | None,
        *,
        all_rows: bool = False,
        take_step: bool = True,
    ) -> ClockedRows:
        """``rows`` (indices, values, shape, flags) with ``missed`` and the form attached."""
        clocked = object.__new__(cls)
        clocked.indices, clocked.values, clocked.shape = rows.indices, rows.values, rows.shape
        clocked.unique_indices, clocked.indices_are_sorted = (
            rows.unique_indices,
            rows.indices_are_sorted,
        )
        clocked.missed, clocked.all_rows, clocked.take_step = missed, all_rows, take_step
        return clocked

    @classmethod
    def every_row(
        cls, dense: jax.Array, missed: jax.Array | None, *, take_step: bool
    ) -> ClockedRows:
        """A dense gradient (or zeros, for a catch-up) with one missed count per row (or None)."""
        rows = SparseRows.from_parts(
            jnp.arange(dense.shape[0] if dense.ndim else 1, dtype=jnp.int32),
            dense,
            tuple(dense.shape),
            unique_indices=True,
            indices_are_sorted=True,
        )
        return cls.attach(rows, missed, all_rows=True, take_step=take_step)

    def with_values(self, values: jax.Array) -> ClockedRows:
        """The same rows and missed counts carrying new ``values``."""
        return ClockedRows.attach(
            super().with_values(values),
            self.missed,
            all_rows=self.all_rows,
            take_step=self.take_step,
        )

    def released(self) -> jax.Array | SparseRows:
        """The plain update: the dense array for every-row forms, else a `SparseRows`."""
        if self.all_rows:
            return self.values
        return SparseRows.from_parts(
            self.indices,
            self.values,
            self.shape,
            unique_indices=self.unique_indices,
            indices_are_sorted=self.indices_are_sorted,
        )

    def tree_flatten(self) -> tuple[Any, tuple[Any, ...]]:
        """Children ``(indices, values, missed)``; shape, flags and form are static."""
        return (self.indices, self.values, self.missed), (
            self.shape,
            self.unique_indices,
            self.indices_are_sorted,
            self.all_rows,
            self.take_step,
        )

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: Any) -> ClockedRows:
        """Rebuilds from `tree_flatten`'s parts."""
        indices, values, missed = children
        shape, unique_indices, indices_are_sorted, all_rows, take_step = aux
        rows = SparseRows.from_parts(
            indices,
            values,
            shape,
            unique_indices=unique_indices,
            indices_are_sorted=indices_are_sorted,
        )
        return cls.attach(rows, missed, all_rows=all_rows, take_step=take_step)


def per_row(missed: jax.Array, like: jax.Array) -> jax.Array:
    """Reshapes a per-row vector to broadcast against rows of shape ``like.shape[1:]``."""
    return missed.reshape(missed.shape + (1,) * (like.ndim - 1))
