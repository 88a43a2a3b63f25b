"""Rows of a table: deduplicate a `SparseRows`, gather and scatter rows, and the row-wise stages.

A stage's maths runs on a dense gradient whole, or on the gathered rows of a deduplicated
`SparseRows` (scattered back), so the cost follows the rows touched (docs/sparse.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from jax.tree_util import keystr

from ._numerics import slot_dtype
from ._sharding import filled_like, gather_sharding, scatter_sharding, unsplit_rows
from ._sparse_rows import SparseRows, is_sparse_or_none
from ._tree import check_matching_tree
from ._validation import is_tracer

__all__ = [
    "SparseMode",
    "accumulator_stage",
    "deduplicate",
    "gather",
    "on_distinct_rows",
    "scatter",
    "sum_duplicate_rows",
    "update_leaf",
]

SparseMode = Literal["lazy", "dense", "keras"]
"""What a `SparseRows` gradient does to untouched rows: nothing (``"lazy"``), a zero gradient
row's dense step (``"dense"``), or decay the state only (``"keras"``); see docs/sparse.md."""

StepFn = Callable[[jax.Array, Any], tuple[Any, Any]]

_EVERY_ROW = (
    "{stage}: the SparseRows gradient at {path} is for a table without per-row bookkeeping, so "
    "each step changes every row of its state, as the dense algorithm (and TF) does: a pass "
    "over the whole table. To make the step cost O(touched rows), mark the table in "
    "`sparse_tables` of rj.rmsprop (a pytree of bools with the params' structure, True at "
    "{path}, or a function of the params returning one), or use sparse_mode='lazy'."
)


def deduplicate(rows: SparseRows) -> SparseRows:
    """Sums the values of duplicate indices (a segment-sum over the unique rows).

    The result has sorted unique indices, padded to the input's length with ``num_rows`` (a row
    that scatters drop), where out-of-range indices go too. Sizes stay static, so this jits.
    """
    size = rows.indices.shape[0]
    sanitized, values = _sanitized(rows), unsplit_rows(rows.values)
    if size == 0 or rows.unique_indices:
        return rows.replace(sanitized, values, unique_indices=True)
    unique, inverse, _ = _unique_rows(sanitized, rows.num_rows)
    summed = jax.ops.segment_sum(values, inverse, num_segments=size)
    keep = (unique < rows.num_rows).reshape((size,) + (1,) * (values.ndim - 1))
    summed = jnp.where(keep, summed, jnp.zeros((), summed.dtype))
    return rows.replace(unique, summed, unique_indices=True, indices_are_sorted=True)


def _sanitized(rows: SparseRows) -> jax.Array:
    """The row numbers, out-of-range ones replaced by ``num_rows``."""
    indices = unsplit_rows(rows.indices)
    return jnp.where((indices >= 0) & (indices < rows.num_rows), indices, rows.num_rows)


def _unique_rows(sanitized: jax.Array, num_rows: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Sorted distinct rows (``num_rows``-padded), each input's slot, and the in-table count."""
    # jnp.unique(return_inverse=True) sorts key-value pairs, several times slower on CPU than
    # sorting the keys alone and finding each key's slot with a binary search.
    size, ordered = sanitized.shape[0], jnp.sort(sanitized)
    first = jnp.concatenate([jnp.ones((1,), bool), ordered[1:] != ordered[:-1]])
    slot = jnp.where(first, jnp.cumsum(first) - 1, size)
    unique = (
        jnp.full((size,), num_rows, sanitized.dtype)
        .at[slot]
        .set(ordered, mode="drop", unique_indices=True, indices_are_sorted=True)
    )
    inverse = jnp.searchsorted(unique, sanitized, method="scan")
    return unique, inverse, jnp.sum(first & (ordered < num_rows))


def on_distinct_rows(
    grad: SparseRows, body: Callable[[SparseRows, Any], tuple[jax.Array, Any]], carry: Any
) -> tuple[SparseRows, Any]:
    """``body`` on the deduplicated rows of ``grad``: its output as their values, and ``carry``.

    ``body(rows, carry) -> (values, carry)`` works row by row (``carry``: the tables it
    updates). With ``grad.max_distinct_rows = b`` below the ``k`` indices, a jitted step runs
    it on ``b`` slots at a time, in a loop of ``ceil(distinct / b)`` turns (one if the bound
    holds), so no row is dropped; the output has ``k`` rows (padding: row ``num_rows``).
    """
    k, bound, num_rows = grad.indices.shape[0], grad.max_distinct_rows, grad.num_rows
    # Eagerly, the unbounded step itself: XLA rounds some ops (powers) by array size.
    if bound is None or bound >= k or grad.unique_indices or not is_tracer(grad.indices):
        rows = deduplicate(grad)
        out, carry = body(rows, carry)
        return rows.with_values(out), carry
    sanitized, values = _sanitized(grad), unsplit_rows(grad.values)
    unique, inverse, distinct = _unique_rows(sanitized, num_rows)

    def turn(loop: tuple[Any, jax.Array, Any]) -> tuple[Any, jax.Array, Any]:
        i, flipped, carry = loop
        # Slots [i * b, i * b + b), the window moved back to end at k; the slots an earlier
        # turn took are padding here.
        start = jnp.minimum(i * bound, k - bound)
        fresh = jnp.arange(bound) + start >= i * bound
        indices = jnp.where(fresh, jax.lax.dynamic_slice(unique, (start,), (bound,)), num_rows)
        mine = (inverse >= i * bound) & (inverse < start + bound)
        summed = jax.ops.segment_sum(values, jnp.where(mine, inverse - start, bound), bound)
        keep = (indices < num_rows).reshape((bound,) + (1,) * (values.ndim - 1))
        summed = jnp.where(keep, summed, jnp.zeros((), summed.dtype))
        rows = grad.replace(indices, summed, unique_indices=True, indices_are_sorted=True)
        out, carry = body(rows, carry)
        # Negated: apply_updates' scatter folds -(-x), reading this buffer.
        corner = (start,) + (0,) * (out.ndim - 1)
        old = jax.lax.dynamic_slice(flipped, corner, out.shape)
        new = jnp.where(fresh.reshape(keep.shape), -out, old)
        return i + 1, jax.lax.dynamic_update_slice(flipped, new, corner), carry

    first_rows = grad.replace(unique[:bound], values[:bound], unique_indices=True)
    spec = jax.eval_shape(lambda c: body(first_rows, c)[0], carry)
    zeros = jnp.zeros((k, *spec.shape[1:]), spec.dtype)
    more = lambda loop: loop[0] * bound < jnp.maximum(distinct, 1)  # noqa: E731
    _, flipped, carry = jax.lax.while_loop(more, turn, (jnp.int32(0), zeros, carry))
    rows = grad.replace(unique, -flipped, unique_indices=True, indices_are_sorted=True)
    return rows, carry


def gather(array: jax.Array, rows: SparseRows) -> jax.Array:
    """The rows of ``array`` named by deduplicated ``rows``; padding rows read as zeros."""
    return array.at[rows.indices].get(
        mode="fill",
        fill_value=0,
        indices_are_sorted=rows.indices_are_sorted,
        unique_indices=True,
        out_sharding=gather_sharding(array, rows.indices),
    )


def scatter(array: jax.Array, rows: SparseRows, new: jax.Array) -> jax.Array:
    """``array``, deduplicated ``rows`` set to ``new`` (in place if donated; padding dropped)."""
    return array.at[rows.indices].set(
        new.astype(array.dtype),
        mode="drop",
        indices_are_sorted=rows.indices_are_sorted,
        unique_indices=True,
        out_sharding=scatter_sharding(array),
    )


def update_leaf(
    grad: Any, accumulators: Any, step: StepFn, mode: SparseMode, where: tuple[str, str]
) -> tuple[Any, Any]:
    """``step`` on one param; ``where`` is ``(stage, path)`` for the warning.

    ``accumulators`` is a tuple (a NamedTuple is rebuilt as one); None entries stay None. A None
    gradient (no gradient this step) gives a None update and leaves the accumulators as they are.
    """
    if grad is None:
        return None, accumulators
    if not isinstance(grad, SparseRows):
        return step(grad, accumulators)

    def each(fn: Callable[..., Any], *trees: Any) -> Any:
        values = [None if a[0] is None else fn(*a) for a in zip(*trees, strict=True)]
        named = hasattr(accumulators, "_fields")
        return type(accumulators)(*values) if named else tuple(values)

    def on_rows(rows: SparseRows, tables: Any) -> tuple[jax.Array, Any]:
        out, new = step(rows.values, each(lambda a: gather(a, rows), tables))
        return out, each(lambda a, n: scatter(a, rows, n), tables, new)

    rows, scattered = on_distinct_rows(grad, on_rows, accumulators)  # rows: the update's
    if mode == "lazy":
        return rows, scattered
    warnings.warn(_EVERY_ROW.format(stage=where[0], path=where[1]), UserWarning, stacklevel=3)
    # The dense algorithm: the touched rows' step, scattered first, then a zero-gradient step on
    # every other row, one elementwise pass that XLA does in place on a donated buffer.
    out_all, decayed = step(jnp.zeros(grad.shape, grad.dtype), scattered)
    touched = jnp.zeros(grad.shape[:1], bool).at[rows.indices].set(True, mode="drop")
    keep = touched.reshape(touched.shape + (1,) * (len(grad.shape) - 1))
    accumulators = each(lambda a, d: jnp.where(keep, a, d), scattered, decayed)
    if mode == "keras":  # the state changed on every row; the params move on touched rows only
        return rows, accumulators
    return scatter(out_all, rows, rows.values), accumulators


def accumulator_stage(
    state_type: Callable[..., Any],
    initial: Sequence[jax.typing.ArrayLike],
    dtype: jnp.dtype | None,
    step: StepFn,
    *,
    mode: SparseMode,
    stage: str,
    complex_slots: Sequence[bool] | None = None,
) -> optax.GradientTransformationExtraArgs:
    """A stage whose state holds per-param accumulators, moved by ``step`` on the touched rows.

    ``state_type`` is a NamedTuple of per-param trees, each starting at its ``initial`` value in
    ``dtype`` (None: the param's; ``complex_slots``: which hold complex numbers, see `slot_dtype`);
    ``step`` is ``(g, accumulators) -> (out, accumulators)``, the per-element maths.
    """

    def init_fn(params: optax.Params) -> Any:
        holds = [True] * len(initial) if complex_slots is None else complex_slots
        return state_type(
            *(
                jax.tree.map(
                    lambda p, v=v, c=c: filled_like(p, v, slot_dtype(p.dtype, dtype, c)), params
                )
                for v, c in zip(initial, holds, strict=True)
            )
        )

    def update_fn(
        updates: optax.Updates, state: Any, params: optax.Params | None = None, **extra: Any
    ) -> tuple[optax.Updates, Any]:
        check_matching_tree(updates, state[0], stage=stage)
        with_paths, treedef = jax.tree_util.tree_flatten_with_path(
            updates, is_leaf=is_sparse_or_none
        )
        columns = [treedef.flatten_up_to(tree) for tree in state]
        results = [
            update_leaf(grad, tuple(accs), step, mode, (stage, keystr(path) or "the root"))
            for (path, grad), *accs in zip(with_paths, *columns, strict=True)
        ]
        new = [treedef.unflatten([r[1][i] for r in results]) for i in range(len(state))]
        return treedef.unflatten([r[0] for r in results]), state_type(*new)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]


def sum_duplicate_rows() -> optax.GradientTransformation:
    """`SparseRows` gradients with duplicate rows summed: what the densified gradient holds."""
    dedup = lambda g: deduplicate(g) if isinstance(g, SparseRows) else g  # noqa: E731
    return optax.stateless(
        lambda updates, _: jax.tree.map(dedup, updates, is_leaf=is_sparse_or_none)
    )
