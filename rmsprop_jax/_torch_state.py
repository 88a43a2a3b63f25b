"""``torch.optim.RMSprop``'s ``state_dict`` to this library and back (torch is never imported)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._alias import rmsprop

# torch.optim.RMSprop's group options: those that change the numbers, and those that do not.
_NUMERIC = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")
_IMPLEMENTATION = ("foreach", "capturable", "differentiable", "initial_lr", "params")
_SLOTS = {"square_avg": "ms", "grad_avg": "mg", "momentum_buffer": "mom"}


def _groups(state_dict: Any) -> list[dict[str, Any]]:
    if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
        raise ValueError(
            "`state_dict` must be torch.optim.RMSprop(...).state_dict(): a dict with keys "
            f"'state' and 'param_groups'. Received: {type(state_dict).__name__}"
            + (f" with keys {sorted(state_dict)}" if isinstance(state_dict, Mapping) else "")
            + "."
        )
    groups = list(state_dict["param_groups"])
    for i, group in enumerate(groups):
        unknown = sorted(set(group) - set(_NUMERIC) - set(_IMPLEMENTATION))
        if unknown or "params" not in group:
            raise ValueError(
                f"param_groups[{i}] has options {unknown} that torch.optim.RMSprop does not "
                f"have (or no 'params'): is this another optimizer's state dict? RMSprop's "
                f"options are {list(_NUMERIC)}."
            )
    return groups


def _positions(params: Any, names: Sequence[str] | None) -> tuple[list[Any], list[int]]:
    """The params' leaves (JAX's order) and, per torch index, its leaf's position."""
    with_paths = jax.tree_util.tree_flatten_with_path(params)[0]
    if names is None:
        return [leaf for _, leaf in with_paths], list(range(len(with_paths)))
    keys = list(params) if isinstance(params, Mapping) else []
    if sorted(map(str, keys)) != sorted(names) or len(with_paths) != len(keys):
        raise ValueError(
            "With `names`, `params` must be a flat dict from each name of "
            "model.named_parameters() to its array. Received keys "
            f"{sorted(map(str, keys))}; names {sorted(names)}."
        )
    keys = [path[0].key for path, _ in with_paths]  # type: ignore[union-attr]
    return [leaf for _, leaf in with_paths], [keys.index(name) for name in names]


def _slot(value: Any, param: Any, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != tuple(param.shape):
        raise ValueError(f"{where} has shape {array.shape}; the param has {tuple(param.shape)}.")
    if array.dtype != np.dtype(param.dtype):
        raise TypeError(f"{where} has dtype {array.dtype}; the param has dtype {param.dtype}.")
    return array


def _group_optimizer(group: Mapping[str, Any]) -> optax.GradientTransformation:
    """``rj.rmsprop`` with one torch group's options (``convention="torch"``)."""
    number = lambda key: float(np.asarray(group[key]))  # noqa: E731
    return rmsprop(
        number("lr"),
        rho=number("alpha"),
        momentum=number("momentum") or None,
        epsilon=number("eps"),
        centered=bool(group["centered"]),
        weight_decay=number("weight_decay") or None,
        maximize=bool(group.get("maximize", False)),
        convention="torch",
    )


def from_torch_state_dict(
    state_dict: Mapping[str, Any], params: optax.Params, *, names: Sequence[str] | None = None
) -> tuple[optax.GradientTransformation, optax.OptState]:
    """The optimizer and state that continue a ``torch.optim.RMSprop`` run here.

    Each param group becomes ``rj.rmsprop(..., convention="torch")`` with its options (several
    groups: an ``optax.multi_transform``), torch's ``square_avg``, ``grad_avg`` and
    ``momentum_buffer`` its ``ms``, ``mg`` and ``mom``, and its largest ``step`` its count.

    Args:
      state_dict: a ``torch.optim.RMSprop``'s ``state_dict()``, tensors or NumPy arrays.
      params: the model's params as JAX arrays: a pytree whose leaves are in the order of
        ``model.parameters()`` (torch's param indices), or, with ``names``, a dict by name.
      names: the names of ``model.named_parameters()``, in its order.

    Returns:
      ``(tx, state)``: ``tx.update(grads, state, params)`` takes torch's next step.

    Raises:
      ValueError: for a dict that is not RMSprop's, a param count or shape that does not match.
      TypeError: for a slot whose dtype is not its param's.

    Example:
      >>> import jax.numpy as jnp, numpy as np, optax, rmsprop_jax as rj
      >>> torch_state = {  # torch.optim.RMSprop([w], lr=0.1).state_dict() after one step
      ...     "state": {0: {"step": np.float32(1), "square_avg": np.full(2, 0.01, np.float32)}},
      ...     "param_groups": [{"lr": 0.1, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0,
      ...                       "momentum": 0, "centered": False, "params": [0]}],
      ... }
      >>> tx, state = rj.from_torch_state_dict(torch_state, jnp.array([0.0, 1.0]))
      >>> optax.tree.get(state, "ms"), optax.tree.get(state, "count")
      (Array([0.01, 0.01], dtype=float32), Array(1, dtype=int32))
    """
    groups = _groups(state_dict)
    leaves, position = _positions(params, names)
    indices = sorted(i for group in groups for i in group["params"])
    if indices != list(range(len(leaves))):
        raise ValueError(
            f"The state dict's param groups hold params {indices}; `params` has "
            f"{len(leaves)} arrays. Pass the params of model.parameters(), all of them."
        )
    slots: dict[str, dict[int, np.ndarray]] = {name: {} for name in _SLOTS.values()}
    steps: dict[int, int] = {}
    for i in indices:
        entry = state_dict["state"].get(i, state_dict["state"].get(str(i), {}))
        steps[i] = int(np.asarray(entry.get("step", 0)))
        for torch_name, name in _SLOTS.items():
            if torch_name in entry:
                at = f"state[{i}][{torch_name!r}]"
                slots[name][position[i]] = _slot(entry[torch_name], leaves[position[i]], at)
    tree = jax.tree_util.tree_structure(params)
    counts = [max((steps[i] for i in group["params"]), default=0) for group in groups]
    if len(groups) == 1:
        tx = _group_optimizer(groups[0])
        return tx, _fill(tx.init(params), tree, slots, counts[0])
    labels = [""] * len(leaves)
    for g, group in enumerate(groups):
        for i in group["params"]:
            labels[position[i]] = f"group{g}"
    tx = optax.multi_transform(
        {f"group{g}": _group_optimizer(group) for g, group in enumerate(groups)},
        tree.unflatten(labels),
    )
    state: Any = tx.init(params)
    inner = {f"group{g}": state.inner_states[f"group{g}"] for g in range(len(groups))}
    for (key, masked), count in zip(inner.items(), counts, strict=True):
        inner[key] = masked._replace(inner_state=_fill(masked.inner_state, tree, slots, count))
    return tx, state._replace(inner_states=inner)


def _slot_tree(state: Any, name: str) -> Any:
    """The per-param tree ``name`` of an optimizer state, or None without such a slot."""
    try:
        return optax.tree.get(state, name)
    except (KeyError, ValueError):
        return None


def _fill(state: Any, tree: Any, slots: dict[str, dict[int, np.ndarray]], count: int) -> Any:
    """``state`` with torch's slots at their params' positions and the step count set."""
    found = {}
    for name, values in slots.items():
        if (current := _slot_tree(state, name)) is None:
            continue
        flat = tree.flatten_up_to(current)  # optax.MaskedNode where another group holds it
        for at, value in values.items():
            if not isinstance(flat[at], optax.MaskedNode):
                flat[at] = jnp.asarray(value)
        found[name] = tree.unflatten(flat)
    return optax.tree.set(state, **found, count=jnp.asarray(count, jnp.int32))


def to_torch_state_dict(
    state: Any,
    params: optax.Params,
    param_groups: Sequence[Mapping[str, Any]],
    *,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``torch.optim.RMSprop``'s ``state_dict`` of a run continued here (`from_torch_state_dict`).

    Args:
      state: the state of the ``tx`` that `from_torch_state_dict` returned.
      params: the params, as given to `from_torch_state_dict`.
      param_groups: torch's ``param_groups`` (``optimizer.state_dict()["param_groups"]``).
      names: as given to `from_torch_state_dict`.

    Returns:
      ``{"state": {index: {"step", "square_avg", ...}}, "param_groups": [...]}`` with NumPy
      arrays: ``torch_optimizer.load_state_dict`` takes it (after ``torch.as_tensor``).
    """
    groups = _groups({"state": {}, "param_groups": param_groups})
    _, position = _positions(params, names)
    tree = jax.tree_util.tree_structure(params)
    group_states = [state]
    if len(groups) > 1:
        group_states = [state.inner_states[f"group{g}"].inner_state for g in range(len(groups))]
    out: dict[int, dict[str, Any]] = {}
    for group, group_state in zip(groups, group_states, strict=True):
        count = np.float32(np.asarray(optax.tree.get(group_state, "count")))
        flats = {
            torch_name: tree.flatten_up_to(values)
            for torch_name, name in _SLOTS.items()
            if (values := _slot_tree(group_state, name)) is not None
        }
        for i in group["params"]:
            out[i] = {
                "step": count,
                **{key: np.asarray(f[position[i]]) for key, f in flats.items()},
            }
    return {"state": out, "param_groups": [dict(group) for group in param_groups]}
