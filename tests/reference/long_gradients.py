"""Gradients of the long recorded runs (``*_long.json``), rebuilt alike by record.py and tests.

Every value is an exact integer ratio times a decimal literal, each operation correctly rounded
in float64 and then once to the run's dtype, so the same gradients come out on every machine
and nothing but the recipe needs to be stored. One vector of seven elements spans the
magnitudes 1e-4 to 1e2 (element ``j`` has scale ``SCALES[j]``), with both signs.
"""

from __future__ import annotations

import numpy as np

SCALES = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
SIZE = len(SCALES)
STEPS = 200
# The steps after which params are recorded; the slots are recorded after the last one.
CHECKPOINTS = (1, 2, 3, 4, 5, 25, 50, 75, 100, 125, 150, 175, 200)
TABLE_ROWS = 4  # the sparse runs: a (4, 2) table, two distinct rows touched per step


def _ratio(step: int, index: np.ndarray, salt: int) -> np.ndarray:
    k = (step * 7919 + index * 104729 + salt * 1299709) % 2003
    return (k - 1001) / 1001.0


def dense(step: int, salt: int = 0) -> np.ndarray:
    """The float64 gradient of step ``step`` (0-based), shape (SIZE,)."""
    index = np.arange(SIZE, dtype=np.int64)
    return _ratio(step, index, salt) * np.asarray(SCALES, np.float64)


def params0(salt: int = 0) -> np.ndarray:
    """The float64 starting params, shape (SIZE,), in [-1, 1]."""
    return _ratio(1000, np.arange(SIZE, dtype=np.int64), salt + 7)


def sparse(step: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows (int32, two distinct) and float64 values (2, 2) of step ``step``'s gradient."""
    rows = np.asarray([step % TABLE_ROWS, (3 * step + 1) % TABLE_ROWS], np.int32)
    values = _ratio(step, np.arange(4, dtype=np.int64), 3).reshape(2, 2)
    return rows, values * np.asarray([[1e-2], [1.0]])


def table0() -> np.ndarray:
    """The float64 starting table, shape (TABLE_ROWS, 2)."""
    return _ratio(2000, np.arange(2 * TABLE_ROWS, dtype=np.int64), 5).reshape(TABLE_ROWS, 2)
