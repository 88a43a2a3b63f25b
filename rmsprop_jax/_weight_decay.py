"""The weight-decay stages: coupled (an L2 term in the gradient) and decoupled (shrink weights)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._learning_rate import LearningRate, check_learning_rate
from ._numerics import as_compute, compute_dtype, learning_rate_at
from ._sharding import replicated_like
from ._sparse_rows import is_sparse
from ._tree import check_matching_tree, leaves, marked_leaves
from ._validation import check_range


def decay_mask(params: Any, mask: Any) -> Any:
    """Optax's ``mask`` (bools on a prefix of the params, or a function) as a full tree of bools."""
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    flags = iter(marked_leaves(params, mask, "weight_decay_mask", rows=False))
    return jax.tree.map(lambda _: next(flags), params)


def masked_decay(mask: Any, tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` on the params ``mask`` marks (all of them when ``mask`` is None)."""
    if mask is None:
        return tx
    return optax.masked(tx, lambda params: decay_mask(params, mask))


def _map_decay(leaf: Any, updates: optax.Updates, params: Any, stage: str) -> optax.Updates:
    """``leaf(update, param)`` on each update that is not None, after `check_decay_inputs`."""
    check_decay_inputs(updates, params, stage)
    return jax.tree.map(
        lambda u, p: None if u is None else leaf(u, p), updates, params, is_leaf=lambda x: x is None
    )


def check_decay_inputs(updates: optax.Updates, params: optax.Params | None, stage: str) -> None:
    if params is None:
        call = "call tx.update(grads, state, params) with the current params."
        raise ValueError(f"{stage} needs the params: {call}")
    check_matching_tree(updates, params, stage=stage)
    if any(is_sparse(leaf) for leaf in leaves(updates)):
        raise ValueError(
            f"{stage}: weight decay changes every row of a table on every step, so it cannot "
            "follow a SparseRows gradient. Use weight_decay=None for tables that get SparseRows "
            "gradients, or pass dense gradients."
        )


def add_l2_gradient(weight_decay: jax.typing.ArrayLike) -> optax.GradientTransformation:
    r"""Adds the gradient of an L2 penalty to the gradient (PyTorch's coupled ``weight_decay``).

    .. math:: \text{out} = g + \lambda\, w

    Args:
      weight_decay: the coefficient :math:`\lambda`, >= 0.

    Returns:
      A stateless ``optax.GradientTransformation``; its ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.add_l2_gradient(0.1)
      >>> tx.update(jnp.ones(1), tx.init(jnp.ones(1)), jnp.full(1, 2.0))[0]
      Array([1.2], dtype=float32)
    """
    check_range("weight_decay", weight_decay, low=0.0, hint="Use None for no weight decay.")
    stage = "add_l2_gradient"

    def leaf(grad: jax.Array, param: jax.Array) -> jax.Array:
        dtype = compute_dtype(grad.dtype, param.dtype)
        decay = as_compute(weight_decay, dtype)
        return (grad.astype(dtype) + decay * param.astype(dtype)).astype(grad.dtype)

    return optax.stateless(lambda updates, params: _map_decay(leaf, updates, params, stage))


class DecoupledWeightDecayState(NamedTuple):
    """State of `add_decoupled_weight_decay`."""

    count: jax.Array  # int32 scalar: updates applied so far, the step the schedule sees


def decoupled_decay(
    update: jax.Array, param: jax.Array, weight_decay: jax.typing.ArrayLike, lr: jax.Array
) -> jax.Array:
    """``u - w * wd * lr`` in the compute dtype of ``update`` (``lr`` already in it)."""
    shrink = param.astype(lr.dtype) * as_compute(weight_decay, lr.dtype) * lr
    return (update.astype(lr.dtype) - shrink).astype(update.dtype)


def add_decoupled_weight_decay(
    weight_decay: jax.typing.ArrayLike,
    learning_rate: LearningRate,
    *,
    decay: jax.typing.ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Shrinks the weights by ``lr * weight_decay`` outside the adaptive step (Keras 3, AdamW).

    .. math:: \text{out} = u - \eta_t\, \lambda\, w, \qquad
      \eta_t = \operatorname{lr}(t) / (1 + \text{decay} \cdot t)

    Args:
      weight_decay: the coefficient :math:`\lambda`, >= 0.
      learning_rate: the same number or optax schedule the learning-rate stage uses.
      decay: Keras's inverse-time decay of that learning rate.

    Returns:
      An ``optax.GradientTransformation`` whose state is a `DecoupledWeightDecayState`; its
      ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.add_decoupled_weight_decay(0.5, 0.1)
      >>> tx.update(jnp.zeros(1), tx.init(jnp.ones(1)), jnp.full(1, 2.0))[0]  # -(2 * 0.5) * 0.1
      Array([-0.1], dtype=float32)
    """
    check_range("weight_decay", weight_decay, low=0.0, hint="Use None for no weight decay.")
    check_learning_rate(learning_rate, decay)

    def init_fn(params: optax.Params) -> DecoupledWeightDecayState:
        return DecoupledWeightDecayState(count=replicated_like(params, 0, jnp.int32))

    def update_fn(
        updates: optax.Updates, state: DecoupledWeightDecayState, params: Any = None, **extra: Any
    ) -> tuple[optax.Updates, DecoupledWeightDecayState]:

        def leaf(update: jax.Array, param: jax.Array) -> jax.Array:
            lr = learning_rate_at(learning_rate, decay, state.count, compute_dtype(update.dtype))
            return decoupled_decay(update, param, weight_decay, lr)

        updates = _map_decay(leaf, updates, params, "add_decoupled_weight_decay")
        return updates, DecoupledWeightDecayState(jnp.asarray(optax.safe_increment(state.count)))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]
