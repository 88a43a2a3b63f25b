"""A variable's slot record: its own core state, read and written by slot name.

The one module of `rmsprop_jax.keras` that knows what the core's state calls a slot: each
generation's Keras names map to the fields of `rmsprop_jax.rmsprop`'s state, read with
``optax.tree.get`` and written with ``optax.tree.set`` (by name, never by position).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._variable import StateView, Variable

__all__ = ["SLOTS", "Record", "slot_names"]

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


@dataclasses.dataclass(eq=False)
class Record:
    """One variable's slots: the core state of ``rmsprop(...).init(var)``, and its views."""

    var: Variable
    state: Any
    table: bool = False  # whether the state keeps per-row bookkeeping (sparse gradients)
    views: dict[str, StateView] = dataclasses.field(default_factory=dict)
    custom: dict[str, Variable] = dataclasses.field(default_factory=dict)

    def read(self, generation: str, name: str) -> jax.Array:
        return optax.tree.get(self.state, SLOTS[generation][name])

    def write(self, generation: str, values: dict[str, Any]) -> None:
        """Writes slots (copied, cast to each slot's dtype: the state is donated to steps)."""
        fields = {}
        for name, value in values.items():
            field = SLOTS[generation][name]
            fields[field] = jnp.array(value, optax.tree.get(self.state, field).dtype)
        self.state = optax.tree.set(self.state, **fields)

    def take_slots(self, old: Any) -> None:
        """Copies every slot of ``old`` (this variable's previous state) into the state."""
        fields = {f: optax.tree.get(old, f) for f in SLOTS["legacy"].values()}
        self.state = optax.tree.set(
            self.state, **{f: v for f, v in fields.items() if v is not None}
        )

    def rows(self) -> jax.Array | None:
        """The per-row bookkeeping of a table (None for a dense variable)."""
        try:
            return optax.tree.get(self.state, _ROWS) if self.table else None
        except (KeyError, ValueError):  # a table whose rows never defer work (momentum)
            return None
