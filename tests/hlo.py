"""Reading a compiled HLO module's collectives: shared by the 8-device and multi-process checks.

Imports neither jax nor the library, so a worker can import it before it initialises JAX.
"""

from __future__ import annotations

import math
import re
from typing import Any

COLLECTIVE = re.compile(
    r"= (.*?) (all-gather|all-to-all|all-reduce|reduce-scatter|collective-permute|"
    r"collective-broadcast)(?:-start)?\("
)
SHAPE = re.compile(r"(\w+)\[([\d,]*)\]")


def collectives(text: str) -> list[dict[str, Any]]:
    """Every collective of a compiled HLO module, one entry per array it moves."""
    out = []
    for result_type, op in COLLECTIVE.findall(text):
        for dtype, dims in SHAPE.findall(result_type):
            shape = [int(d) for d in dims.split(",") if d]
            out.append({"op": op, "dtype": dtype, "shape": shape, "size": math.prod(shape)})
    return out
