"""The chain's clock: one step count, and one int32 per row of each table whose rows defer work.

A stage in ``sparse_mode="dense"`` changes every row of its accumulators on every step, touched
or not (a zero gradient row still decays ``ms`` and moves a momentum buffer). To keep a step
O(touched rows), that work is deferred: `row_clock` keeps, for each table named in
``sparse_tables``, the step up to which each row is up to date (``row_steps``), and hands each
row's number of missed steps to the stages after it on a `ClockedRows` gradient. Each stage
then catches its own accumulators up inline (``ms * rho**missed``, the momentum series) before
taking the step. `release_rows` at the end of the chain turns what the clock attached back into
plain updates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._clocked_rows import ClockedRows
from ._sharding import gather_sharding, refill, replicated_like, rows_like, scatter_sharding
from ._sparse_rows import SparseRows, is_sparse
from ._sparse_update import deduplicate
from ._tree import check_matching_tree

__all__ = [
    "RowClockState",
    "clocked_chain",
    "release_rows",
    "row_clock",
    "tracked_tables",
]


class RowClockState(NamedTuple):
    """State of `row_clock`."""

    count: jax.Array  # int32 scalar: steps so far
    row_steps: optax.Updates  # per param: int32 [rows] for a tracked table, else None


def _table_flags(params: Any, sparse_tables: Any) -> list[bool]:
    """One flag per param leaf: whether ``sparse_tables`` marks it as a table.

    Params and flags are matched by their paths in the tree, so ``sparse_tables`` may hold flags
    for params that are absent here: optax's ``multi_transform`` / ``partition`` hand each inner
    transformation the params with the others replaced by ``MaskedNode``. A flag may also stand
    for a whole subtree of params.
    """
    stage = "rmsprop_jax"
    with_paths = jax.tree_util.tree_leaves_with_path(params)
    mask = sparse_tables(params) if callable(sparse_tables) else sparse_tables
    marked = {path: flag for path, flag in jax.tree_util.tree_leaves_with_path(mask)}
    flags = []
    for path, param in with_paths:
        prefixes = [path[:length] for length in range(len(path), -1, -1)]
        found = next((marked[prefix] for prefix in prefixes if prefix in marked), None)
        where = jax.tree_util.keystr(path) or "the root"
        if found is None:
            raise ValueError(
                f"{stage}: `sparse_tables` must be a pytree of bools with the structure of the "
                "params (or a function of the params returning one). It has no flag for the "
                f"param at {where}. Received: sparse_tables={mask!r}. Params structure: "
                f"{jax.tree_util.tree_structure(params)}."
            )
        if not isinstance(found, bool):
            raise TypeError(
                f"{stage}: `sparse_tables` leaves must be True or False. Received: {found!r} at "
                f"{where}."
            )
        if found and len(param.shape) == 0:
            raise ValueError(f"{stage}: `sparse_tables` marks a scalar param; tables have rows.")
        flags.append(found)
    return flags


def tracked_tables(params: Any, sparse_tables: Any) -> list[bool]:
    """For each param leaf (``jax.tree.leaves`` order): whether the clock keeps its rows."""
    flat = jax.tree_util.tree_leaves(params)
    if sparse_tables is None:
        return [False] * len(flat)
    return _table_flags(params, sparse_tables)


def row_clock(sparse_tables: Any = None) -> optax.GradientTransformationExtraArgs:
    """The chain's clock: counts steps and attaches each tracked row's missed steps.

    For a table marked in ``sparse_tables``, a `SparseRows` gradient is deduplicated and leaves
    as a `ClockedRows` whose ``missed[i]`` is ``count - row_steps[indices[i]]``; those rows are
    then up to date at ``count + 1``. A dense gradient on such a table leaves as an every-row
    `ClockedRows` (``missed = count - row_steps``), and every row is then up to date. Other
    leaves pass unchanged. ``update(..., materialize=True)`` (what `rmsprop_jax.materialize`
    calls) attaches every row's missed steps to zeros for a catch-up without a step.

    Args:
      sparse_tables: None, a pytree of bools with the params' structure (a prefix of it), or a
        function of the params returning one.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `RowClockState`.

    Example:
      >>> import jax.numpy as jnp, optax, rmsprop_jax as rj
      >>> tx = optax.chain(
      ...     rj.row_clock({"t": True}),
      ...     rj.scale_by_rms(0.5, 0.0, sparse_mode="dense"),
      ...     rj.release_rows(),
      ... )
      >>> state = tx.init({"t": jnp.zeros((3, 1))})
      >>> grads = {"t": rj.SparseRows(jnp.array([1]), jnp.ones((1, 1)), (3, 1))}
      >>> _, state = tx.update(grads, state)
      >>> state[0].row_steps["t"]  # row 1 is up to date at step 1, rows 0 and 2 at step 0
      Array([0, 1, 0], dtype=int32)
    """

    def init_fn(params: optax.Params) -> RowClockState:
        treedef = jax.tree_util.tree_structure(params)
        flags = tracked_tables(params, sparse_tables)
        flat = treedef.flatten_up_to(params)
        tables = [
            rows_like(p, 0, jnp.int32) if flag else None
            for p, flag in zip(flat, flags, strict=True)
        ]
        return RowClockState(
            count=replicated_like(params, 0, jnp.int32), row_steps=treedef.unflatten(tables)
        )

    def update_fn(
        updates: optax.Updates,
        state: RowClockState,
        params: optax.Params | None = None,
        *,
        materialize: bool = False,
        **extra_args: Any,
    ) -> tuple[optax.Updates, RowClockState]:
        del params, extra_args
        # The gradients must have the params' structure (a placeholder per untracked param; the
        # shapes are checked by the stages after the clock).
        check_matching_tree(
            updates,
            jax.tree.map(
                lambda steps: 0 if steps is None else steps,
                state.row_steps,
                is_leaf=lambda x: x is None,
            ),
            stage="row_clock",
            shapes=False,
        )
        flat, treedef = jax.tree_util.tree_flatten(updates, is_leaf=is_sparse)
        row_steps = treedef.flatten_up_to(state.row_steps)
        count = state.count
        outs, new_row_steps = [], []
        for grad, steps in zip(flat, row_steps, strict=True):
            if materialize:  # every row catches up (nothing missed without bookkeeping)
                zeros = jnp.zeros(grad.shape, grad.dtype)
                missed = None if steps is None else count - steps
                outs.append(ClockedRows.every_row(zeros, missed, take_step=False))
                new_row_steps.append(None if steps is None else refill(steps, count))
            elif steps is None:
                outs.append(grad)
                new_row_steps.append(None)
            elif not isinstance(grad, SparseRows):
                outs.append(ClockedRows.every_row(grad, count - steps, take_step=True))
                new_row_steps.append(refill(steps, count + 1))
            else:
                rows = deduplicate(grad)
                index, sort = rows.indices, rows.indices_are_sorted
                last = steps.at[index].get(
                    mode="fill",
                    fill_value=0,
                    indices_are_sorted=sort,
                    unique_indices=True,
                    out_sharding=gather_sharding(steps, index),
                )
                missed = jnp.where(index < rows.num_rows, count - last, 0)  # padding: nothing
                # last + missed + 1 == count + 1; adding (rather than setting) makes the write
                # depend on the read, so XLA updates the donated buffer in place.
                new_row_steps.append(
                    steps.at[index].add(
                        missed + 1,
                        mode="drop",
                        indices_are_sorted=sort,
                        unique_indices=True,
                        out_sharding=scatter_sharding(steps),
                    )
                )
                outs.append(ClockedRows.attach(rows, missed))
        if not materialize:
            count = jnp.asarray(optax.safe_increment(count))
        return treedef.unflatten(outs), RowClockState(
            count=count, row_steps=treedef.unflatten(new_row_steps)
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]


def release_rows() -> optax.GradientTransformation:
    """The end of a clocked chain: `ClockedRows` back to plain updates (arrays, `SparseRows`)."""

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        del params
        return jax.tree.map(
            lambda u: u.released() if isinstance(u, ClockedRows) else u,
            updates,
            is_leaf=is_sparse,
        ), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def clocked_chain(
    stages: list[optax.GradientTransformation],
    *,
    clock: int,
    counted: dict[int, type],
) -> optax.GradientTransformationExtraArgs:
    """``optax.chain(*stages)`` with one step counter: the `row_clock` at ``stages[clock]``.

    A stage in ``counted`` (index -> its state type, a NamedTuple with one field ``count``, e.g.
    `ScaleByLearningRateState`) keeps no state of its own here (``optax.EmptyState()``): each
    step it is handed ``counted[i](count=...)`` with the clock's count (the steps before this
    one), and what it returns is dropped. The chain's state is the tuple ``optax.chain`` keeps.
    """
    txs = [optax.with_extra_args_support(tx) for tx in stages]

    def init_fn(params: optax.Params) -> tuple[Any, ...]:
        return tuple(
            optax.EmptyState() if i in counted else tx.init(params) for i, tx in enumerate(txs)
        )

    def update_fn(
        updates: optax.Updates,
        state: tuple[Any, ...],
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, tuple[Any, ...]]:
        now = state[clock].count
        new_state = []
        for i, (tx, inner) in enumerate(zip(txs, state, strict=True)):
            if i in counted:
                updates, _ = tx.update(updates, counted[i](count=now), params, **extra_args)
                new_state.append(inner)
            else:
                updates, inner = tx.update(updates, inner, params, **extra_args)
                new_state.append(inner)
        return updates, tuple(new_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]
