"""Row-wise updates of per-parameter accumulators, for dense gradients and `SparseRows` alike.

A stage describes its maths once, as two per-element functions, and `update_rows` runs them on
the whole array (dense gradient) or on the gathered rows of a deduplicated `SparseRows`
gradient, then scatters the rows back. Cost is proportional to the rows touched.

Per-row bookkeeping (``row_steps``, int32 per table row: the step up to which that row is up to
date) lets a stage defer the work that a zero gradient row would have caused on every step (the
decay of a running mean, the drift of a momentum buffer) until the row is touched again or the
state is materialized; ``catch_up`` applies ``missed`` such steps at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from ._sharding import gather_sharding, refill, rows_like, scatter_sharding, unsplit_rows
from ._sparse_rows import SparseRows, is_sparse

__all__ = [
    "SparseMode",
    "apply_rowwise_stage",
    "deduplicate",
    "fresh_row_steps",
    "materialize_rows",
    "row_steps_for_tables",
    "update_rows",
]

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


def fresh_row_steps(param: Any) -> jax.Array:
    """Per-row bookkeeping for one table: every row is up to date at step 0.

    Sharded like the table's rows, so each device keeps the bookkeeping of the rows it holds.
    """
    return rows_like(param, 0, jnp.int32)


def _gather(array: jax.Array, index: jax.Array, indices_are_sorted: bool) -> jax.Array:
    """Rows ``index`` of ``array`` (unique indices); out-of-range rows read as zeros."""
    return array.at[index].get(
        mode="fill",
        fill_value=0,
        indices_are_sorted=indices_are_sorted,
        unique_indices=True,
        out_sharding=gather_sharding(array, index),
    )


def _per_row(missed: jax.Array, like: jax.Array) -> jax.Array:
    """Reshapes a per-row vector to broadcast against rows of shape ``like.shape[1:]``."""
    return missed.reshape(missed.shape + (1,) * (like.ndim - 1))


_EVERY_ROW = (
    "{stage}: the SparseRows gradient at {path} is for a table without per-row bookkeeping, so "
    "each step changes every row of its state, as the dense algorithm (and TF) does: a pass "
    "over the whole table. To make the step cost O(touched rows), mark the table in "
    "`sparse_tables` (a pytree of bools with the params' structure, True at {path}, or a "
    "function of the params returning one), or use sparse_mode='lazy'."
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
    if catch_up(gathered, _per_row(jnp.ones(index.shape, jnp.int32), rows.values))[1] is not None:
        return step(grad.todense(), accumulators)
    out, new_rows = step(rows.values, gathered)
    # Scatter the touched rows first, then decay the others in one elementwise pass over the
    # result, so that XLA updates a donated buffer in place (no table-sized copy).
    touched = (
        jnp.zeros(grad.shape[:1], bool)
        .at[index]
        .set(True, mode="drop", indices_are_sorted=sort, unique_indices=True)
    )
    keep = _per_row(touched, rows.values)
    scattered = tuple(
        acc.at[index].set(
            new,
            mode="drop",
            indices_are_sorted=sort,
            unique_indices=True,
            out_sharding=scatter_sharding(acc),
        )
        for acc, new in zip(accumulators, new_rows, strict=True)
    )
    decayed, _ = catch_up(scattered, _per_row(jnp.ones(grad.shape[:1], jnp.int32), rows.values))
    accumulators = tuple(
        jnp.where(keep, acc, old) for acc, old in zip(scattered, decayed, strict=True)
    )
    return rows.with_values(out), accumulators


def update_rows(
    grad: jax.Array | SparseRows,
    accumulators: Sequence[jax.Array],
    row_steps: jax.Array | None,
    count: jax.Array,
    *,
    step: StepFn,
    catch_up: CatchUpFn,
    mode: SparseMode,
    stage: str,
    path: str,
) -> tuple[jax.Array | SparseRows, Accumulators, jax.Array | None]:
    """Applies one step to a param's accumulators, touching only the rows the gradient touches.

    Args:
      grad: a dense gradient, or a `SparseRows`.
      accumulators: the param's accumulators (each shaped like the param).
      row_steps: the table's per-row bookkeeping, or None for a param without it.
      count: the number of steps applied before this one.
      step: the per-element maths, ``(g, accumulators) -> (out, accumulators)``.
      catch_up: ``(accumulators, missed) -> (accumulators, out)`` applies ``missed`` zero-gradient
        steps at once; ``out`` is what those steps would have output (None: nothing).
      mode: ``"lazy"`` or ``"dense"`` (see `SparseMode`).
      stage: the stage's name, for errors.
      path: the param's path in the tree, for errors.

    Returns:
      ``(out, accumulators, row_steps)``: the stage's output (a `SparseRows` with unique indices
      for a `SparseRows` gradient), and the new state.
    """
    accumulators = tuple(accumulators)
    if not isinstance(grad, SparseRows):
        pending = None
        if row_steps is not None:
            accumulators, pending = catch_up(accumulators, _per_row(count - row_steps, grad))
            row_steps = refill(row_steps, count + 1)
        out, accumulators = step(grad, accumulators)
        if pending is not None:
            out = (out.astype(pending.dtype) + pending).astype(out.dtype)
        return out, accumulators, row_steps

    if mode == "dense" and row_steps is None:
        warnings.warn(_EVERY_ROW.format(stage=stage, path=path), UserWarning, stacklevel=2)
        out, accumulators = _update_every_row(grad, accumulators, step=step, catch_up=catch_up)
        return out, accumulators, None
    rows = deduplicate(grad)
    index = rows.indices
    sort = rows.indices_are_sorted
    gathered = tuple(_gather(acc, index, sort) for acc in accumulators)
    pending = None
    if mode == "dense" and row_steps is not None:
        last = _gather(row_steps, index, sort)
        missed = jnp.where(index < rows.num_rows, count - last, 0)  # padding rows: nothing
        gathered, pending = catch_up(gathered, _per_row(missed, rows.values))
        # last + missed + 1 == count + 1; adding (rather than setting) makes the write depend
        # on the read, so XLA updates the donated buffer in place instead of copying it first.
        row_steps = row_steps.at[index].add(
            missed + 1,
            mode="drop",
            indices_are_sorted=sort,
            unique_indices=True,
            out_sharding=scatter_sharding(row_steps),
        )
    out, new_rows = step(rows.values, gathered)
    if pending is not None:
        out = (out.astype(pending.dtype) + pending).astype(out.dtype)
    accumulators = tuple(
        acc.at[index].set(
            new,
            mode="drop",
            indices_are_sorted=sort,
            unique_indices=True,
            out_sharding=scatter_sharding(acc),
        )
        for acc, new in zip(accumulators, new_rows, strict=True)
    )
    return rows.with_values(out), accumulators, row_steps


def materialize_rows(
    like: jax.Array,
    accumulators: Sequence[jax.Array],
    row_steps: jax.Array | None,
    count: jax.Array,
    *,
    catch_up: CatchUpFn,
) -> tuple[jax.Array, Accumulators, jax.Array | None]:
    """Brings every row of one param's accumulators up to step ``count``, without a new step.

    Returns the output the deferred steps would have produced (zeros where nothing was
    pending), the caught-up accumulators and the reset bookkeeping.
    """
    accumulators = tuple(accumulators)
    zeros = jnp.zeros(like.shape, like.dtype)
    if row_steps is None:
        return zeros, accumulators, None
    accumulators, pending = catch_up(accumulators, _per_row(count - row_steps, zeros))
    out = zeros if pending is None else pending.astype(like.dtype)
    return out, accumulators, refill(row_steps, count)


def _table_flags(params: Any, sparse_tables: Any, *, stage: str) -> list[bool]:
    """One flag per param leaf: whether ``sparse_tables`` marks it as a table.

    Params and flags are matched by their paths in the tree, so ``sparse_tables`` may hold flags
    for params that are absent here: optax's ``multi_transform`` / ``partition`` hand each inner
    transformation the params with the others replaced by ``MaskedNode``. A flag may also stand
    for a whole subtree of params.
    """
    with_paths = jax.tree_util.tree_leaves_with_path(params)
    mask = sparse_tables(params) if callable(sparse_tables) else sparse_tables
    marked = {path: flag for path, flag in jax.tree_util.tree_leaves_with_path(mask)}
    flags = []
    for path, _ in with_paths:
        prefixes = [path[:length] for length in range(len(path), -1, -1)]
        found = next((marked[prefix] for prefix in prefixes if prefix in marked), None)
        if found is None:
            raise ValueError(
                f"{stage}: `sparse_tables` must be a pytree of bools with the structure of the "
                "params (or a function of the params returning one). It has no flag for the "
                f"param at {jax.tree_util.keystr(path) or 'the root'}. Received: "
                f"sparse_tables={mask!r}. Params structure: "
                f"{jax.tree_util.tree_structure(params)}."
            )
        if not isinstance(found, bool):
            raise TypeError(
                f"{stage}: `sparse_tables` leaves must be True or False. Received: {found!r} at "
                f"{jax.tree_util.keystr(path) or 'the root'}."
            )
        flags.append(found)
    return flags


def row_steps_for_tables(
    params: Any, sparse_tables: Any, mode: SparseMode, *, stage: str
) -> list[jax.Array | None]:
    """The per-row bookkeeping of a stage: for each param leaf, an int32 per row, or None.

    Only ``"dense"`` mode defers work, and only for the params marked in ``sparse_tables``.

    Args:
      params: the params (arrays or ``jax.ShapeDtypeStruct``; ``MaskedNode`` subtrees allowed).
      sparse_tables: None, a pytree of bools with the params' structure, or a function of the
        params returning one.
      mode: the stage's sparse mode.
      stage: the stage's name, for errors.

    Returns:
      One entry per param leaf (in ``jax.tree.leaves`` order): an int32 vector with a slot per
      row (the step that row is up to date with), or None.
    """
    flat = jax.tree_util.tree_leaves(params)
    if mode != "dense" or sparse_tables is None:
        return [None] * len(flat)
    tables = []
    for param, flag in zip(flat, _table_flags(params, sparse_tables, stage=stage), strict=True):
        if flag and len(param.shape) == 0:
            raise ValueError(f"{stage}: `sparse_tables` marks a scalar param; tables have rows.")
        tables.append(fresh_row_steps(param) if flag else None)
    return tables


def apply_rowwise_stage(
    updates: Any,
    state: Any,
    names: Sequence[str],
    *,
    step: StepFn,
    catch_up: CatchUpFn,
    materialize: bool,
    mode: SparseMode,
    stage: str,
) -> tuple[Any, Any]:
    """Runs `update_rows` (or `materialize_rows`) over every param of a stage's state.

    ``state`` is a NamedTuple with ``count``, ``row_steps`` and one per-param tree for each of
    ``names``; the returned state has the same type.
    """
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(updates, is_leaf=is_sparse)
    accumulators = [treedef.flatten_up_to(getattr(state, name)) for name in names]
    row_steps = treedef.flatten_up_to(state.row_steps)
    outs, new_row_steps = [], []
    new_accumulators: list[list[jax.Array]] = [[] for _ in names]
    for i, (path, grad) in enumerate(with_paths):
        accs = tuple(acc[i] for acc in accumulators)
        if materialize:
            out, accs, steps = materialize_rows(
                grad, accs, row_steps[i], state.count, catch_up=catch_up
            )
        else:
            out, accs, steps = update_rows(
                grad,
                accs,
                row_steps[i],
                state.count,
                step=step,
                catch_up=catch_up,
                mode=mode,
                stage=stage,
                path=jax.tree_util.keystr(path) or "the root",
            )
        outs.append(out)
        new_row_steps.append(steps)
        for store, acc in zip(new_accumulators, accs, strict=True):
            store.append(acc)
    count = state.count
    if count is not None and not materialize:
        count = jnp.asarray(optax.safe_increment(count))
    new_state = state._replace(
        count=count,
        row_steps=treedef.unflatten(new_row_steps),
        **{name: treedef.unflatten(acc) for name, acc in zip(names, new_accumulators, strict=True)},
    )
    return treedef.unflatten(outs), new_state
