"""`skip_nonfinite`: a wrapper that skips a step whose gradients hold NaN or Inf."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._sharding import full_of_type, replicated_like
from ._sparse_rows import SparseRows, is_sparse
from ._tree import leaves
from ._validation import is_tracer


class SkipNonfiniteState(NamedTuple):
    """State of `skip_nonfinite`."""

    inner_state: optax.OptState  # the wrapped transformation's state, untouched by skipped steps
    skipped: jax.Array  # int32 scalar: steps skipped so far


def all_finite(tree: Any) -> jax.Array:
    """A bool scalar: whether every floating value (`SparseRows`: its ``values``) is finite."""
    checks = []
    for leaf in leaves(tree):
        values = jnp.asarray(leaf.values if is_sparse(leaf) else leaf)
        if jnp.issubdtype(values.dtype, jnp.inexact):
            checks.append(jnp.all(jnp.isfinite(values)))
    return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


def _neutral(like: Any) -> Any:
    """``-0.0`` updates (``w + -0.0`` is ``w`` bit for bit); `SparseRows` get the dropped row."""

    def leaf(shape: Any) -> Any:
        if isinstance(shape, SparseRows):
            rows = jax.ShapeDtypeStruct(
                shape.rows.shape, shape.index_dtype, sharding=getattr(shape.rows, "sharding", None)
            )
            return shape.replace(
                full_of_type(rows, shape.num_rows, shape.index_dtype), leaf(shape.values)
            )
        zero = -0.0 if jnp.issubdtype(shape.dtype, jnp.inexact) else 0
        return full_of_type(shape, zero, shape.dtype)

    return jax.tree_util.tree_map(leaf, like, is_leaf=is_sparse)


def skip_nonfinite(tx: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    r"""Wraps ``tx`` so that a step whose gradients contain NaN or Inf changes nothing.

    .. math::

      (u_t, s_t) = \begin{cases}
        \text{tx.update}(g_t, s_{t-1}) & \text{every element of } g_t \text{ finite} \\
        (-0,\; s_{t-1}) & \text{otherwise}
      \end{cases}

    A skipped step keeps the wrapped state bit for bit and returns ``-0.0`` updates
    (`SparseRows`: no row), which leave every param exactly as it was.

    Args:
      tx: the transformation to guard, e.g. `rmsprop_jax.rmsprop`.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a `SkipNonfiniteState`.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.skip_nonfinite(rj.rmsprop(0.1))
      >>> params = jnp.array([1.0, 2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([jnp.nan, 1.0]), state, params)
      >>> rj.apply_updates(params, updates), state.skipped
      (Array([1., 2.], dtype=float32), Array(1, dtype=int32))
    """
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(
            "`tx` must be an optax.GradientTransformation such as rj.rmsprop(...). "
            f"Received: tx of type {type(tx).__name__}."
        )
    inner = optax.with_extra_args_support(tx)

    def init_fn(params: optax.Params) -> SkipNonfiniteState:
        inner_state = inner.init(params)
        return SkipNonfiniteState(inner_state, replicated_like(params, 0, jnp.int32))

    def update_fn(
        updates: optax.Updates, state: SkipNonfiniteState, params: Any = None, **extra_args: Any
    ) -> tuple[optax.Updates, SkipNonfiniteState]:
        if extra_args.get("materialize", False):
            new_updates, inner_state = inner.update(
                updates, state.inner_state, params, **extra_args
            )
            return new_updates, state._replace(inner_state=inner_state)

        def step(operands: Any) -> Any:
            return inner.update(*operands, **extra_args)

        def skip(operands: Any) -> Any:
            return _neutral(jax.eval_shape(step, operands)[0]), operands[1]

        finite = all_finite(updates)
        operands = (updates, state.inner_state, params)
        if is_tracer(finite):
            new_updates, inner_state = jax.lax.cond(finite, step, skip, operands)
        else:  # eager: branch in Python rather than compile a cond on every call
            new_updates, inner_state = step(operands) if bool(finite) else skip(operands)
        skipped = jnp.where(finite, state.skipped, optax.safe_increment(state.skipped))
        return new_updates, SkipNonfiniteState(inner_state=inner_state, skipped=skipped)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]
