"""What the Keras methods take: Variable lists, (gradient, Variable) pairs, and losses."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._variable import READS, StateView, Variable


def describe(value: Any) -> str:
    if isinstance(value, jax.Array | np.ndarray):
        kind = "a jax.Array" if isinstance(value, jax.Array) else "a NumPy array"
        return f"{kind} of shape {tuple(value.shape)}"
    return f"{value!r} of type {type(value).__name__}"


_NOT_A_VARIABLE = (
    "{where} holds {what}, not a rj.keras.Variable. The optimizer updates Variables in place; "
    "wrap each array once, `w = rj.keras.Variable(array)`, use `w` in the loss, and pass `w`."
)
_PAIRS = (
    "`grads_and_vars` must be (gradient, Variable) pairs, e.g. "
    "`opt.apply_gradients(zip(grads, variables))`. Received: {}."
)


def _variable(var: Any, where: str, seen: set[int], twice: str, hint: str = "") -> None:
    """Checks ``var`` is a Variable (not a view) met once; ``twice``: the repeat's error."""
    if not isinstance(var, Variable) or isinstance(var, StateView):
        raise TypeError(_NOT_A_VARIABLE.format(where=where, what=describe(var)) + hint)
    if id(var) in seen:
        raise ValueError(twice.format(var.name))
    seen.add(id(var))


def variable_list(var_list: Any, argument: str) -> list[Variable]:
    """``var_list`` as a list of distinct Variables, or a TypeError saying what to pass."""
    if isinstance(var_list, Variable) or not isinstance(var_list, list | tuple):
        raise TypeError(
            f"`{argument}` must be a list or tuple of rj.keras.Variable (or, for minimize, a "
            f"callable returning one). Received: {describe(var_list)}."
        )
    seen: set[int] = set()
    for i, var in enumerate(var_list):
        twice = f"`{argument}` lists variable {{!r}} twice (position {i}); list each once."
        _variable(var, f"`{argument}[{i}]`", seen, twice)
    return list(var_list)


def gradient_pairs(grads_and_vars: Any) -> list[tuple[Any, Variable]]:
    """``grads_and_vars`` as a list of ``(gradient, Variable)`` pairs, checked."""
    if isinstance(grads_and_vars, Variable | jax.Array | np.ndarray | dict):
        raise TypeError(_PAIRS.format(describe(grads_and_vars)))
    pairs, seen = [], set[int]()
    for i, item in enumerate(grads_and_vars):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(_PAIRS.format(f"item {i}: {describe(item)}, not a pair"))
        grad, var = item
        hint = " The pairs are (gradient, variable), in that order." * isinstance(grad, Variable)
        twice = f"`grads_and_vars` has two gradients for variable {{!r}} (pair {i}); sum them."
        _variable(var, f"The variable of pair {i} of `grads_and_vars`", seen, twice, hint)
        shape = var.shape if grad is None else tuple(getattr(grad, "shape", np.shape(grad)))
        if shape != var.shape:
            raise ValueError(
                f"The gradient of pair {i} has shape {shape}; its variable {var.name!r} has shape "
                f"{var.shape}. Pass a gradient of the variable's shape (or a rj.SparseRows)."
            )
        pairs.append((grad, var))
    return pairs


def loss_gradients(loss: Any, var_list: Any, grad_loss: Any = None) -> list[tuple[Any, Variable]]:
    """``(gradient, Variable)`` pairs of ``loss()``; None for a variable it does not read."""
    if not callable(loss):
        raise TypeError(
            "`loss` must be a zero-argument callable returning the value to minimize, e.g. "
            "`opt.minimize(lambda: jnp.sum(jnp.square(w)), [w])` (JAX differentiates "
            f"functions, not computed values). Received: {describe(loss)}."
        )
    if callable(var_list) and not isinstance(var_list, Variable):
        loss()  # as tf.keras: the first call of `loss` may create the variables
        var_list = var_list()
    variables = variable_list(var_list, "var_list")
    read: set[int] = set()  # the ids of the variables the loss reads
    put = lambda new: [setattr(v, "_value", x) for v, x in zip(variables, new, strict=True)]  # noqa: E731

    def evaluate(values: list[jax.Array]) -> jax.Array:
        saved = [var._value for var in variables]
        READS.append(read)
        try:
            put(values)
            return jnp.asarray(loss())
        finally:
            READS.pop()
            put(saved)

    out, pullback = jax.vjp(evaluate, [var._value for var in variables])
    cotangent = jnp.ones_like(out) if grad_loss is None else jnp.asarray(grad_loss, out.dtype)
    if cotangent.shape != out.shape:  # a non-scalar loss: the gradient of its sum, as TF
        raise ValueError(
            f"`grad_loss` has shape {cotangent.shape}; the loss has shape {out.shape}. "
            "Pass the gradient of the final objective with respect to the loss."
        )
    (grads,) = pullback(cotangent)
    return [(g if id(v) in read else None, v) for g, v in zip(grads, variables, strict=True)]
