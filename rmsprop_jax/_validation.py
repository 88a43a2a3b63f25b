"""Checks for hyperparameters: each error names the argument, the rule and the value received.

Only values known when the optimizer is built are checked. Traced values (inside `jax.jit`,
`optax.inject_hyperparams`) and schedules are skipped: their range cannot be known in advance.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_float_dtype",
    "check_leaf_dtypes",
    "check_range",
    "is_static",
    "static_value",
    "suggest_keywords",
]


def is_static(value: Any) -> bool:
    """Whether ``value`` is a plain Python or NumPy number, fixed when the optimizer is built.

    JAX arrays count as dynamic, even concrete ones: ``optax.inject_hyperparams`` passes concrete
    arrays to ``init`` and traced ones to ``update``, and both must build the same structure.
    """
    return isinstance(value, int | float | np.number | np.ndarray) and not isinstance(value, bool)


def static_value(value: Any) -> float | None:
    """The float value of a static scalar, or None for a JAX array, tracer or schedule."""
    if not is_static(value):
        return None
    return float(np.asarray(value))


def _describe_range(low: float | None, high: float | None) -> str:
    if high is None:
        return f">= {low:g}"
    return f"in [{low:g}, {high:g}]"


def check_range(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float | None = None,
    allow_schedule: bool = False,
    hint: str = "",
) -> None:
    """Checks that a scalar hyperparameter lies in ``[low, high]`` (``high=None``: no upper bound).

    Args:
      name: the argument's name, as the user wrote it.
      value: what the user passed.
      low: the smallest allowed value.
      high: the largest allowed value, or None.
      allow_schedule: whether a callable (an optax schedule) is accepted in place of a number.
      hint: a sentence appended to the error, saying what to write instead.

    Raises:
      TypeError: if ``value`` is not a real number (or a schedule where one is allowed).
      ValueError: if ``value`` is not a scalar, is not finite, or lies outside the range.
    """
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
        raise ValueError(
            f"`{name}` must be {_describe_range(low, high)}. Received: {name}={number!r}.{suffix}"
        )


def check_bool(name: str, value: Any) -> None:
    """Checks that a flag is a Python bool (flags select code paths, so they cannot be traced)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"`{name}` must be True or False. Received: {name}={value!r} "
            f"of type {type(value).__name__}."
        )


def check_choice(name: str, value: Any, allowed: Callable[[], list[str]] | list[str]) -> None:
    """Checks that ``value`` is one of the ``allowed`` strings (an explicit allow-list)."""
    options = allowed() if callable(allowed) else allowed
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ValueError(f"`{name}` must be one of {listed}. Received: {name}={value!r}.")


def check_float_dtype(name: str, value: Any) -> jnp.dtype | None:
    """Checks an optional dtype argument and returns it as a floating ``jnp.dtype`` (or None)."""
    if value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except TypeError as error:
        raise TypeError(
            f"`{name}` must be a floating dtype or None. Received: {name}={value!r}."
        ) from error
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"`{name}` must be a floating dtype such as jnp.float32 or None (the param dtype). "
            f"Received: {name}={dtype}."
        )
    return dtype


def check_leaf_dtypes(
    tree: Any,
    *,
    what: str,
    stage: str,
    complex_support: str | None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> None:
    """Checks, when a step is traced, that every leaf of ``tree`` is floating (or complex).

    Args:
      tree: params or gradients (leaves: arrays, ``jax.ShapeDtypeStruct`` or `SparseRows`, whose
        ``dtype`` is that of their values; None leaves are skipped).
      what: ``"param"`` or ``"gradient"``, for the message.
      stage: who checks, e.g. ``"rmsprop(convention='keras3')"``.
      complex_support: None if complex leaves are accepted, else the sentence that says which
        conventions support them.
      is_leaf: passed to the tree flattening (to keep `SparseRows` whole).

    Raises:
      TypeError: naming the first offending leaf's path and dtype.
    """
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]
    for path, leaf in flat:
        if leaf is None or not hasattr(leaf, "dtype"):
            continue
        dtype = jnp.dtype(leaf.dtype)
        where = jax.tree_util.keystr(path) or "(the root)"
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{stage}: the {what} at {where} has dtype {dtype}; RMSprop needs floating "
                "params and gradients (float16, bfloat16, float32, float64). Cast it, e.g. "
                "jax.tree.map(lambda p: p.astype(jnp.float32), params), and differentiate with "
                "respect to floating params."
            )
        if complex_support is not None and jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(f"{stage}: the {what} at {where} has dtype {dtype}. {complex_support}")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def suggest_keywords(
    renames: Mapping[str, str],
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turns an unknown keyword into a TypeError that says what to write instead.

    ``renames`` maps other frameworks' spellings to a sentence naming this function's argument
    (``{"alpha": "rho=", ...}``). The wrapped function keeps its signature (``inspect.signature``
    follows ``__wrapped__``), so ``optax.inject_hyperparams`` still sees the real arguments.
    """

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        known: Sequence[str] = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            for name in kwargs:
                if name in known:
                    continue
                hint = renames.get(name)
                if hint is not None:
                    raise TypeError(
                        f"{fn.__name__}() got an unexpected keyword argument {name!r}. {hint}"
                    )
                raise TypeError(
                    f"{fn.__name__}() got an unexpected keyword argument {name!r}. "
                    f"Its arguments are: {', '.join(known)}."
                )
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def is_tracer(value: Any) -> bool:
    """Whether ``value`` is traced (inside ``jax.jit``, ``grad``, ``vmap``): its data is unknown."""
    return isinstance(value, jax.core.Tracer)  # pyright: ignore[reportAttributeAccessIssue]
