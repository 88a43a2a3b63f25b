"""rmsprop_jax.keras: tf.keras's RMSprop API (OptimizerV2) over rmsprop_jax's stages."""

from . import _schedules as schedules
from ._optimizer import RMSprop as RMSprop
from ._variable import Variable as Variable

__all__ = ["RMSprop", "Variable", "schedules"]
