"""Keras learning-rate schedules, Keras's formulas in float32, as data that serializes safely.

Only the classes in `SCHEDULES` are built from a config: nothing in a config is imported or run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_f = lambda value: jnp.asarray(value, jnp.float32)  # noqa: E731


class LearningRateSchedule:
    """Base class: a function of the step count (the number of updates so far) to a float32 rate."""

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The schedule's Keras config: its constructor arguments (tuples as lists)."""
        config = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


@dataclasses.dataclass(frozen=True)
class _StepDecay:
    """Two decays' fields and their exponent ``p = step / decay_steps`` (staircase: floored)."""

    initial_learning_rate: float
    decay_steps: float
    decay_rate: float
    staircase: bool = False
    name: str | None = None

    def _p(self, step: jax.typing.ArrayLike) -> jax.Array:
        p = _f(step) / _f(self.decay_steps)
        return jnp.floor(p) if self.staircase else p


class ExponentialDecay(_StepDecay, LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** p``, ``p = step / decay_steps`` (or its floor)."""

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        return _f(self.initial_learning_rate) * jnp.power(_f(self.decay_rate), self._p(step))


@dataclasses.dataclass(frozen=True)
class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ..., ``values[-1]`` after the last."""

    boundaries: tuple[float, ...]
    values: tuple[float, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        object.__setattr__(self, "values", tuple(self.values))
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                "`values` must have one more element than `boundaries`. Received: "
                f"{len(self.boundaries)} boundaries and {len(self.values)} values."
            )

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        index = jnp.sum(_f(step) > _f(self.boundaries))  # the boundaries strictly passed
        return _f(self.values)[index]


@dataclasses.dataclass(frozen=True)
class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, cycling if asked."""

    initial_learning_rate: float
    decay_steps: float
    end_learning_rate: float = 0.0001
    power: float = 1.0
    cycle: bool = False
    name: str | None = None

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        x, steps = _f(step), _f(self.decay_steps)
        if self.cycle:
            steps = steps * jnp.where(x == 0, _f(1.0), jnp.ceil(x / steps))
        else:
            x = jnp.minimum(x, steps)
        initial, end = _f(self.initial_learning_rate), _f(self.end_learning_rate)
        return (initial - end) * jnp.power(1 - x / steps, _f(self.power)) + end


class InverseTimeDecay(_StepDecay, LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * p)``, ``p`` as in `ExponentialDecay`."""

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        return _f(self.initial_learning_rate) / (1 + _f(self.decay_rate) * self._p(step))


@dataclasses.dataclass(frozen=True)
class CosineDecay(LearningRateSchedule):
    """Cosine decay to ``alpha * initial`` over ``decay_steps``, after an optional linear warmup."""

    initial_learning_rate: float
    decay_steps: float
    alpha: float = 0.0
    name: str | None = None
    warmup_target: float | None = None
    warmup_steps: float = 0

    def _decay(self, step: jax.Array, decay_from: jax.Array) -> jax.Array:
        fraction = step / _f(self.decay_steps)
        cosine = 0.5 * (1.0 + jnp.cos(_f(math.pi) * fraction))
        return decay_from * ((1 - _f(self.alpha)) * cosine + _f(self.alpha))

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        x, initial = _f(step), _f(self.initial_learning_rate)
        if self.warmup_target is None:
            return self._decay(jnp.minimum(x, _f(self.decay_steps)), initial)
        target, warmup = _f(self.warmup_target), _f(self.warmup_steps)
        x = jnp.minimum(x, _f(self.decay_steps) + warmup)
        warming = (target - initial) * (x / warmup) + initial
        return jnp.where(x < warmup, warming, self._decay(x - warmup, target))


@dataclasses.dataclass(frozen=True)
class CosineDecayRestarts(LearningRateSchedule):
    """SGDR: cosine cycles of growing length (``t_mul``) and shrinking height (``m_mul``)."""

    initial_learning_rate: float
    first_decay_steps: float
    t_mul: float = 2.0
    m_mul: float = 1.0
    alpha: float = 0.0
    name: str | None = None

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        fraction = _f(step) / _f(self.first_decay_steps)
        t_mul, m_mul, alpha = _f(self.t_mul), _f(self.m_mul), _f(self.alpha)
        if self.t_mul == 1.0:
            restart = jnp.floor(fraction)
            fraction = fraction - restart
        else:
            restart = jnp.floor(jnp.log(1.0 - fraction * (1.0 - t_mul)) / jnp.log(t_mul))
            done = (1.0 - jnp.power(t_mul, restart)) / (1.0 - t_mul)
            fraction = (fraction - done) / jnp.power(t_mul, restart)
        cosine = 0.5 * jnp.power(m_mul, restart) * (1.0 + jnp.cos(_f(math.pi) * fraction))
        return _f(self.initial_learning_rate) * ((1 - alpha) * cosine + alpha)


SCHEDULES = {cls.__name__: cls for cls in LearningRateSchedule.__subclasses__()}

_num = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
# What each field annotation of the schedules accepts from a config, and how to say it.
_FIELD_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "float": (_num, "a number"),
    "bool": (lambda v: isinstance(v, bool), "True or False"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string or None"),
    "float | None": (lambda v: v is None or _num(v), "a number or None"),
    "tuple[float, ...]": (lambda v: isinstance(v, list) and all(map(_num, v)), "a list of numbers"),
}


def _plain(value: Any) -> Any:
    """A config value as plain Python data (tf.keras configs may hold NumPy scalars)."""
    return value.item() if isinstance(value, np.generic) else value


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """The schedule as tf.keras serializes it: ``{"class_name": ..., "config": {...}}`` and more."""
    config = {"class_name": type(schedule).__name__, "config": schedule.get_config()}
    return {"module": "keras.optimizers.schedules", **config, "registered_name": None}


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """Builds a schedule from its serialized dict (tf.keras or Keras 3 format); data only.

    Raises:
      ValueError: for an unknown class name or key (listing what is supported), a missing key.
      TypeError: for a value that is not plain data of its field's type.
    """
    if not isinstance(config, dict) or not {"class_name", "config"} <= set(config):
        raise ValueError(
            f"A serialized schedule is a dict with 'class_name' and 'config'. Received: {config!r}."
        )
    name, arguments = config["class_name"], config["config"]
    if name not in SCHEDULES:
        raise ValueError(
            f"Unknown learning-rate schedule class_name={name!r}. Supported: {sorted(SCHEDULES)}."
        )
    fields = {field.name: field for field in dataclasses.fields(SCHEDULES[name])}  # type: ignore[arg-type]
    for where, keys, known in (
        ("a serialized schedule", config, {"class_name", "config", "module", "registered_name"}),
        (f"the config of {name}", arguments, fields),
    ):
        if unknown := set(keys) - set(known) if isinstance(keys, dict) else {"(not a dict)"}:
            raise ValueError(
                f"Unknown keys {sorted(unknown)} in {where}; supported: {sorted(known)}."
            )
    required = [k for k, f in fields.items() if f.default is dataclasses.MISSING]
    if missing := [k for k in required if k not in arguments]:
        raise ValueError(f"The config of {name} is missing {missing}; it needs them to be built.")
    values = {}  # plain data (NumPy scalars become numbers), checked against its field
    for key, value in arguments.items():
        value = [_plain(v) for v in value] if isinstance(value, list | tuple) else _plain(value)
        accepts, kind = _FIELD_KINDS[str(fields[key].type)]
        if not accepts(value):
            raise TypeError(
                f"`{key}` of {name} must be {kind}. "
                f"Received: {key}={value!r} of type {type(value).__name__}."
            )
        values[key] = value
    return SCHEDULES[name](**values)
