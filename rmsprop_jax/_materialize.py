"""`materialize`: bring every deferred row of params and state up to date."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._learning_rate import ScaleByLearningRateState
from ._momentum import TraceMomentumState
from ._row_clock import RowClockState
from ._scaling import ScaleByCenteredRmsState, ScaleByRmsState
from ._updates import apply_updates
from ._weight_decay import DecoupledWeightDecayState

__all__ = ["materialize"]

_OWN_STATES = (
    RowClockState,
    ScaleByRmsState,
    ScaleByCenteredRmsState,
    TraceMomentumState,
    ScaleByLearningRateState,
    DecoupledWeightDecayState,
)


# The fields a catch-up writes: accumulators and per-row bookkeeping. Step counters are not.
_CAUGHT_UP = ("ms", "mg", "mom", "row_steps")


def _is_own(node: Any) -> bool:
    return isinstance(node, _OWN_STATES)


def _tracked_paths(state: Any) -> set[tuple[Any, ...]]:
    """The param paths whose rows a chain clock (`rmsprop_jax.row_clock`) keeps."""
    paths: set[tuple[Any, ...]] = set()
    for node in jax.tree_util.tree_leaves(state, is_leaf=_is_own):
        if isinstance(node, RowClockState):
            for path, _ in jax.tree_util.tree_leaves_with_path(node.row_steps):
                paths.add(path)
    return paths


def _caught_up(old: Any, new: Any) -> Any:
    """``old`` with the accumulators and row bookkeeping of this library's stages from ``new``.

    Every other field (step counters) and every foreign stage's state stays ``old``'s.
    """
    old_flat, treedef = jax.tree_util.tree_flatten(old, is_leaf=_is_own)
    new_flat = treedef.flatten_up_to(new)
    merged = [
        o._replace(**{f: getattr(n, f) for f in _CAUGHT_UP if f in o._fields}) if _is_own(o) else o
        for o, n in zip(old_flat, new_flat, strict=True)
    ]
    return treedef.unflatten(merged)


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

    It never steps a stage it does not own: every state that is not one of this library's
    stages (Adam's under ``optax.multi_transform``, the counters of ``optax.inject_hyperparams``
    or ``optax.MultiSteps``) comes back exactly as it was, and only the params that this
    library's stages keep per-row bookkeeping for can change.

    Args:
      tx: the optimizer: a chain of this library's stages (e.g. `rmsprop_jax.rmsprop`), possibly
        inside ``optax.multi_transform``/``partition``, ``optax.chain`` or
        `rmsprop_jax.skip_nonfinite`. The deferred movement of a table's params passes through
        the stages after the deferring one, so a stateful foreign stage after it on the same
        table (e.g. ``optax.scale_by_adam`` after ``rj.trace_momentum``) is not supported.
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
      >>> state[1].ms["t"][:, 0].round(4)  # row 0: 0.9 * 0.1 + 0.1; rows 1, 2 never touched
      Array([0.19, 0.  , 0.  ], dtype=float32)
    """
    if not isinstance(tx, optax.GradientTransformationExtraArgs):
        raise TypeError(
            "materialize needs an optimizer built from rmsprop_jax stages (e.g. rj.rmsprop). "
            f"Received: {type(tx).__name__}."
        )
    if not any(
        isinstance(node, RowClockState)
        for node in jax.tree_util.tree_leaves(state, is_leaf=_is_own)
    ):  # without a clock no row defers anything
        return params, state
    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params)
    # The clock turns every gradient into a catch-up (the rows' missed steps, no new step); the
    # stages after it apply only what their rows missed. Counters come back as they were.
    updates, new_state = tx.update(zeros, state, params, materialize=True)
    tracked = _tracked_paths(state)
    updates = jax.tree_util.tree_map_with_path(
        lambda path, update: update if path in tracked else None, updates
    )
    return apply_updates(params, updates), _caught_up(state, new_state)
