"""A variable's slot record: its core state, read and written by slot name (``optax.tree``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._variable import StateView, Variable

_INITIALIZERS = {"zeros": 0.0, "ones": 1.0}

# Keras slot name -> core state field, in the order each generation lists its slots.
SLOTS = {
    "legacy": {"rms": "ms", "momentum": "mom", "mg": "mg"},
    "keras3": {"velocity": "ms", "momentum": "mom", "average_gradient": "mg"},
}
_ROWS = "row_steps"  # the per-row bookkeeping of a sparse table (int32 per row)


def slot_names(generation: str, momentum: bool, centered: bool) -> list[str]:
    """The slots a variable has, in the generation's order."""
    kept = {"ms": True, "mom": momentum, "mg": centered}
    return [name for name, field in SLOTS[generation].items() if kept[field]]


def new_slot(name: str, shape: tuple[int, ...], dtype: Any, initializer: Any) -> Variable:
    """A separate slot or weight from "zeros", "ones", a number, an array or a callable."""
    if isinstance(initializer, str):
        if initializer not in _INITIALIZERS:
            raise ValueError(
                f"Unknown initializer {initializer!r}; supported: {sorted(_INITIALIZERS)}, a "
                "number, an array or a callable (shape, dtype) -> array."
            )
        initializer = _INITIALIZERS[initializer]
    value = initializer(shape, dtype) if callable(initializer) else initializer
    return Variable(jnp.broadcast_to(jnp.asarray(value, dtype), shape), name, trainable=False)


@dataclasses.dataclass(eq=False)
class Record:
    """One variable's slots: the core state of ``rmsprop(...).init(var)``, and their views."""

    var: Variable
    state: Any
    table: bool = False  # whether the state keeps per-row bookkeeping (sparse gradients)
    views: dict[str, StateView] = dataclasses.field(default_factory=dict)

    def renew(self, state: Any, old: Any) -> None:
        """A new state (its own buffers: steps donate it), with ``old``'s slots if any."""
        self.state = jax.tree.map(jnp.copy, state)
        if old is not None:
            fields = {f: optax.tree.get(old, f) for f in SLOTS["legacy"].values()}
            self.state = optax.tree.set(
                self.state, **{f: v for f, v in fields.items() if v is not None}
            )

    def view(self, generation: str, name: str, catch_up: Callable[..., Any]) -> StateView:
        """Slot ``name`` as a Variable: read brought up to date, written into the state."""
        field = SLOTS[generation][name]

        def read() -> jax.Array:
            self.bring_up_to_date(catch_up)
            return optax.tree.get(self.state, field)

        def write(value: Any) -> None:
            self.bring_up_to_date(catch_up)
            dtype = optax.tree.get(self.state, field).dtype
            self.state = optax.tree.set(self.state, **{field: jnp.array(value, dtype)})  # a copy

        if name not in self.views:
            sep = "/" if generation == "legacy" else "_"
            self.views[name] = StateView(f"{self.var.name}{sep}{name}", read, write)
        return self.views[name]

    def rows(self) -> jax.Array | None:
        """The per-row bookkeeping of a table (None for a dense variable)."""
        try:
            return optax.tree.get(self.state, _ROWS) if self.table else None
        except (KeyError, ValueError):  # a table whose rows never defer work (momentum)
            return None

    def donatable(self) -> jax.Array:
        """The buffer if nothing else can hold it (`Variable.owns_buffer`), else a copy."""
        return self.var._value if self.var.owns_buffer() else self.var._value.copy()

    def bring_up_to_date(self, catch_up: Callable[..., Any]) -> None:
        """Applies the work sparse steps deferred on the rows (``catch_up``: `materialize`)."""
        rows = self.rows()
        if rows is not None and bool(jnp.any(rows != optax.tree.get(self.state, "count"))):
            value, self.state = catch_up(self.donatable(), self.state)
            self.var._own(value)
