"""Tree helpers: checking that a gradient tree matches the state that ``init`` built."""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["check_matching_tree", "map_unzip"]


def _paths(tree: Any) -> list[str]:
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(tree)]


def check_matching_tree(updates: Any, state_tree: Any, *, stage: str) -> None:
    """Raises a ValueError naming the mismatch when ``updates`` and ``state_tree`` differ.

    The check runs at trace time (shapes and structure are static), so it costs nothing per step
    under ``jax.jit``.

    Args:
      updates: the gradient (or update) tree passed to ``update``.
      state_tree: a per-parameter tree of the stage's state, built by ``init`` from the params.
      stage: the stage's name, for the message.
    """
    if jax.tree_util.tree_structure(updates) != jax.tree_util.tree_structure(state_tree):
        got, want = _paths(updates), _paths(state_tree)
        missing = [path for path in want if path not in set(got)] or "none"
        extra = [path for path in got if path not in set(want)] or "none"
        raise ValueError(
            f"{stage}: the gradient tree does not match the params given to init(). "
            f"Missing from the gradients: {missing}; not in the params: {extra}. "
            f"Gradient structure: {jax.tree_util.tree_structure(updates)}; "
            f"params structure: {jax.tree_util.tree_structure(state_tree)}. "
            "Pass gradients with exactly the structure of the params."
        )
    for (path, update), state_leaf in zip(
        jax.tree_util.tree_leaves_with_path(updates),
        jax.tree_util.tree_leaves(state_tree),
        strict=True,
    ):
        if update.shape != state_leaf.shape:
            raise ValueError(
                f"{stage}: the gradient at {jax.tree_util.keystr(path) or 'the root'} has shape "
                f"{update.shape}, but the param it updates has shape {state_leaf.shape}."
            )


def map_unzip(fn: Any, num_outputs: int, tree: Any, *rest: Any) -> tuple[Any, ...]:
    """Maps ``fn`` (which returns a tuple) over trees and returns one tree per output."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rest_leaves = [treedef.flatten_up_to(other) for other in rest]
    outputs = [fn(*args) for args in zip(leaves, *rest_leaves, strict=True)]
    return tuple(
        jax.tree_util.tree_unflatten(treedef, [output[i] for output in outputs])
        for i in range(num_outputs)
    )
