"""Strict JAX in every test: no implicit dtype or rank promotion; warnings are errors."""

from __future__ import annotations

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
