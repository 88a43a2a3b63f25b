"""`table_copies`: finds the whole-table copies XLA adds to a jitted step (the sparse trap)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import jax

__all__ = ["TableCopies", "table_copies"]

_COPY = re.compile(r"= (\w+)\[([\d,]*)\][^\n]*? copy(?:-start)?\(")

_FIX = (
    "Each copy is a pass over a table on every step, whatever the number of rows looked up. "
    "The usual cause: a table is read outside the lookup that differentiates it (a second "
    "`table[idx]`, or one value_and_sparse_grad call per table while the loss reads the other "
    "tables), so XLA keeps the old table while it updates the donated one in place. Look each "
    "table up once, differentiate the gathered rows and wrap their gradients in rj.SparseRows "
    "(docs/sparse.md, 'Several tables')."
)


@dataclasses.dataclass(frozen=True)
class TableCopies:
    """What `table_copies` found in a compiled step.

    Attributes:
      copies: the shapes of the copies at least ``table_bytes`` large, e.g. ``"f32[1000000,16]"``.
      temp_bytes: the compiled step's temporary memory, in bytes.
      table_bytes: the size from which a copy counts (the largest array argument by default).
    """

    copies: list[str]
    temp_bytes: int
    table_bytes: int

    @property
    def ok(self) -> bool:
        """No table-sized copy and less temporary memory than one table."""
        return not self.copies and self.temp_bytes < self.table_bytes

    def __str__(self) -> str:
        temp = f"{self.temp_bytes / 2**20:.1f} MiB of temporaries"
        if self.ok:
            return f"no table-sized copy; {temp}."
        found = ", ".join(self.copies) or "none"
        return (
            f"table-sized copies: {found}; {temp} (a table is {self.table_bytes:,} bytes). {_FIX}"
        )


def table_copies(
    step: Any, *args: Any, table_bytes: int | None = None, **kwargs: Any
) -> TableCopies:
    """Compiles ``step(*args, **kwargs)`` and reports the copies as large as a table.

    A sparse step should cost the rows it touches; a copy of a donated table (XLA's answer when
    the table is also read elsewhere in the step) costs a pass over it, silently. Run this once
    on your jitted step, with donation as you use it, and check ``report.ok``.

    Args:
      step: a ``jax.jit``-wrapped function (it has ``.lower``).
      *args: its arguments (arrays or ``jax.ShapeDtypeStruct``).
      table_bytes: the size from which a copy counts; default the largest array argument.
      **kwargs: its keyword arguments.

    Returns:
      A `TableCopies`; ``str(report)`` says what was found and how to fix it.

    Raises:
      TypeError: if ``step`` is not jitted.

    Example:
      >>> import jax, jax.numpy as jnp, rmsprop_jax as rj
      >>> step = jax.jit(lambda table, rows: table.at[rows].add(1.0), donate_argnums=0)
      >>> report = rj.table_copies(step, jnp.zeros((10**5, 4)), jnp.arange(8))
      >>> report.ok, report.copies
      (True, [])
    """
    if not hasattr(step, "lower"):
        raise TypeError(
            "`step` must be a jax.jit-wrapped function (with its donate_argnums, as you run "
            f"it). Received: {type(step).__name__}."
        )
    leaves = jax.tree.leaves((args, kwargs))
    sizes = [math.prod(x.shape) * x.dtype.itemsize for x in leaves if hasattr(x, "dtype")]
    threshold = max(sizes, default=0) if table_bytes is None else table_bytes
    compiled = step.lower(*args, **kwargs).compile()
    copies = []
    for dtype, dims in _COPY.findall(compiled.as_text()):
        shape = [int(d) for d in dims.split(",") if d]
        bits = re.match(r"[a-z]+(\d+)", dtype)  # f32, bf16, c128, f8e4m3fn; pred is one byte
        if math.prod(shape) * ((int(bits[1]) + 7) // 8 if bits else 1) >= threshold > 0:
            copies.append(f"{dtype}[{dims}]")
    analysis = compiled.memory_analysis()
    temp = int(getattr(analysis, "temp_size_in_bytes", 0)) if analysis is not None else 0
    return TableCopies(copies, temp, threshold)
