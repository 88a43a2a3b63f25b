"""What the Keras methods take: Variable lists, (gradient, Variable) pairs, and losses."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._variable import StateView, Variable, track_reads


def describe(value: Any) -> str:
    """A short description of a received value, for error messages."""
    if isinstance(value, jax.Array):
        return f"a jax.Array of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {tuple(value.shape)}"
    return f"{value!r} of type {type(value).__name__}"


_NOT_A_VARIABLE = (
    "{where} holds {what}, not a rj.keras.Variable. The optimizer updates Variables in place; "
    "wrap each array once, `w = rj.keras.Variable(array)`, use `w` in the loss, and pass `w`."
)


def variable_list(var_list: Any, argument: str) -> list[Variable]:
    """``var_list`` as a list of distinct Variables, or a TypeError saying what to pass."""
    if isinstance(var_list, Variable) or not isinstance(var_list, list | tuple):
        raise TypeError(
            f"`{argument}` must be a list or tuple of rj.keras.Variable (or, for minimize, a "
            f"callable returning one). Received: {describe(var_list)}."
        )
    seen: set[int] = set()
    for i, var in enumerate(var_list):
        if not isinstance(var, Variable) or isinstance(var, StateView):
            raise TypeError(_NOT_A_VARIABLE.format(where=f"`{argument}[{i}]`", what=describe(var)))
        if id(var) in seen:
            raise ValueError(
                f"`{argument}` lists variable {var.name!r} twice (position {i}); list each "
                "variable once."
            )
        seen.add(id(var))
    return list(var_list)


def gradient_pairs(grads_and_vars: Any) -> list[tuple[Any, Variable]]:
    """``grads_and_vars`` as a list of ``(gradient, Variable)`` pairs, checked."""
    if isinstance(grads_and_vars, Variable | jax.Array | np.ndarray | dict):
        raise TypeError(
            "`grads_and_vars` must be (gradient, Variable) pairs, e.g. "
            f"`zip(grads, variables)`. Received: {describe(grads_and_vars)}."
        )
    pairs = []
    seen: set[int] = set()
    for i, item in enumerate(grads_and_vars):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(
                "`grads_and_vars` must be (gradient, Variable) pairs, e.g. "
                f"`opt.apply_gradients(zip(grads, variables))`. Item {i} is "
                f"{describe(item)}, not a pair."
            )
        grad, var = item
        if not isinstance(var, Variable) or isinstance(var, StateView):
            hint = (
                " The pairs are (gradient, variable), in that order."
                if isinstance(grad, Variable)
                else ""
            )
            raise TypeError(
                _NOT_A_VARIABLE.format(
                    where=f"The variable of pair {i} of `grads_and_vars`", what=describe(var)
                )
                + hint
            )
        if id(var) in seen:
            raise ValueError(
                f"`grads_and_vars` has two gradients for variable {var.name!r} (pair {i}); sum "
                "them into one gradient per variable."
            )
        seen.add(id(var))
        if grad is not None:
            shape = tuple(grad.shape) if hasattr(grad, "shape") else np.shape(grad)
            if shape != var.shape:
                raise ValueError(
                    f"The gradient of pair {i} has shape {shape}; its variable {var.name!r} has "
                    f"shape {var.shape}. Pass a gradient of the variable's shape (or a "
                    "rj.SparseRows with shape=variable.shape)."
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

    def evaluate(values: list[jax.Array]) -> jax.Array:
        saved = [var._value for var in variables]
        try:
            for var, value in zip(variables, values, strict=True):
                var._value = value
            return jnp.asarray(loss())
        finally:
            for var, value in zip(variables, saved, strict=True):
                var._value = value

    with track_reads() as read:
        out, pullback = jax.vjp(evaluate, [var._value for var in variables])
    if grad_loss is None:
        cotangent = jnp.ones_like(out)  # a non-scalar loss: the gradient of its sum, as TF
    else:
        cotangent = jnp.asarray(grad_loss, out.dtype)
        if cotangent.shape != out.shape:
            raise ValueError(
                f"`grad_loss` has shape {cotangent.shape}; the loss has shape {out.shape}. "
                "Pass the gradient of the final objective with respect to the loss."
            )
    (grads,) = pullback(cotangent)
    return [
        (grad if id(var) in read else None, var) for grad, var in zip(grads, variables, strict=True)
    ]


def gradients(loss: Any, params: Any) -> list[jax.Array]:
    """Gradients of the zero-argument ``loss``; a parameter it does not read is an error."""
    pairs = loss_gradients(loss, params)
    for grad, var in pairs:
        if grad is None:
            raise ValueError(
                f"Variable {var.name!r} has `None` for gradient: the loss does not read it. "
                "Leave it out of `params`, or use it in the loss."
            )
    return [grad for grad, _ in pairs]
