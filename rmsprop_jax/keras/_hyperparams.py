"""tf.keras's hyperparameters (OptimizerV2's ``_hyper``): numbers, callables and schedules.

A hyperparameter is a number, a zero-argument callable returning the value to use (called
afresh at every step), or, for ``learning_rate``, a `LearningRateSchedule` of the step count.
Each step receives the values as float32 arrays, so a new number does not recompile the step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_range
from ._schedules import LearningRateSchedule

__all__ = ["HYPERPARAMETERS", "Hyperparameters", "momentum_enabled"]

# name -> (low, high, hint): the range of a number.
HYPERPARAMETERS: dict[str, tuple[float, float | None, str]] = {
    "learning_rate": (0.0, None, ""),
    "rho": (0.0, 1.0, "It is the decay of the mean square, e.g. 0.9."),
    "momentum": (0.0, 1.0, "Use 0.0 to switch momentum off."),
    "epsilon": (0.0, None, "A small positive number such as 1e-7."),
    "decay": (0.0, None, "Use 0.0 for a learning rate without inverse-time decay."),
}

_LR_KINDS = (
    "a number, a schedule from rj.keras.schedules (e.g. "
    "rj.keras.schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.9)) or a "
    "zero-argument callable returning the rate"
)


def _is_number(value: Any) -> bool:
    numeric = int | float | np.number | np.ndarray | jax.Array
    return isinstance(value, numeric) and not isinstance(value, bool)


def momentum_enabled(momentum: Any) -> bool:
    """tf.keras's rule, fixed at construction: a callable, an array, or a number > 0."""
    if callable(momentum) or isinstance(momentum, jax.Array):
        return True
    return _is_number(momentum) and float(np.asarray(momentum)) > 0


def check(name: str, value: Any) -> None:
    """Raises a TypeError or ValueError naming ``name`` if ``value`` is not a valid setting."""
    if isinstance(value, LearningRateSchedule):
        if name == "learning_rate":
            return
        raise TypeError(
            f"`{name}` cannot be a learning-rate schedule (only `learning_rate` can). "
            f"Received: {name}={value!r}. Pass a number or a zero-argument callable."
        )
    if callable(value) and not isinstance(value, jax.Array):
        _check_no_arguments(name, value)
        return  # called at every step; its values are not range-checked (as traced values)
    if name == "learning_rate" and not _is_number(value):
        raise TypeError(
            f"`learning_rate` must be {_LR_KINDS}. Received: learning_rate={value!r} of type "
            f"{type(value).__name__}."
        )
    low, high, hint = HYPERPARAMETERS[name]
    check_range(name, value, low=low, high=high, hint=hint)


def _check_no_arguments(name: str, value: Callable[..., Any]) -> None:
    """tf.keras calls a hyperparameter callable with no arguments: refuse one that needs some."""
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if required:
        schedule = (
            " For a schedule of the step count use rj.keras.schedules (e.g. "
            "rj.keras.schedules.ExponentialDecay), or rj.rmsprop, which takes optax schedules."
            if name == "learning_rate"
            else ""
        )
        raise TypeError(
            f"`{name}` as a callable must take no arguments (tf.keras calls it as {name}() at "
            f"every step). Received a callable that needs {required}.{schedule}"
        )


class Hyperparameters:
    """The current setting of each hyperparameter, and the arrays a step takes.

    A step takes float32 arrays (tf.keras holds its hyperparameters in float32 variables),
    except the names in ``wide``, which the framework keeps as Python floats: they come as the
    widest float JAX allows, so a float64 variable sees them exactly.
    """

    def __init__(self, values: dict[str, Any], wide: tuple[str, ...] = ()) -> None:
        for name, value in values.items():
            check(name, value)
        self._settings = dict(values)
        self._wide = wide

    def setting(self, name: str) -> Any:
        """What the user set: a number, a callable or a schedule."""
        return self._settings[name]

    def set(self, name: str, value: Any) -> None:
        """Replaces a setting (validated first: a bad value changes nothing)."""
        check(name, value)
        self._settings[name] = value

    def value(self, name: str, wide: bool = False) -> jax.Array:
        """The value a step would use now (callables are called), float32 unless ``wide``."""
        setting = self._settings[name]
        if isinstance(setting, LearningRateSchedule):
            raise TypeError(f"`{name}` is a schedule of the step count, not a number.")
        value = setting() if callable(setting) else setting
        dtype = jax.dtypes.canonicalize_dtype(jnp.float64) if wide else jnp.float32
        return jnp.asarray(value, dtype)

    def step_values(self) -> dict[str, jax.Array]:
        """The values of the next step (a schedule is evaluated inside the step)."""
        return {
            n: self.value(n, n in self._wide)
            for n, v in self._settings.items()
            if not isinstance(v, LearningRateSchedule)
        }

    def schedule(self) -> LearningRateSchedule | None:
        """The learning-rate schedule, or None when the rate is a number or a callable."""
        lr = self._settings["learning_rate"]
        return lr if isinstance(lr, LearningRateSchedule) else None

    def config_value(self, name: str) -> Any:
        """The setting as tf.keras's ``get_config`` writes it (a callable's current value)."""
        setting = self._settings[name]
        if callable(setting) and not isinstance(setting, LearningRateSchedule):
            return float(np.asarray(setting()))
        return setting
