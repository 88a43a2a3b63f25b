"""Hyperparameters that can change between steps, kept in float32; only those the user passed."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import jax.numpy as jnp
import optax

from ._sharding import replicated_on_mesh

__all__ = ["inject_hyperparams"]


def inject_hyperparams(
    inner_factory: Callable[..., optax.GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = jnp.float32,
) -> Callable[..., optax.GradientTransformationExtraArgs]:
    """``optax.inject_hyperparams``, injecting only what is passed, in float32 by default.

    Unlike optax's, it leaves the defaults of ``inner_factory`` alone (an injected ``rho`` loses
    the float64 ``1 - rho``, see `rmsprop_jax.Convention`), so
    ``inject_hyperparams(rmsprop)(learning_rate=1e-2)`` computes exactly what ``rmsprop(1e-2)``
    does; and it keeps hyperparameters in ``hyperparam_dtype``, not the params' dtype (in
    bfloat16, ``rho=0.999`` is 1.0).

    Warning:
      Injecting ``momentum`` (even 0.0) takes the framework's momentum path (for
      ``convention="keras"``, epsilon inside the square root): inject it only to change it.

    Args:
      inner_factory: a function returning a ``GradientTransformation``, e.g. `rmsprop_jax.rmsprop`.
      static_args: names of callable arguments that are not schedules.
      hyperparam_dtype: the dtype of the injected hyperparameters.

    Returns:
      A function with ``inner_factory``'s arguments whose passed numeric arguments may be changed
      in ``state.hyperparams`` between steps without recompiling. With params on a mesh, the
      counter and hyperparameters are replicated over it.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.inject_hyperparams(rj.rmsprop)(learning_rate=0.1, rho=0.999)
      >>> state = tx.init(jnp.zeros(2, jnp.bfloat16))
      >>> state.hyperparams["rho"]
      Array(0.999, dtype=float32)
      >>> sorted(state.hyperparams)  # momentum, epsilon, decay were not passed: not injected
      ['learning_rate', 'rho']
    """
    signature = inspect.signature(inner_factory)

    @functools.wraps(inner_factory)
    def factory(*args: Any, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
        inner_factory(*args, **kwargs)  # every argument error surfaces here, with its own message
        passed = signature.bind(*args, **kwargs).arguments

        def only_passed(**hyperparams: Any) -> optax.GradientTransformation:
            return inner_factory(**hyperparams)

        only_passed.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in passed]
        )
        tx = optax.inject_hyperparams(
            only_passed, static_args=static_args, hyperparam_dtype=hyperparam_dtype
        )(**passed)
        return optax.GradientTransformationExtraArgs(
            lambda params: replicated_on_mesh(params, tx.init(params)), tx.update
        )

    return factory
