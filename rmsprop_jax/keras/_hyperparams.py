"""tf.keras's hyperparameters: numbers, zero-argument callables (called every step), schedules."""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_range
from ._schedules import LearningRateSchedule

# name -> (low, high, hint): the range of a number.
_RANGES: dict[str, tuple[float, float | None, str]] = {
    "learning_rate": (0.0, None, ""),
    "rho": (0.0, 1.0, "It is the decay of the mean square, e.g. 0.9."),
    "momentum": (0.0, 1.0, "Use 0.0 to switch momentum off."),
    "epsilon": (0.0, None, "A small positive number such as 1e-7."),
    "decay": (0.0, None, "Use 0.0 for a learning rate without inverse-time decay."),
}
_NUMBER = int | float | np.number | np.ndarray | jax.Array


def momentum_enabled(momentum: Any) -> bool:
    """tf.keras's rule, fixed at construction: a callable, an array, or a number > 0."""
    if callable(momentum) or isinstance(momentum, jax.Array):
        return True
    return isinstance(momentum, _NUMBER) and float(np.asarray(momentum)) > 0


def check(name: str, value: Any) -> None:
    """Raises a TypeError or ValueError naming ``name`` if ``value`` is not a valid setting."""
    if isinstance(value, LearningRateSchedule) and name != "learning_rate":
        raise TypeError(f"`{name}` cannot be a schedule (only `learning_rate`). Received: {value}.")
    if isinstance(value, LearningRateSchedule):
        return
    if callable(value) and not isinstance(value, jax.Array):
        try:  # tf.keras calls it as name() at every step: refuse one that needs arguments
            parameters = inspect.signature(value).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature: trust it
            return
        needs = [p.name for p in parameters if p.default is p.empty and p.kind <= 1]  # positional
        if needs:
            hint = (
                " For a schedule of the step count, use rj.keras.schedules."
                if name[0] == "l"
                else ""
            )
            raise TypeError(
                f"`{name}` as a callable must take no arguments (tf.keras calls it as {name}() at "
                f"every step). Received a callable that needs {needs}.{hint}"
            )
        return  # its values are not range-checked (as traced values)
    if name == "learning_rate" and (isinstance(value, bool) or not isinstance(value, _NUMBER)):
        raise TypeError(
            "`learning_rate` must be a number, a schedule from rj.keras.schedules (e.g. "
            "rj.keras.schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.9)) or a "
            f"zero-argument callable. Received: learning_rate={value!r} of type "
            f"{type(value).__name__}."
        )
    low, high, hint = _RANGES[name]
    check_range(name, value, low=low, high=high, hint=hint)


class Hyperparameters:
    """The current setting of each hyperparameter, and the arrays a step takes.

    Float32 arrays (tf.keras holds hyperparameters in float32 variables), except the names in
    ``wide``, which Keras keeps as Python floats: the widest float JAX allows, so that a float64
    variable sees them exactly.
    """

    def __init__(self, values: dict[str, Any], wide: tuple[str, ...] = ()) -> None:
        for name, value in values.items():
            check(name, value)
        self._settings, self._wide = dict(values), wide

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
        value = setting() if callable(setting) else setting
        return jnp.asarray(value, jax.dtypes.canonicalize_dtype(float) if wide else jnp.float32)

    def step_values(self) -> dict[str, jax.Array]:
        """The values of the next step (a schedule is evaluated inside the step)."""
        skip = "learning_rate" if self.schedule() else None
        return {n: self.value(n, n in self._wide) for n in self._settings if n != skip}

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
