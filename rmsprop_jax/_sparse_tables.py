"""The sparse driver: RMSprop over tables whose untouched rows defer their work.

In ``sparse_mode="dense"`` (and ``"keras"`` without momentum) a zero gradient row still decays
``ms`` and ``mg`` and moves a momentum buffer. Each row of a named table remembers the step up
to which it is up to date (``row_steps``), and a `SparseRows` step is: deduplicate -> gather ->
catch up the missed steps in closed form (``ms * rho**k``; ``mom * mu**k`` and the params'
movement ``drift * mom * sum(mu**j)``) -> step -> scatter. The hyperparameters of the missed
steps are kept in the state (`Deferred`); when an injected one changes, every row is brought up
to date on that step (the params' movement found then waits in ``owed``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._numerics import (
    RmsNumerics,
    as_compute,
    compute_dtype,
    decay_rows,
    learning_rate_at,
    momentum_catch_up,
    momentum_step,
    rms_scale,
    scale_values,
    slot_dtype,
)
from ._rows import SparseMode, gather, on_distinct_rows, scatter, update_leaf
from ._sharding import filled_like, refill, replicated_like, scatter_sharding
from ._sparse_rows import SparseRows, is_sparse_or_none
from ._tree import check_matching_tree, marked_leaves
from ._validation import is_static
from ._weight_decay import check_decay_inputs, decay_mask, decoupled_decay

__all__ = ["Hyperparameters", "SparseTablesState", "TableRule", "materialize", "sparse_tables"]


@jax.tree_util.register_pytree_node_class
class Deferred:
    """``rho``, ``momentum`` and ``drift`` in force for the steps rows missed (static: no state)."""

    def __init__(self, rho: Any, momentum: Any, drift: Any) -> None:
        self.values = (rho, momentum, drift)

    def __iter__(self) -> Any:
        return iter(self.values)

    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The injected values as children; the static ones (None for the others) as aux."""
        static = tuple(v if is_static(v) else None for v in self.values)
        return tuple(v for v in self.values if not is_static(v)), static

    @classmethod
    def tree_unflatten(cls, static: tuple[Any, ...], children: Any) -> Deferred:
        """Rebuilds from `tree_flatten`'s parts."""
        dynamic = iter(children)
        return cls(*(next(dynamic) if v is None else v for v in static))


class SparseTablesState(NamedTuple):
    """State of the sparse driver (what `rmsprop_jax.rmsprop` keeps when it tracks tables)."""

    count: jax.Array  # int32 scalar: steps taken
    row_steps: Any  # per param: int32 [rows], steps each table row has absorbed; None if no table
    ms: Any  # per param: running mean of g**2; state_dtype or the param's dtype and shape
    mg: Any  # per param: running mean of g (centered), else None
    mom: Any  # per param: momentum buffer, else None
    owed: Any  # per table: params' movement found by an early catch-up (see module doc), or None
    deferred: Deferred  # the hyperparameters of the steps rows have missed


@dataclasses.dataclass(frozen=True)
class TableRule:
    """The static shape of the steps the driver takes (what `rmsprop_jax.rmsprop` decided)."""

    numerics: RmsNumerics
    initial_ms: float
    centered: bool
    has_momentum: bool
    nesterov: bool
    lr_before_momentum: bool  # the buffer holds lr * step (TF, Keras, Optax), or lr scales it
    state_dtype: Any
    mode: SparseMode  # "dense" or "keras": what a table without bookkeeping gets
    tables: Any  # pytree of bools (a prefix of the params), or a function of the params
    weight_decay_mask: Any = None  # which params decay (optax's mask), None for all


class Hyperparameters(NamedTuple):
    """The numbers of one step (static Python numbers, arrays, or a schedule for the rate)."""

    learning_rate: Any
    decay: Any
    rho: Any
    epsilon: Any
    momentum: Any  # 0.0 without momentum
    weight_decay: Any = None  # decoupled (Keras 3's w -= w * wd * lr), or None


def _drift(rule: TableRule, hyper: Hyperparameters, lr: Any) -> Any:
    """The params' movement per unit of summed buffer: -1 (lr in the buffer) or -lr (PyTorch)."""
    drift = -1.0 if rule.lr_before_momentum else -lr
    return drift * hyper.momentum if rule.nesterov else drift


class _Slots(NamedTuple):
    """One param's accumulators (None where the optimizer keeps none)."""

    ms: Any  # jax.Array
    mg: Any  # jax.Array or None
    mom: Any  # jax.Array or None


def _step(rule: TableRule, hyper: Hyperparameters, lr: Any, g: jax.Array, s: _Slots) -> Any:
    """The dense RMSprop step of one param: scale, learning rate and momentum as chained."""
    u, ms, mg = rms_scale(g, s.ms, s.mg, hyper.rho, hyper.epsilon, rule.numerics)
    if s.mom is None:
        return scale_values(u, -lr), _Slots(ms, mg, None)
    if rule.lr_before_momentum:
        out, mom = momentum_step(scale_values(u, lr), s.mom, hyper.momentum, rule.nesterov)
        return -out, _Slots(ms, mg, mom)
    out, mom = momentum_step(u, s.mom, hyper.momentum, rule.nesterov)
    return scale_values(out, -lr), _Slots(ms, mg, mom)


def _catch_up(s: _Slots, missed: jax.Array, rho: Any, momentum: Any, drift: Any) -> Any:
    """``missed`` zero-gradient steps of every row at once: the slots and the params' movement."""
    steps = missed.reshape(missed.shape + (1,) * (s.ms.ndim - 1))
    ms = decay_rows(s.ms, rho, steps)
    mg = None if s.mg is None else decay_rows(s.mg, rho, steps)
    if s.mom is None:
        return _Slots(ms, mg, None), None
    mom, summed = momentum_catch_up(s.mom, momentum, steps)
    return _Slots(ms, mg, mom), as_compute(drift, summed.dtype) * summed


def _add(out: jax.Array, *moves: jax.Array | None) -> jax.Array:
    total = out.astype(compute_dtype(out.dtype))
    for move in moves:
        if move is not None:
            total = total + move.astype(total.dtype)
    return total.astype(out.dtype)


def _table_step(rule, hyper, lr, count, grad, s, steps, owed):
    """One table's step: touched rows of a `SparseRows`, or every row of a dense gradient."""
    drift = _drift(rule, hyper, lr)
    read_back = rule.lr_before_momentum and not rule.nesterov  # the step's out is -new_mom
    if not isinstance(grad, SparseRows):  # every row catches up, then steps
        s, moved = _catch_up(s, count - steps, hyper.rho, hyper.momentum, drift)
        out, s = _step(rule, hyper, lr, grad, s)
        new_owed = None if owed is None else jnp.zeros_like(owed)
        return _add(out, moved, owed), s, refill(steps, count + 1), new_owed

    def on_rows(rows: SparseRows, tables: Any) -> Any:
        s, steps, owed = tables
        valid = rows.indices < rows.num_rows  # padding rows miss nothing
        missed = jnp.where(valid, count - gather(steps, rows), 0)
        gathered = _Slots(*(None if a is None else gather(a, rows) for a in s))
        gathered, moved = _catch_up(gathered, missed, hyper.rho, hyper.momentum, drift)
        out, gathered = _step(rule, hyper, lr, rows.values, gathered)
        new = [None if a is None else scatter(a, rows, n) for a, n in zip(s, gathered, strict=True)]
        if new[2] is not None and read_back and new[2].dtype == out.dtype:
            out = -gather(new[2], rows)  # -new_mom read back: XLA computes it once, not twice
        out = _add(out, moved, None if owed is None else gather(owed, rows))
        # Adding missed + 1 (to count + 1) reads the buffer, so XLA updates it in place.
        steps = steps.at[rows.indices].add(
            missed + 1,
            mode="drop",
            indices_are_sorted=rows.indices_are_sorted,
            unique_indices=True,
            out_sharding=scatter_sharding(steps),
        )
        zeros = jnp.zeros_like(rows.values)
        return out, (_Slots(*new), steps, None if owed is None else scatter(owed, rows, zeros))

    rows, (s, steps, owed) = on_distinct_rows(grad, on_rows, (s, steps, owed))
    return rows, s, steps, owed


_PER_PARAM = ("row_steps", "ms", "mg", "mom", "owed")


def _columns(state: SparseTablesState, treedef: Any) -> list[list[Any]]:
    """The per-param fields of ``state``, each as a list in the params' leaf order."""
    return [
        [None] * treedef.num_leaves
        if getattr(state, f) is None
        else treedef.flatten_up_to(getattr(state, f))
        for f in _PER_PARAM
    ]


def _rebuild(state: SparseTablesState, treedef: Any, rows: list[tuple[Any, ...]]) -> Any:
    """``state`` with its per-param fields from one ``(row_steps, ms, mg, mom, owed)`` per param."""
    fields = {
        f: None if getattr(state, f) is None else treedef.unflatten([r[i] for r in rows])
        for i, f in enumerate(_PER_PARAM)
    }
    return state._replace(**fields)


def _bring_up_to_date(state: SparseTablesState) -> SparseTablesState:
    """Every table row caught up to ``state.count`` with the deferred hyperparameters.

    The params' movement the catch-up finds is added to ``owed`` (paid when a row is touched).
    """
    rho, momentum, drift = state.deferred
    treedef = jax.tree_util.tree_structure(state.ms)
    rows = []
    for steps, ms, mg, mom, owed in zip(*_columns(state, treedef), strict=True):
        s = _Slots(ms, mg, mom)
        if steps is not None:
            s, moved = _catch_up(s, state.count - steps, rho, momentum, drift)
            steps, owed = refill(steps, state.count), None if owed is None else _add(owed, moved)
        rows.append((steps, *s, owed))
    return _rebuild(state, treedef, rows)


def sparse_tables(rule: TableRule, hyper: Hyperparameters) -> optax.GradientTransformationExtraArgs:
    """The driver: RMSprop's scaling, learning rate and momentum, with per-row bookkeeping.

    Every param goes through it; the tables ``rule.tables`` names keep ``row_steps`` and defer
    what untouched rows would do. The update is a descent step, as `rmsprop_jax.rmsprop`'s.
    """

    def init_fn(params: optax.Params) -> SparseTablesState:
        flags = marked_leaves(params, rule.tables, "sparse_tables")
        treedef = jax.tree_util.tree_structure(params)
        flat = treedef.flatten_up_to(params)
        dtype = rule.state_dtype

        def per_param(make: Any, which: list[bool]) -> Any:
            return treedef.unflatten(
                [make(p) if w else None for p, w in zip(flat, which, strict=True)]
            )

        zeros = lambda p: filled_like(p, 0.0, slot_dtype(p.dtype, dtype, True))  # noqa: E731
        complex_ms = rule.numerics.complex_square != "abs"
        every = [True] * len(flat)
        lr0 = learning_rate_at(
            hyper.learning_rate, hyper.decay, jnp.zeros((), jnp.int32), jnp.float32
        )
        return SparseTablesState(
            count=replicated_like(params, 0, jnp.int32),
            row_steps=per_param(lambda p: filled_like(p, 0, jnp.int32, rows=True), flags),
            ms=per_param(
                lambda p: filled_like(p, rule.initial_ms, slot_dtype(p.dtype, dtype, complex_ms)),
                every,
            ),
            mg=per_param(zeros, every) if rule.centered else None,
            mom=per_param(zeros, every) if rule.has_momentum else None,
            owed=per_param(zeros, flags)
            if rule.has_momentum and _can_change(rule, hyper) and any(flags)
            else None,
            deferred=Deferred(
                *(
                    v if is_static(v) else replicated_like(params, v, jnp.asarray(v).dtype)
                    for v in (hyper.rho, hyper.momentum, _drift(rule, hyper, lr0))
                )
            ),
        )

    def update_fn(
        updates: optax.Updates,
        state: SparseTablesState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, SparseTablesState]:
        del extra_args
        check_matching_tree(updates, state.ms, stage="rmsprop")
        count = state.count
        lr_f32 = learning_rate_at(hyper.learning_rate, hyper.decay, count, jnp.float32)
        now = (hyper.rho, hyper.momentum, _drift(rule, hyper, lr_f32))
        if _can_change(rule, hyper):
            changed = jnp.any(
                jnp.stack([jnp.asarray(n != d) for n, d in zip(now, state.deferred, strict=True)])
            )
            state = jax.lax.cond(changed, _bring_up_to_date, lambda s: s, state)
        with_paths, treedef = jax.tree_util.tree_flatten_with_path(
            updates, is_leaf=is_sparse_or_none
        )
        decays = [False] * treedef.num_leaves
        if hyper.weight_decay is not None:
            if params is not None:
                decays = treedef.flatten_up_to(decay_mask(params, rule.weight_decay_mask))
                grads = [g if d else None for (_, g), d in zip(with_paths, decays, strict=True)]
                updates = treedef.unflatten(grads)  # the decayed params' gradients, checked
            check_decay_inputs(updates, params, "rmsprop")
        outs, rows = [], []
        columns = _columns(state, treedef)
        flat_params = (
            [None] * treedef.num_leaves if params is None else treedef.flatten_up_to(params)
        )
        for (path, grad), param, decay, *fields in zip(
            with_paths, flat_params, decays, *columns, strict=True
        ):
            steps, ms, mg, mom, owed = fields
            s = _Slots(ms, mg, mom)
            if grad is None:  # no gradient this step: nothing moves, no row misses the step
                outs.append(None)
                rows.append((None if steps is None else steps + 1, *s, owed))
                continue
            lr = learning_rate_at(
                hyper.learning_rate, hyper.decay, count, compute_dtype(grad.dtype)
            )
            if steps is not None:
                out, s, steps, owed = _table_step(rule, hyper, lr, count, grad, s, steps, owed)
            else:
                where = ("rmsprop", jax.tree_util.keystr(path) or "the root")
                out, s = update_leaf(
                    grad, s, lambda g, s, lr=lr: _step(rule, hyper, lr, g, s), rule.mode, where
                )
            if decay:
                out = decoupled_decay(out, param, hyper.weight_decay, lr)  # type: ignore[arg-type]
            outs.append(out)
            rows.append((steps, *s, owed))
        deferred = Deferred(
            *(
                d if is_static(n) else jnp.asarray(n, d.dtype)
                for n, d in zip(now, state.deferred, strict=True)
            )
        )
        return treedef.unflatten(outs), _rebuild(state, treedef, rows)._replace(
            count=jnp.asarray(optax.safe_increment(count)), deferred=deferred
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]


def _can_change(rule: TableRule, hyper: Hyperparameters) -> bool:
    """Whether a hyperparameter that deferred work depends on is injected (may change)."""
    found = [hyper.rho]
    if rule.has_momentum:
        found.append(hyper.momentum)
        if not rule.lr_before_momentum:
            found += [hyper.learning_rate, hyper.decay]
    return not all(is_static(v) for v in found)


def materialize(params: optax.Params, state: optax.OptState) -> tuple[optax.Params, optax.OptState]:
    r"""Applies all work that `SparseRows` steps deferred, without taking a step.

    Brings every row of the ``sparse_tables`` up to date (``ms``, ``mg`` and, with momentum in
    ``"dense"`` mode, the params), as the dense algorithm fed zero rows would hold them: call it
    before evaluation, checkpoints and inspection. It reads the state alone, is one pass over
    each table and leaves every other state (another optimizer's, wrappers' counters) as it was.

    Args:
      params: the current params.
      state: the state of an optimizer containing `rmsprop_jax.rmsprop`, at any depth.

    Returns:
      ``(params, state)``, with every row up to date.

    Example:
      >>> import jax.numpy as jnp, optax, rmsprop_jax as rj
      >>> tx = rj.rmsprop(0.1, sparse_tables={"t": True})  # keras mode: ms decays on every row
      >>> params = {"t": jnp.ones((3, 1))}
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     grad = {"t": rj.SparseRows(jnp.array([0]), jnp.ones((1, 1)), (3, 1))}
      ...     updates, state = tx.update(grad, state, params)
      ...     params = rj.apply_updates(params, updates)
      >>> params, state = rj.materialize(params, state)
      >>> optax.tree.get(state, "ms")["t"][:, 0].round(4)  # row 0: 0.9 * 0.1 + 0.1
      Array([0.19, 0.  , 0.  ], dtype=float32)
    """
    is_driver = lambda x: isinstance(x, SparseTablesState)  # noqa: E731
    moves: dict[Any, jax.Array] = {}

    def settle(node: Any) -> Any:
        if not is_driver(node):
            return node
        if node.mom is None:  # nothing moves the params
            return _bring_up_to_date(node)
        owing = jax.tree.map(  # an owed movement for every table, to collect it
            lambda steps, mom: None if steps is None else jnp.zeros(mom.shape, mom.dtype),
            node.row_steps,
            node.mom,
            is_leaf=lambda x: x is None,
        )
        caught = _bring_up_to_date(
            node._replace(owed=node.owed if node.owed is not None else owing)
        )
        moves.update(jax.tree_util.tree_leaves_with_path(caught.owed))
        return caught._replace(
            owed=None if node.owed is None else jax.tree.map(jnp.zeros_like, node.owed)
        )

    new_state = jax.tree.map(settle, state, is_leaf=is_driver)

    def move(path: Any, param: jax.Array) -> jax.Array:
        return param if path not in moves else _add(param, moves[path])

    return jax.tree_util.tree_map_with_path(move, params), new_state
