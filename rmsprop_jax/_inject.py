"""Hyperparameters that can change between steps, kept in float32."""

from __future__ import annotations

import functools
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
    """``optax.inject_hyperparams`` with hyperparameters kept in float32 by default.

    ``optax.inject_hyperparams`` casts hyperparameters to the params' dtype: with bfloat16 params,
    ``rho=0.999`` becomes exactly 1.0 and the mean square never moves. This wrapper keeps them
    in ``hyperparam_dtype`` (float32 unless told otherwise); the stages of this library do their
    arithmetic in float32 and round only the results to the param or state dtype.

    Args:
      inner_factory: a function returning a ``GradientTransformation``, e.g. `rmsprop_jax.rmsprop`.
      static_args: names of callable arguments that are not schedules.
      hyperparam_dtype: the dtype of the injected hyperparameters.

    Returns:
      A function with ``inner_factory``'s arguments whose numeric arguments may be changed in
      ``state.hyperparams`` between steps without recompiling. Outside jit, with params on a
      mesh of several devices, the state's counter and hyperparameters are replicated over it
      (global arrays under ``jax.distributed``, as the other state leaves are).

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.inject_hyperparams(rj.rmsprop)(learning_rate=0.1, rho=0.999)
      >>> state = tx.init(jnp.zeros(2, jnp.bfloat16))
      >>> state.hyperparams["rho"]
      Array(0.999, dtype=float32)
    """
    factory = optax.inject_hyperparams(
        inner_factory, static_args=static_args, hyperparam_dtype=hyperparam_dtype
    )

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
        tx = factory(*args, **kwargs)
        # optax makes the counter and hyperparameters on one device; keep them on the params' mesh
        return optax.GradientTransformationExtraArgs(
            lambda params: replicated_on_mesh(params, tx.init(params)), tx.update
        )

    return build
