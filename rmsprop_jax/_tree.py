"""Tree helpers treating `SparseRows` as leaves: structure checks, value maps, applying updates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._sparse_rows import SparseRows, is_sparse, is_sparse_or_none


def leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree``, with each `SparseRows` as one leaf."""
    return jax.tree_util.tree_leaves(tree, is_leaf=is_sparse)


def _structure(tree: Any) -> Any:
    return jax.tree_util.tree_structure(tree, is_leaf=is_sparse_or_none)


def check_matching_tree(updates: Any, state_tree: Any, *, stage: str) -> None:
    """Raises a ValueError naming the mismatch when ``updates`` and ``state_tree`` differ.

    ``state_tree`` is a per-param tree built by ``init``; a `SparseRows` leaf matches a leaf of
    its table's shape, and a None gradient (no gradient this step) any leaf.
    """
    given = jax.tree_util.tree_leaves_with_path(updates, is_leaf=is_sparse_or_none)
    state = jax.tree_util.tree_leaves_with_path(state_tree, is_leaf=is_sparse_or_none)
    if _structure(updates) != _structure(state_tree):
        got, want = ([jax.tree_util.keystr(path) for path, _ in pairs] for pairs in (given, state))
        raise ValueError(
            f"{stage}: the gradient tree does not match the params given to init(). "
            f"Missing from the gradients: {[p for p in want if p not in got] or 'none'}; "
            f"not in the params: {[p for p in got if p not in want] or 'none'}. "
            f"Gradient structure: {_structure(updates)}; "
            f"params structure: {_structure(state_tree)}. "
            "Pass gradients with exactly the structure of the params."
        )
    for (path, update), (_, state_leaf) in zip(given, state, strict=True):
        where = jax.tree_util.keystr(path) or "the root"
        if update is not None and state_leaf is None:
            raise ValueError(
                f"{stage}: the param at {where} is None, but its gradient is an array. Give "
                "None as its gradient, or a param to init()."
            )
        if update is not None and tuple(update.shape) != tuple(state_leaf.shape):
            kind = "SparseRows gradient" if is_sparse(update) else "gradient"
            raise ValueError(
                f"{stage}: the {kind} at {where} has shape {tuple(update.shape)}, but the param "
                f"it updates has shape {tuple(state_leaf.shape)}."
            )


def map_values(fn: Callable[[jax.Array], jax.Array], tree: Any) -> Any:
    """Applies ``fn`` to every dense leaf and to the ``values`` of every `SparseRows` leaf."""

    def leaf(x: Any) -> Any:
        return x.with_values(fn(x.values)) if isinstance(x, SparseRows) else fn(x)

    return jax.tree.map(leaf, tree, is_leaf=is_sparse)


def marked_leaves(params: Any, marks: Any, name: str, *, rows: bool = True) -> list[bool]:
    """One flag per param leaf from ``marks`` (bools on a prefix of the params, or a function).

    ``rows``: the marked params are tables, so a marked scalar is an error.
    """
    mask = marks(params) if callable(marks) else marks
    marked = dict(jax.tree_util.tree_leaves_with_path(mask))
    flags = []
    for path, param in jax.tree_util.tree_leaves_with_path(params):
        prefixes = [path[:length] for length in range(len(path), -1, -1)]
        found = next((marked[prefix] for prefix in prefixes if prefix in marked), None)
        where = jax.tree_util.keystr(path) or "the root"
        if found is None:
            raise ValueError(
                f"`{name}` must be a pytree of bools with the structure of the params (or "
                f"a function of the params returning one). It has no flag for the param at "
                f"{where}. Received: {name}={mask!r}. Params structure: "
                f"{jax.tree_util.tree_structure(params)}."
            )
        if not isinstance(found, bool):
            raise TypeError(
                f"`{name}` leaves must be True or False. Received: {found!r} at {where}."
            )
        if rows and found and len(param.shape) == 0:
            raise ValueError(f"`{name}` marks the scalar param at {where}; tables have rows.")
        flags.append(found)
    return flags


def _apply(param: Any, update: Any) -> Any:
    if update is None:
        return param
    if isinstance(update, SparseRows):
        return update.scatter_add_into(param)
    return jnp.asarray(param + update).astype(jnp.asarray(param).dtype)


def apply_updates(params: optax.Params, updates: optax.Updates) -> optax.Params:
    """Adds updates to params, keeping each param's dtype: ``w + u``.

    A `SparseRows` update is scatter-added into its table (out-of-range rows are dropped).

    Args:
      params: the current params.
      updates: updates from ``tx.update``, with the structure of ``params``.

    Returns:
      The new params.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> rj.apply_updates(jnp.ones(2), jnp.array([0.5, -1.0]))
      Array([1.5, 0. ], dtype=float32)
      >>> row_2 = rj.SparseRows(jnp.array([2]), jnp.ones((1, 1)), (3, 1))
      >>> rj.apply_updates(jnp.zeros((3, 1)), row_2)
      Array([[0.],
             [0.],
             [1.]], dtype=float32)
    """
    return jax.tree.map(_apply, params, updates, is_leaf=lambda x: x is None or is_sparse(x))
