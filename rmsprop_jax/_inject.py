"""Hyperparameters that can change between steps, kept in float32; only those the user passed."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._sharding import replicated_on_mesh


def _is_number(value: Any) -> bool:
    """A real number or a numeric scalar array: what can be held as a hyperparameter."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.number):
        return True
    return isinstance(value, np.ndarray | jax.Array) and jnp.issubdtype(value.dtype, jnp.number)


def inject_hyperparams(
    inner_factory: Callable[..., optax.GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = jnp.float32,
    *,
    schedule_args: str | Iterable[str] = ("learning_rate",),
) -> Callable[..., optax.GradientTransformationExtraArgs]:
    """``optax.inject_hyperparams``, injecting only the numbers passed, in float32 by default.

    Every other argument (a dtype, a flag, a string, a function) is static, and the defaults of
    ``inner_factory`` are left alone, so ``inject_hyperparams(rmsprop)(learning_rate=1e-2)``
    computes exactly what ``rmsprop(1e-2)`` does (see docs/conventions.md for an injected
    ``rho``). In bfloat16, ``rho=0.999`` would be 1.0: hence float32.

    Warning:
      Injecting ``momentum`` (even 0.0) takes the momentum path: inject it only to change it.

    Args:
      inner_factory: a function returning a ``GradientTransformation``, e.g. `rmsprop_jax.rmsprop`.
      static_args: names of arguments never injected, even when given a number.
      hyperparam_dtype: the dtype of the injected hyperparameters.
      schedule_args: names of arguments whose callables are schedules of the step count.

    Returns:
      A function with ``inner_factory``'s arguments whose passed numbers may be changed in
      ``state.hyperparams`` between steps without recompiling.

    Raises:
      ValueError: if ``static_args`` or ``schedule_args`` names an argument ``inner_factory``
        does not have.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.inject_hyperparams(rj.rmsprop)(
      ...     learning_rate=0.1, rho=0.999, state_dtype=jnp.float32
      ... )
      >>> state = tx.init(jnp.zeros(2, jnp.bfloat16))
      >>> state.hyperparams["rho"]
      Array(0.999, dtype=float32)
      >>> sorted(state.hyperparams)  # numbers passed; state_dtype is static
      ['learning_rate', 'rho']
    """
    signature = inspect.signature(inner_factory)
    named = {
        kind: {names} if isinstance(names, str) else set(names)
        for kind, names in (("static_args", static_args), ("schedule_args", schedule_args))
    }
    for kind, names in named.items():
        unknown = sorted(names - set(signature.parameters))
        if unknown and not (kind == "schedule_args" and names == {"learning_rate"}):
            raise ValueError(
                f"`{kind}` must name arguments of {inner_factory.__name__}. Received: {unknown}; "
                f"its arguments are {list(signature.parameters)}."
            )

    @functools.wraps(inner_factory)
    def factory(*args: Any, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
        inner_factory(*args, **kwargs)  # every argument error surfaces here, with its own message
        passed = signature.bind(*args, **kwargs).arguments
        schedules = named["schedule_args"] - named["static_args"]
        static = {
            name
            for name, value in passed.items()
            if name in named["static_args"]
            or not (_is_number(value) or (callable(value) and name in schedules))
        }

        def only_passed(**hyperparams: Any) -> optax.GradientTransformation:
            return inner_factory(**hyperparams)

        only_passed.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in passed]
        )
        tx = optax.inject_hyperparams(
            only_passed, static_args=static, hyperparam_dtype=hyperparam_dtype
        )(**passed)
        return optax.GradientTransformationExtraArgs(
            lambda params: replicated_on_mesh(params, tx.init(params)), tx.update
        )

    return factory
