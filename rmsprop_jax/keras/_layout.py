"""Where the Keras front end finds things in the optax state of `rmsprop_jax.rmsprop`.

This is the one module of `rmsprop_jax.keras` that knows the state's layout. The front end keeps
one optax state for a tuple of all its variables (``params[i]`` is the i-th variable first seen),
so every per-parameter field of a stage's state is a tuple with one entry per variable. The
tables below name those fields; everything else (step counters, hyperparameters, the skipped
step count) is shared by all variables. A change in the stages' state layout is adapted here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "SLOT_FIELDS",
    "count",
    "has_rows",
    "hyperparams",
    "mark_rows_current",
    "merge",
    "put",
    "rows",
    "skipped",
    "slot",
    "take",
    "with_count",
    "with_hyperparams",
    "with_slots",
]

# Keras slot name -> the stage-state field that holds it.
SLOT_FIELDS = {"rms": "ms", "momentum": "mom", "mg": "mg"}
# Per-row bookkeeping of sparse tables: an int32 per row, the step up to which it is up to date.
ROW_FIELD = "row_steps"
PER_PARAM_FIELDS = (*SLOT_FIELDS.values(), ROW_FIELD, "owed")
# Step counters (int32 scalars, None in a stage that keeps none); all equal `iterations`.
COUNT_FIELD = "count"
HYPERPARAMS_FIELD = "hyperparams"  # optax.inject_hyperparams's dict of hyperparameter values
SKIPPED_FIELD = "skipped"  # rmsprop_jax.skip_nonfinite's count of skipped steps

_Visit = Callable[[str, Any, Any], Any]
_DEEPER = object()  # what a visit returns to walk into the field instead of replacing it


def _is_record(tree: Any) -> bool:
    return isinstance(tree, tuple) and hasattr(tree, "_fields")


def _walk(tree: Any, other: Any, visit: _Visit) -> Any:
    """Rebuilds ``tree``, calling ``visit(field, value, other_value)`` on NamedTuple fields.

    ``other`` is a tree of the same layout walked alongside (or None). ``visit`` returns the new
    value, or `_DEEPER` to walk into the field.
    """
    if _is_record(tree):
        fields = {}
        for i, name in enumerate(tree._fields):
            value, paired = tree[i], (None if other is None else other[i])
            new = visit(name, value, paired)
            fields[name] = _walk(value, paired, visit) if new is _DEEPER else new
        return type(tree)(**fields)
    if isinstance(tree, tuple | list):
        return type(tree)(
            _walk(v, None if other is None else other[i], visit) for i, v in enumerate(tree)
        )
    return tree


def _find(state: Any, field: str) -> list[Any]:
    found: list[Any] = []

    def visit(name: str, value: Any, _: Any) -> Any:
        if name == field:
            found.append(value)
            return value
        return _DEEPER

    _walk(state, None, visit)
    return found


# --- counters and hyperparameters -------------------------------------------------------------


def count(state: Any) -> jax.Array:
    """The number of steps taken (Keras's ``iterations``), an int32 scalar."""
    return next(c for c in _find(state, COUNT_FIELD) if c is not None)


def with_count(state: Any, value: jax.typing.ArrayLike) -> Any:
    """Sets every step counter to ``value`` (a resumed or restored ``iterations``).

    Each counter gets its own buffer, so the state can be donated to a compiled step.
    """
    new = jnp.asarray(value, jnp.int32)

    def visit(name: str, old: Any, _: Any) -> Any:
        if name == COUNT_FIELD:
            return old if old is None else new.copy()
        return old if name in PER_PARAM_FIELDS or name == HYPERPARAMS_FIELD else _DEEPER

    return _walk(state, None, visit)


def skipped(state: Any) -> int:
    """How many steps `rmsprop_jax.skip_nonfinite` skipped (0 without it)."""
    found = _find(state, SKIPPED_FIELD)
    return int(found[0]) if found else 0


def hyperparams(state: Any) -> dict[str, jax.Array]:
    """The hyperparameter values the state holds (those of the last step)."""
    return _find(state, HYPERPARAMS_FIELD)[0]


def with_hyperparams(state: Any, values: dict[str, jax.Array]) -> Any:
    """The state with the hyperparameters the next step uses."""

    def visit(name: str, old: Any, _: Any) -> Any:
        if name == HYPERPARAMS_FIELD:
            return {**old, **values}
        return old if name in PER_PARAM_FIELDS else _DEEPER

    return _walk(state, None, visit)


# --- per-variable fields ----------------------------------------------------------------------


def slot(state: Any, name: str, index: int) -> jax.Array:
    """Variable ``index``'s slot ``name`` ("rms", "momentum" or "mg")."""
    return _find(state, SLOT_FIELDS[name])[0][index]


def with_slots(state: Any, values: dict[tuple[str, int], jax.Array]) -> Any:
    """The state with the slots ``values[(name, index)]`` written (cast to each slot's dtype)."""
    by_field: dict[str, dict[int, jax.Array]] = {}
    for (name, index), value in values.items():
        by_field.setdefault(SLOT_FIELDS[name], {})[index] = value

    def visit(key: str, old: Any, _: Any) -> Any:
        if key in by_field:
            new = by_field[key]
            return tuple(
                jnp.asarray(new[i]).astype(slot.dtype) if i in new else slot
                for i, slot in enumerate(old)
            )
        return old if key in PER_PARAM_FIELDS else _DEEPER

    return _walk(state, None, visit)


def rows(state: Any, index: int) -> jax.Array | None:
    """Variable ``index``'s per-row bookkeeping, or None (not a table, or nothing deferred)."""
    found = [r[index] for r in _find(state, ROW_FIELD) if r[index] is not None]
    return found[0] if found else None


def has_rows(state: Any) -> bool:
    """Whether some variable has per-row bookkeeping (work that reads must bring up to date)."""
    return any(r is not None for field in _find(state, ROW_FIELD) for r in field)


def mark_rows_current(state: Any) -> Any:
    """Marks every row up to date at the current step (after slots are written from outside)."""
    now = count(state)

    def visit(name: str, old: Any, _: Any) -> Any:
        if name == ROW_FIELD:
            return tuple(None if r is None else jnp.full_like(r, now) for r in old)
        return old if name in PER_PARAM_FIELDS else _DEEPER

    return _walk(state, None, visit)


def take(state: Any, indices: Sequence[int]) -> Any:
    """The state for the variables ``indices`` only (in that order); shared fields as they are."""

    def visit(name: str, old: Any, _: Any) -> Any:
        if name in PER_PARAM_FIELDS:
            return None if old is None else tuple(old[i] for i in indices)
        return old if name == HYPERPARAMS_FIELD else _DEEPER

    return _walk(state, None, visit)


def put(state: Any, part: Any, indices: Sequence[int]) -> Any:
    """Writes ``part`` (a `take` of ``indices``, stepped) back into ``state``."""

    def visit(name: str, old: Any, new: Any) -> Any:
        if name in PER_PARAM_FIELDS:
            if old is None:
                return None
            merged = list(old)
            for k, i in enumerate(indices):
                merged[i] = new[k]
            return tuple(merged)
        return _DEEPER if isinstance(old, tuple | list) else new

    return _walk(state, part, visit)


def merge(fresh: Any, old: Any) -> Any:
    """``fresh`` (a new init for more variables or tables) with what ``old`` already holds.

    Variables keep their positions: entry ``i`` of ``old`` is entry ``i`` of ``fresh``. Slots
    come from ``old``; per-row bookkeeping that ``old`` lacks starts up to date at the current
    step; counters take ``old``'s count, hyperparameters ``old``'s values.
    """
    now = count(old)
    old_hyper = hyperparams(old)

    # The two layouts differ only where fresh has new entries (or new counters and tables).
    def combine(tree: Any, before: Any) -> Any:
        if _is_record(tree):
            fields = {}
            for i, name in enumerate(tree._fields):
                value = tree[i]
                prior = before[i] if before is not None and i < len(before) else None
                if name in PER_PARAM_FIELDS and value is None:
                    fields[name] = None
                elif name in PER_PARAM_FIELDS:
                    known = () if prior is None else prior
                    fields[name] = tuple(
                        _merged_entry(name, v, known[j] if j < len(known) else None, now)
                        for j, v in enumerate(value)
                    )
                elif name == COUNT_FIELD:
                    fields[name] = None if value is None else now.copy()
                elif name == HYPERPARAMS_FIELD:
                    fields[name] = {**value, **old_hyper}
                elif isinstance(value, tuple) or _is_record(value):
                    fields[name] = combine(value, prior)
                else:
                    fields[name] = value if prior is None else prior
            return type(tree)(**fields)
        if isinstance(tree, tuple | list):
            return type(tree)(
                combine(v, before[i] if before is not None and i < len(before) else None)
                for i, v in enumerate(tree)
            )
        return tree

    return combine(fresh, old)


def _merged_entry(name: str, fresh: Any, old: Any, now: jax.Array) -> Any:
    if old is not None:
        return old
    if name == ROW_FIELD and fresh is not None:
        return jnp.full_like(fresh, now)  # a new table: every row is up to date now
    return fresh
