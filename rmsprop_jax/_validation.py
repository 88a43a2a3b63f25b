"""Checks of the hyperparameters known when the optimizer is built (not traced values)."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import jax
import jax.numpy as jnp
import numpy as np


def is_static(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy number (a JAX array, even concrete, is dynamic)."""
    return isinstance(value, int | float | np.number | np.ndarray) and not isinstance(value, bool)


def static_value(value: Any) -> float | None:
    """The float value of a static scalar, or None for a JAX array, tracer or schedule."""
    return float(np.asarray(value)) if is_static(value) else None


def check_range(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float | None = None,
    allow_schedule: bool = False,
    hint: str = "",
) -> None:
    """Checks that the real scalar (or allowed schedule) ``name=value`` is in ``[low, high]``."""
    suffix = f" {hint}" if hint else ""
    if callable(value) and not isinstance(value, jax.Array):
        if allow_schedule:
            return
        raise TypeError(f"`{name}` must be a number, not a callable. Received: {name}={value!r}.")
    numeric = int | float | np.number | np.ndarray | jax.Array
    if isinstance(value, bool) or not isinstance(value, numeric):
        kinds = "a number or an optax schedule" if allow_schedule else "a number"
        raise TypeError(
            f"`{name}` must be {kinds}. Received: {name}={value!r} of type {type(value).__name__}."
        )
    try:
        array = np.asarray(value)
    except jax.errors.TracerArrayConversionError:
        return  # a traced value: its range is checked by nobody, as in optax
    if array.ndim != 0:
        raise ValueError(
            f"`{name}` must be a scalar. Received: {name} with shape {array.shape}.{suffix}"
        )
    if not (jnp.issubdtype(array.dtype, jnp.integer) or jnp.issubdtype(array.dtype, jnp.floating)):
        raise TypeError(f"`{name}` must be a real number. Received: {name}={value!r}.")
    number = float(array)
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        rule = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]"
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={number!r}.{suffix}")


def check_bool(name: str, value: Any) -> None:
    """Checks that a flag is a Python bool (flags select code paths, so they cannot be traced)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"`{name}` must be True or False. Received: {name}={value!r} "
            f"of type {type(value).__name__}."
        )


def check_choice(name: str, value: Any, allowed: list[str]) -> None:
    """Checks that ``value`` is one of the ``allowed`` strings."""
    if not isinstance(value, str) or value not in allowed:
        listed = ", ".join(repr(option) for option in allowed)
        raise ValueError(f"`{name}` must be one of {listed}. Received: {name}={value!r}.")


def check_float_dtype(name: str, value: Any, *, complex_ok: bool = False) -> jnp.dtype | None:
    """An optional floating (``complex_ok``: or complex) dtype argument as a ``jnp.dtype``."""
    if value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except TypeError as error:
        raise TypeError(
            f"`{name}` must be a floating dtype or None. Received: {name}={value!r}."
        ) from error
    if not jnp.issubdtype(dtype, jnp.inexact if complex_ok else jnp.floating):
        kinds = "a floating or complex dtype" if complex_ok else "a floating dtype"
        raise ValueError(
            f"`{name}` must be {kinds} such as jnp.float32 or None (the param dtype). "
            f"Received: {name}={dtype}."
        )
    return dtype


_P = ParamSpec("_P")
_R = TypeVar("_R")


def suggest_keywords(renames: Mapping[str, str]) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turns an unknown keyword into a TypeError; ``renames`` maps some to what to write instead."""

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        known = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            for name in kwargs:
                if name not in known:
                    hint = renames.get(name, f"Its arguments are: {', '.join(known)}.")
                    raise TypeError(
                        f"{fn.__name__}() got an unexpected keyword argument {name!r}. {hint}"
                    )
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def is_tracer(value: Any) -> bool:
    """Whether ``value`` is traced (inside ``jax.jit``, ``grad``, ``vmap``): its data is unknown."""
    return isinstance(value, jax.core.Tracer)  # pyright: ignore[reportAttributeAccessIssue]
