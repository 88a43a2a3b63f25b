"""Row-wise updates of per-parameter accumulators, for dense gradients and `SparseRows` alike.

A stage describes its maths once, as two per-element functions, and `update_rows` runs them on
the whole array (dense gradient) or on the gathered rows of a deduplicated `SparseRows`
gradient, then scatters the rows back. Cost is proportional to the rows touched.

The chain's `row_clock` keeps the per-row bookkeeping once for every stage and attaches each
row's missed steps to the gradient (a `ClockedRows`), so that a stage in ``"dense"`` mode defers
the work a zero gradient row would have caused on every step (the decay of a running mean, the
drift of a momentum buffer) until the row is touched again or the state is materialized;
``catch_up`` applies ``missed`` such steps at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp

from ._clocked_rows import ClockedRows, per_row
from ._sharding import gather_sharding, scatter_sharding, unsplit_rows
from ._sparse_rows import SparseRows, is_sparse

__all__ = ["SparseMode", "deduplicate", "map_rows", "update_rows"]

SparseMode = Literal["lazy", "dense"]
"""How a stage treats the rows a `SparseRows` gradient does not touch.

- ``"lazy"``: they do not change (TF1's sparse kernels, TF's kernels with momentum).
- ``"dense"``: they change exactly as a zero gradient row would change them, deferred.
"""

Accumulators = tuple[jax.Array, ...]
StepFn = Callable[[jax.Array, Accumulators], tuple[jax.Array, Accumulators]]
CatchUpFn = Callable[[Accumulators, jax.Array], tuple[Accumulators, jax.Array | None]]


def deduplicate(rows: SparseRows) -> SparseRows:
    """Sums the values of duplicate indices (a segment-sum over the unique rows).

    The result has sorted unique indices, padded to the input's length with ``num_rows`` (an
    out-of-range row that scatters drop); out-of-range input indices are mapped there too, so
    they never wrap around or touch another row. Sizes stay static, so this jits.
    """
    size = rows.indices.shape[0]
    rows = SparseRows.from_parts(
        unsplit_rows(rows.indices),
        unsplit_rows(rows.values),
        rows.shape,
        unique_indices=rows.unique_indices,
        indices_are_sorted=rows.indices_are_sorted,
    )
    sanitized = jnp.where(rows.valid(), rows.indices, rows.num_rows)
    if size == 0 or rows.unique_indices:
        return SparseRows.from_parts(
            sanitized,
            rows.values,
            rows.shape,
            unique_indices=True,
            indices_are_sorted=rows.indices_are_sorted,
        )
    # jnp.unique(return_inverse=True) sorts key-value pairs, several times slower on CPU than
    # sorting the keys alone and finding each key's slot with a binary search.
    ordered = jnp.sort(sanitized)
    first = jnp.concatenate([jnp.ones((1,), bool), ordered[1:] != ordered[:-1]])
    slot = jnp.where(first, jnp.cumsum(first) - 1, size)
    unique = (
        jnp.full((size,), rows.num_rows, sanitized.dtype)
        .at[slot]
        .set(ordered, mode="drop", unique_indices=True, indices_are_sorted=True)
    )
    inverse = jnp.searchsorted(unique, sanitized, method="scan")
    values = jax.ops.segment_sum(rows.values, inverse, num_segments=size)
    keep = (unique < rows.num_rows).reshape((size,) + (1,) * (rows.values.ndim - 1))
    values = jnp.where(keep, values, jnp.zeros((), values.dtype))
    return SparseRows.from_parts(
        unique, values, rows.shape, unique_indices=True, indices_are_sorted=True
    )


def _gather(array: jax.Array, index: jax.Array, indices_are_sorted: bool) -> jax.Array:
    """Rows ``index`` of ``array`` (unique indices); out-of-range rows read as zeros."""
    return array.at[index].get(
        mode="fill",
        fill_value=0,
        indices_are_sorted=indices_are_sorted,
        unique_indices=True,
        out_sharding=gather_sharding(array, index),
    )


_EVERY_ROW = (
    "{stage}: the SparseRows gradient at {path} is for a table without per-row bookkeeping, so "
    "each step changes every row of its state, as the dense algorithm (and TF) does: a pass "
    "over the whole table. To make the step cost O(touched rows), mark the table in "
    "`sparse_tables` (a pytree of bools with the params' structure, True at {path}, or a "
    "function of the params returning one), or use sparse_mode='lazy'."
)


def _scatter(
    accumulators: Sequence[jax.Array],
    index: jax.Array,
    new_rows: Sequence[jax.Array],
    indices_are_sorted: bool,
) -> tuple[jax.Array, ...]:
    """Each accumulator with its (unique) touched rows set, in place in a donated buffer."""
    return tuple(
        acc.at[index].set(
            new,
            mode="drop",
            indices_are_sorted=indices_are_sorted,
            unique_indices=True,
            out_sharding=scatter_sharding(acc),
        )
        for acc, new in zip(accumulators, new_rows, strict=True)
    )


def _update_every_row(
    grad: SparseRows, accumulators: Accumulators, *, step: StepFn, catch_up: CatchUpFn
) -> tuple[jax.Array | SparseRows, Accumulators]:
    """A `SparseRows` step on a table without bookkeeping: untouched rows change every step.

    A stage whose zero-gradient step only decays its accumulators (``catch_up`` emits nothing)
    keeps a sparse output: untouched rows decay by one step at once (``m * rho``, exactly TF's
    sparse kernel), touched rows take the step. A stage whose zero-gradient step emits output
    (momentum) takes the dense step on the densified gradient, the dense algorithm itself.
    """
    rows = deduplicate(grad)
    index, sort = rows.indices, rows.indices_are_sorted
    gathered = tuple(_gather(acc, index, sort) for acc in accumulators)
    if catch_up(gathered, per_row(jnp.ones(index.shape, jnp.int32), rows.values))[1] is not None:
        return step(grad.todense(), accumulators)
    out, new_rows = step(rows.values, gathered)
    # Scatter the touched rows first, then decay the others in one elementwise pass over the
    # result, so that XLA updates a donated buffer in place (no table-sized copy).
    touched = (
        jnp.zeros(grad.shape[:1], bool)
        .at[index]
        .set(True, mode="drop", indices_are_sorted=sort, unique_indices=True)
    )
    keep = per_row(touched, rows.values)
    scattered = _scatter(accumulators, index, new_rows, sort)
    decayed, _ = catch_up(scattered, per_row(jnp.ones(grad.shape[:1], jnp.int32), rows.values))
    accumulators = tuple(
        jnp.where(keep, acc, old) for acc, old in zip(scattered, decayed, strict=True)
    )
    return rows.with_values(out), accumulators


def update_rows(
    grad: jax.Array | SparseRows,
    accumulators: Sequence[jax.Array],
    *,
    step: StepFn,
    catch_up: CatchUpFn,
    mode: SparseMode,
    stage: str,
    path: str,
) -> tuple[jax.Array | SparseRows, Accumulators]:
    """Applies one step to a param's accumulators, touching only the rows the gradient touches.

    Args:
      grad: a dense gradient, a `SparseRows`, or a `ClockedRows` from the chain's `row_clock`
        (rows with their missed steps, which ``"dense"`` mode catches up first).
      accumulators: the param's accumulators (each shaped like the param).
      step: the per-element maths, ``(g, accumulators) -> (out, accumulators)``.
      catch_up: ``(accumulators, missed) -> (accumulators, out)`` applies ``missed`` zero-gradient
        steps at once; ``out`` is what those steps would have output (None: nothing).
      mode: ``"lazy"`` or ``"dense"`` (see `SparseMode`).
      stage: the stage's name, for errors.
      path: the param's path in the tree, for errors.

    Returns:
      ``(out, accumulators)``: the stage's output (of ``grad``'s kind; a `SparseRows` with
      unique indices for a `SparseRows` gradient), and the new accumulators.
    """
    accumulators = tuple(accumulators)
    if not isinstance(grad, SparseRows):
        return step(grad, accumulators)
    clocked = isinstance(grad, ClockedRows)
    if clocked and grad.all_rows:
        pending = None
        if mode == "dense" and grad.missed is not None:
            accumulators, pending = catch_up(accumulators, per_row(grad.missed, grad.values))
        if not grad.take_step:  # materialize: the deferred steps only
            out = jnp.zeros_like(grad.values) if pending is None else pending
            return grad.with_values(out.astype(grad.dtype)), accumulators
        out, accumulators = step(grad.values, accumulators)
        if pending is not None:
            out = (out.astype(pending.dtype) + pending).astype(out.dtype)
        return grad.with_values(out), accumulators
    if mode == "dense" and not clocked:
        warnings.warn(_EVERY_ROW.format(stage=stage, path=path), UserWarning, stacklevel=2)
        return _update_every_row(grad, accumulators, step=step, catch_up=catch_up)
    rows = grad if clocked else deduplicate(grad)
    index = rows.indices
    sort = rows.indices_are_sorted
    gathered = tuple(_gather(acc, index, sort) for acc in accumulators)
    pending = None
    if mode == "dense" and isinstance(rows, ClockedRows) and rows.missed is not None:
        gathered, pending = catch_up(gathered, per_row(rows.missed, rows.values))
    out, new_rows = step(rows.values, gathered)
    if pending is not None:
        out = (out.astype(pending.dtype) + pending).astype(out.dtype)
    accumulators = _scatter(accumulators, index, new_rows, sort)
    return rows.with_values(out), accumulators


def map_rows(
    updates: Any,
    accumulators: Sequence[Any],
    *,
    step: StepFn,
    catch_up: CatchUpFn,
    mode: SparseMode,
    stage: str,
) -> tuple[Any, list[Any]]:
    """`update_rows` over every param: the updates tree and the trees of the accumulators.

    ``accumulators`` holds one per-param tree per accumulator (e.g. ``[ms, mg]``); the returned
    list holds their new values in the same order.
    """
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(updates, is_leaf=is_sparse)
    flat = [treedef.flatten_up_to(tree) for tree in accumulators]
    outs: list[Any] = []
    new: list[list[jax.Array]] = [[] for _ in accumulators]
    for i, (path, grad) in enumerate(with_paths):
        out, accs = update_rows(
            grad,
            tuple(acc[i] for acc in flat),
            step=step,
            catch_up=catch_up,
            mode=mode,
            stage=stage,
            path=jax.tree_util.keystr(path) or "the root",
        )
        outs.append(out)
        for store, acc in zip(new, accs, strict=True):
            store.append(acc)
    return treedef.unflatten(outs), [treedef.unflatten(store) for store in new]
