"""Strict JAX in every test: no implicit dtype or rank promotion; warnings are errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(params=[False, True], ids=["eager", "jit"])
def maybe_jit(request: pytest.FixtureRequest) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Runs the wrapped function as is, and again under ``jax.jit``."""
    return jax.jit if request.param else (lambda fn: fn)


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``@pytest.mark.fast_share(k)``: every k-th case of a battery in the fast loop, the others
    marked slow, so ``-m "not slow"`` samples each battery and the full run (CI) runs all."""
    seen: Counter[tuple[str, str]] = Counter()
    for item in items:
        mark = item.get_closest_marker("fast_share")
        if mark is None:
            continue
        key = (str(item.path), getattr(item, "originalname", item.name))
        if seen[key] % mark.args[0]:
            item.add_marker(pytest.mark.slow)
        seen[key] += 1
