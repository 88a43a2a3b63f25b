"""Helpers shared by the stage tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax


def run_stage(
    tx: optax.GradientTransformation,
    inputs: Sequence[Any],
    params: Any,
    maybe_jit: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> tuple[list[Any], list[Any]]:
    """Applies ``tx.update`` to each input in turn from ``tx.init(params)``; returns the outputs
    and the state after each step."""
    update = maybe_jit(tx.update)
    state = tx.init(params)
    outs, states = [], []
    for value in inputs:
        # A dict is a gradient tree; anything else (a list of numbers too) is one array.
        grads = jax.tree.map(jnp.asarray, value) if isinstance(value, dict) else jnp.asarray(value)
        out, state = update(grads, state)
        outs.append(out)
        states.append(state)
    return outs, states
