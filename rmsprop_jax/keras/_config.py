"""tf.keras and Keras 3 configs and weights, read as data: checked, never called or imported."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ._schedules import deserialize
from ._variable import Variable

__all__ = ["KWARGS", "arguments_from_config", "checked_weight"]

KWARGS = ("clipnorm", "clipvalue", "global_clipnorm", "lr", "decay")
# Keys of real tf.keras / Keras 3 configs that carry no RMSprop numerics: accepted with any value
# (None) or only with the values that switch their feature off.
INERT_KEYS: dict[str, tuple[Any, ...] | None] = {
    "is_legacy_optimizer": None,
    "jit_compile": None,
    "ema_momentum": None,
    "use_ema": (False,),
    "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None,),
    "weight_decay": (None,),
}
CONFIG_KEYS = (
    "name",
    "learning_rate",
    "decay",
    "rho",
    "momentum",
    "epsilon",
    "centered",
    *KWARGS[:3],
    "skip_nonfinite",
)


def _number(name: str, value: Any) -> Any:
    """A config number as a plain Python value (tf.keras configs may hold NumPy scalars)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def checked_weight(target: Variable, weight: Any) -> np.ndarray:
    """``weight`` as an array fit for ``target``, or an error naming what is wrong with it."""
    try:
        value = np.asarray(weight)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"Optimizer weight {target.name!r} needs an array. Received: {weight!r}."
        ) from error
    if value.shape != target.shape:
        raise ValueError(
            f"Optimizer weight {target.name!r} has shape {target.shape}; the weight given "
            f"for it has shape {value.shape}."
        )
    integer = jnp.issubdtype(value.dtype, jnp.integer) and value.dtype != np.bool_
    if jnp.issubdtype(target.dtype, jnp.integer):
        if not integer:
            raise TypeError(
                f"Optimizer weight {target.name!r} is an integer count ({target.dtype}); the "
                f"weight given for it has dtype {value.dtype}. Pass integers, e.g. the int64 "
                "that get_weights() returns."
            )
        info = np.iinfo(target.dtype)
        if value.size and (value.min() < 0 or value.max() > info.max):
            raise ValueError(
                f"Optimizer weight {target.name!r} must be in [0, {info.max}]. "
                f"Received: {value.min() if value.min() < 0 else value.max()}."
            )
        return value
    if not (integer or jnp.issubdtype(value.dtype, jnp.floating)):
        raise TypeError(
            f"Optimizer weight {target.name!r} holds {target.dtype} numbers; the weight given "
            f"for it has dtype {value.dtype}. Pass a real floating (or integer) array."
        )
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to Inf is reported below
        cast = value.astype(target.dtype)
    if not np.all(np.isfinite(cast)):
        raise ValueError(
            f"Optimizer weight {target.name!r} must be finite in {target.dtype}; the weight "
            f"given for it has {int(np.sum(~np.isfinite(cast)))} NaN or Inf values (after "
            f"rounding to {target.dtype}). Restore from a checkpoint taken before the run diverged."
        )
    return value


def _config_value(key: str, value: Any) -> Any:
    """A config value checked to be plain data (a config is never called or imported)."""
    value = _number(key, value)
    if key == "learning_rate" and isinstance(value, dict):
        return deserialize(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    allowed = "a number or a serialized schedule dict" if key == "learning_rate" else "a number"
    raise TypeError(
        f"Config value `{key}` must be {allowed} (a config is data). "
        f"Received: {key}={value!r} of type {type(value).__name__}."
    )


def arguments_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The `RMSprop` arguments a tf.keras or Keras 3 ``get_config()`` describes."""
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict. Received: {type(config).__name__}.")
    arguments: dict[str, Any] = {}
    for key, value in config.items():
        if key in INERT_KEYS:
            value = _number(key, value)
            allowed = INERT_KEYS[key]
            if allowed is not None and value not in allowed:
                raise ValueError(
                    f"Config key {key}={value!r} asks for a feature rj.keras.RMSprop does "
                    f"not have; it is accepted only as {allowed[0]!r}."
                )
            continue
        if key not in CONFIG_KEYS:
            raise ValueError(
                f"Unknown key {key!r} in the RMSprop config. Supported keys: "
                f"{sorted(CONFIG_KEYS)} (and, when off, {sorted(INERT_KEYS)})."
            )
        value = _config_value(key, value)
        if value is not None or key not in ("clipnorm", "clipvalue", "global_clipnorm"):
            arguments[key] = value
    return arguments
