"""The float32 bound the conformance tests use for long runs: relative to the distance travelled."""

from __future__ import annotations

import numpy as np

RTOL, ATOL = 1e-5, 1e-6  # the bar for float32


def path_length(trajectory: np.ndarray, params0: np.ndarray) -> np.ndarray:
    """Per element, the distance travelled so far: the sum of |step| up to each step.

    A param is a sum of its steps, so its round-off grows with that sum, not with its value: a
    param that crosses zero after 100 steps of 0.05 carries the round-off of 5.0. Under jit XLA
    fuses multiply-adds (one rounding where the framework rounds twice), and with momentum 0.9
    each step's difference is carried ten times; the float32 bound is RTOL of the distance.
    """
    steps = np.abs(np.diff(np.concatenate([params0[None], trajectory]), axis=0))
    return np.cumsum(steps, axis=0)


def assert_close_along_path(
    actual: np.ndarray,
    expected: np.ndarray,
    path: np.ndarray,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    what: str = "",
) -> None:
    """``|actual - expected| <= atol + rtol * (|expected| + path)``, element by element."""
    error = np.abs(actual - expected)
    bound = atol + rtol * (np.abs(expected) + path)
    assert np.all(error <= bound), (
        f"{what}: {actual} != {expected}, error / bound up to {np.max(error / bound):.3g}"
    )
