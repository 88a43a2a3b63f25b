"""`materialize`: bring every deferred row of params and state up to date."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ._updates import apply_updates

__all__ = ["materialize"]


def materialize(
    tx: optax.GradientTransformation, params: optax.Params, state: optax.OptState
) -> tuple[optax.Params, optax.OptState]:
    r"""Applies all work deferred by `SparseRows` steps, without taking a step.

    With ``sparse_mode="keras"`` (no momentum) or ``"dense"``, rows a sparse gradient did not
    touch are brought up to date only when touched again. This applies what is pending to every
    row: the decay :math:`\rho^k` of ``ms`` and ``mg`` and, in ``"dense"`` mode, the momentum
    drift of the params, so that params and state equal what the dense algorithm fed zero rows
    would hold. Use it before evaluation, checkpoints and inspection. Where nothing is pending it
    changes nothing. It is one pass over each table.

    Args:
      tx: the optimizer, a chain of this library's stages (e.g. `rmsprop_jax.rmsprop`). Stages
        of other libraries in the chain would take a zero-gradient step, and wrappers that count
        calls (``optax.inject_hyperparams``, ``optax.MultiSteps``) would count this one: they are
        not supported.
      params: the current params.
      state: ``tx``'s current state.

    Returns:
      ``(params, state)``, with every row up to date.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tables = {"t": True}
      >>> tx = rj.rmsprop(0.1, sparse_tables=tables)  # keras mode: ms decays on every row
      >>> params = {"t": jnp.ones((3, 1))}
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     grad = {"t": rj.SparseRows(jnp.array([0]), jnp.ones((1, 1)), (3, 1))}
      ...     updates, state = tx.update(grad, state, params)
      ...     params = rj.apply_updates(params, updates)
      >>> params, state = rj.materialize(tx, params, state)
      >>> state[0].ms["t"][:, 0].round(4)  # row 0: 0.9 * 0.1 + 0.1; rows 1, 2 never touched
      Array([0.19, 0.  , 0.  ], dtype=float32)
    """
    if not isinstance(tx, optax.GradientTransformationExtraArgs):
        raise TypeError(
            "materialize needs an optimizer built from rmsprop_jax stages (e.g. rj.rmsprop). "
            f"Received: {type(tx).__name__}."
        )
    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params)
    updates, state = tx.update(zeros, state, params, materialize=True)
    return apply_updates(params, updates), state
