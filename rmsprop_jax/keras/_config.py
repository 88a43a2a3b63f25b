"""tf.keras's hyperparameters, checked; its configs and weights, read as data: never called."""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_range, is_static
from ._schedules import LearningRateSchedule, _plain, deserialize, serialize
from ._variable import Variable

GENERATIONS = ("legacy", "keras3")
KWARGS = ("clipnorm", "clipvalue", "global_clipnorm", "lr", "decay")
# The modern optimizer's arguments without RMSprop numerics (tf-keras new, Keras 3), in Keras 3's
# config order: name -> (default, the values accepted or None for any).
MODERN: dict[str, tuple[Any, tuple[Any, ...] | None]] = {
    "use_ema": (False, (False,)),
    "ema_momentum": (0.99, None),
    "ema_overwrite_frequency": (None, None),  # tf-keras's default is 100, even without EMA
    "loss_scale_factor": (None, (None,)),
    "gradient_accumulation_steps": (None, (None,)),
    "jit_compile": (None, None),  # tf-keras's; not in Keras 3's config
    "is_legacy_optimizer": (False, (False,)),  # tf-keras's config only
}
# Each generation's get_config keys, in its order (the legacy one lists the clips that are set).
LEGACY_KEYS = ("clipnorm", "clipvalue", "global_clipnorm", "learning_rate", "decay")
KERAS3_KEYS = ("learning_rate", "weight_decay", "clipnorm", "global_clipnorm", "clipvalue")
KERAS3_KEYS += tuple(MODERN)[:5]
NUMERICS = ("rho", "momentum", "epsilon", "centered")
CONFIG_KEYS = ("name", *LEGACY_KEYS, *NUMERICS, "skip_nonfinite", "weight_decay", *MODERN)
# name -> check_range's arguments for a number (each is >= 0).
_RANGES: dict[str, dict[str, Any]] = {
    "rho": {"high": 1.0, "hint": "It is the decay of the mean square, e.g. 0.9."},
    "momentum": {"high": 1.0, "hint": "Use 0.0 to switch momentum off."},
    "epsilon": {"hint": "A small positive number such as 1e-7."},
    "decay": {"hint": "Use 0.0 for a learning rate without inverse-time decay."},
}


def checked(name: str, value: Any) -> Any:
    """``value``, checked as the setting ``name``."""
    if isinstance(value, LearningRateSchedule) and name != "learning_rate":
        raise TypeError(f"`{name}` cannot be a schedule (only `learning_rate`). Received: {value}.")
    if isinstance(value, LearningRateSchedule):
        return value
    if callable(value) and not isinstance(value, jax.Array):
        try:  # tf.keras calls it as name() at every step: refuse one that needs arguments
            params = inspect.signature(value).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature: trust it
            return value
        if needs := [p.name for p in params if p.default is p.empty and p.kind <= 1]:  # positional
            hint = " For a schedule of the step count, use rj.keras.schedules." * (name[0] == "l")
            raise TypeError(
                f"`{name}` as a callable must take no arguments (tf.keras calls it as {name}() at "
                f"every step). Received a callable that needs {needs}.{hint}"
            )
        return value  # its values are not range-checked (as traced values)
    if name == "learning_rate" and not (is_static(value) or isinstance(value, jax.Array)):
        raise TypeError(
            "`learning_rate` must be a number, a schedule from rj.keras.schedules (e.g. "
            "rj.keras.schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.9)) or a "
            f"zero-argument callable. Received: learning_rate={value!r} of type "
            f"{type(value).__name__}."
        )
    check_range(name, value, **_RANGES.get(name, {}))
    return value


class Hyperparameters:
    """The settings, and a step's arrays: float32 (tf.keras), the widest float for ``wide`` ones."""

    def __init__(self, values: dict[str, Any], wide: tuple[str, ...] = ()) -> None:
        self.settings, self._wide = {n: checked(n, v) for n, v in values.items()}, wide

    def set(self, name: str, value: Any) -> None:
        """Replaces a setting (validated first: a bad value changes nothing)."""
        self.settings[name] = checked(name, value)

    def value(self, name: str, wide: bool = False, xnp: Any = jnp) -> jax.Array | np.ndarray:
        """A step's value now (callables are called), float32 unless ``wide``, made by ``xnp``."""
        value = s() if callable(s := self.settings[name]) else s
        xnp = jnp if isinstance(value, jax.Array | Variable) else xnp  # JAX values stay put
        return xnp.asarray(value, jax.dtypes.canonicalize_dtype(float) if wide else jnp.float32)

    def step_values(self, xnp: Any = jnp) -> tuple[dict[str, Any], LearningRateSchedule | None]:
        """The next step's values (NumPy's for jit: no dispatch per number); the rate's schedule."""
        lr = self.settings["learning_rate"]
        schedule = lr if isinstance(lr, LearningRateSchedule) else None
        names = [n for n in self.settings if not (schedule and n == "learning_rate")]
        return {n: self.value(n, n in self._wide, xnp) for n in names}, schedule

    def config(self, generation: str, name: str, fixed: dict[str, Any]) -> dict[str, Any]:
        """The generation's tf.keras config, keys in its order (``fixed``: the other arguments)."""
        config: dict[str, Any] = {"name": name}
        config.update({"skip_nonfinite": True} if fixed["skip_nonfinite"] else {})
        for key in (LEGACY_KEYS if generation == "legacy" else KERAS3_KEYS) + NUMERICS:
            value = self.settings.get(key, fixed.get(key))
            if isinstance(value, LearningRateSchedule):
                config[key] = serialize(value)
            elif key in self.settings:
                config[key] = float(np.asarray(value())) if callable(value) else value
            elif generation != "legacy" or value is not None or key == "centered":
                config[key] = value
        return config


def checked_kwargs(generation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``generation`` takes, checked; the modern ones with defaults."""
    if generation not in GENERATIONS:
        raise ValueError(
            f"`generation` must be one of {list(GENERATIONS)}: 'legacy' is tf.keras's optimizer "
            "of TF <= 2.10 (tf_keras.optimizers.legacy), 'keras3' tf.keras.optimizers.RMSprop "
            f"of TF >= 2.11 and Keras 3. Received: generation={generation!r}."
        )
    modern = ("weight_decay", *MODERN)
    allowed = KWARGS if generation == "legacy" else (*KWARGS[:3], *modern)
    for key, value in kwargs.items():
        if key in modern and key not in allowed:
            raise TypeError(
                f"`{key}` is an argument of the modern tf.keras RMSprop (TF >= 2.11, Keras 3): "
                'build rj.keras.RMSprop(..., generation="keras3") to reproduce that optimizer.'
            )
        if key in KWARGS and key not in allowed:
            raise ValueError(
                f"`{key}` is an argument of the legacy tf.keras RMSprop only (TF <= 2.10). "
                f"Received: {key}={value!r}. Use a schedule (rj.keras.schedules.InverseTimeDecay) "
                'or generation="legacy".'
            )
        if key not in allowed:
            raise TypeError(
                f"Unexpected keyword argument passed to optimizer: {key}. "
                f"Allowed kwargs are {list(allowed)}."
            )
        only = MODERN.get(key, (None, None))[1]
        if only is not None and _plain(value) not in only:
            raise ValueError(
                f"{key}={value!r} asks for a feature rj.keras.RMSprop does not have; it is "
                f"accepted only as {only[0]!r}."
            )
    defaults = {} if generation == "legacy" else {k: d for k, (d, _) in MODERN.items()}
    return {**defaults, "weight_decay": None, **kwargs} if defaults else dict(kwargs)


def checked_weight(target: Variable, weight: Any) -> np.ndarray:
    """``weight`` as an array fit for ``target``, or an error naming what is wrong with it."""
    where, dtype = f"Optimizer weight {target.name!r}", target.dtype
    try:
        value = np.asarray(weight)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where} needs an array. Received: {weight!r}.") from error
    given = "the weight given for it has"
    if value.shape != target.shape:
        raise ValueError(f"{where} has shape {target.shape}; {given} shape {value.shape}.")
    got, integer = f"{given} dtype {value.dtype}", jnp.issubdtype(value.dtype, jnp.integer)
    if jnp.issubdtype(dtype, jnp.integer):
        if not integer:
            raise TypeError(f"{where} is an integer count ({dtype}); {got}. Pass integers.")
        top = np.iinfo(dtype).max
        if (bad := value[(value < 0) | (value > top)]).size:
            raise ValueError(f"{where} must be in [0, {top}]. Received: {bad.flat[0]}.")
        return value
    if not (integer or jnp.issubdtype(value.dtype, jnp.floating)):
        raise TypeError(f"{where} holds {dtype} numbers; {got}. Pass a real floating array.")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to Inf is reported here
        if bad := int(np.sum(~np.isfinite(value.astype(dtype)))):
            raise ValueError(
                f"{where} must be finite in {dtype}; {given} {bad} NaN or Inf values (after "
                f"rounding to {dtype}). Restore an earlier checkpoint."
            )
    return value


def arguments_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The `RMSprop` arguments of a config; a key of the modern optimizer means "keras3"."""
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict. Received: {type(config).__name__}.")
    legacy = {"is_legacy_optimizer": True}
    modern = any(k in ("weight_decay", *MODERN) and {k: config[k]} != legacy for k in config)
    arguments: dict[str, Any] = {"generation": "keras3" if modern else "legacy"}
    for key, value in config.items():
        if key not in CONFIG_KEYS:
            raise ValueError(
                f"Unknown key {key!r} in the RMSprop config. Supported keys: {sorted(CONFIG_KEYS)}."
            )
        value, lr = _plain(value), key == "learning_rate"  # data: never called or imported
        if lr and isinstance(value, dict):
            value = deserialize(value)
        elif not (value is None or isinstance(value, bool | int | float | str)):
            allowed = "a number or a serialized schedule dict" if lr else "a number"
            raise TypeError(
                f"Config value `{key}` must be {allowed} (a config is data). "
                f"Received: {key}={value!r} of type {type(value).__name__}."
            )
        if (key != "is_legacy_optimizer" or modern) and (value is not None or key in NUMERICS):
            arguments[key] = value
    return arguments


def checked_weights(name: str, targets: list[Any], weights: list[Any], lr: Any) -> list[Any]:
    """Checked ``(target, value)`` pairs; ``weights`` may lack the count, or ``lr`` (tf-keras)."""
    if len(weights) == len(targets) - 1:
        del targets[next((i for i, t in enumerate(targets) if t is lr), 0)]
    if len(weights) != len(targets):
        raise ValueError(
            f"You called `set_weights(weights)` on optimizer {name} with a weight list of length "
            f"{len(weights)}, but the optimizer was expecting {len(targets)} weights (or "
            f"{len(targets) - 1} without the iteration count). Call `build(var_list)` or take a "
            "step first so that the slots exist."
        )
    return [(t, checked_weight(t, w)) for t, w in zip(targets, weights, strict=True)]
