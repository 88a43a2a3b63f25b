"""Conventions: whose RMSprop numerics to reproduce, written down as data.

A convention says where epsilon sits, in which floating-point order each accumulator moves, what
the mean square starts at, whether the learning rate enters before the momentum buffer or after
it, and how ``weight_decay`` couples. `rmsprop_jax.rmsprop` reads these records to pick and order
its stages; no stage knows about frameworks.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ._numerics import MomentForm
from ._validation import check_choice

__all__ = ["CONVENTIONS", "Convention", "ConventionName", "RmsNumerics", "get_convention"]

ConventionName = Literal["keras", "keras3", "tf1", "torch", "optax"]


@dataclasses.dataclass(frozen=True)
class RmsNumerics:
    """Where epsilon sits and how the accumulators round, for one code path of a framework."""

    eps_in_sqrt: bool  # sqrt(v + eps) if True, sqrt(v) + eps if False
    ms_form: MomentForm  # the mean-square update's order of operations
    mg_form: MomentForm  # the mean-gradient update's order of operations (centered only)


@dataclasses.dataclass(frozen=True)
class Convention:
    """One framework's RMSprop, as the few facts that change its numbers."""

    name: str
    reference: str  # the framework API reproduced
    without_momentum: RmsNumerics  # the path taken when momentum is a static 0
    with_momentum: RmsNumerics  # the path taken otherwise
    initial_ms: float  # the mean square's starting value
    lr_before_momentum: bool  # lr * step enters the buffer (TF, Keras, Optax) or scales it (torch)
    weight_decay: Literal["decoupled", "coupled"]  # var -= lr*wd*var, or g += wd*var

    def numerics(self, has_momentum: bool) -> RmsNumerics:
        """The numerics of the path the framework takes with or without momentum."""
        return self.with_momentum if has_momentum else self.without_momentum


_TF_KERNEL = RmsNumerics(eps_in_sqrt=True, ms_form="interpolate", mg_form="interpolate")
_EMA_EPS_INSIDE = RmsNumerics(eps_in_sqrt=True, ms_form="ema", mg_form="ema")

CONVENTIONS: dict[str, Convention] = {
    convention.name: convention
    for convention in (
        Convention(
            name="keras",
            reference="tf.keras.optimizers.RMSprop (TF 2.x OptimizerV2, tf_keras legacy)",
            without_momentum=RmsNumerics(eps_in_sqrt=False, ms_form="ema", mg_form="ema"),
            with_momentum=_TF_KERNEL,
            initial_ms=0.0,
            lr_before_momentum=True,
            weight_decay="decoupled",
        ),
        Convention(
            name="keras3",
            reference="keras.optimizers.RMSprop (Keras 3)",
            without_momentum=_EMA_EPS_INSIDE,
            with_momentum=_EMA_EPS_INSIDE,
            initial_ms=0.0,
            lr_before_momentum=True,
            weight_decay="decoupled",
        ),
        Convention(
            name="tf1",
            reference="tf.compat.v1.train.RMSPropOptimizer",
            without_momentum=_TF_KERNEL,
            with_momentum=_TF_KERNEL,
            initial_ms=1.0,
            lr_before_momentum=True,
            weight_decay="decoupled",
        ),
        Convention(
            name="torch",
            reference="torch.optim.RMSprop",
            without_momentum=RmsNumerics(eps_in_sqrt=False, ms_form="ema", mg_form="lerp"),
            with_momentum=RmsNumerics(eps_in_sqrt=False, ms_form="ema", mg_form="lerp"),
            initial_ms=0.0,
            lr_before_momentum=False,
            weight_decay="coupled",
        ),
        Convention(
            name="optax",
            reference="optax.rmsprop",
            without_momentum=_EMA_EPS_INSIDE,
            with_momentum=_EMA_EPS_INSIDE,
            initial_ms=0.0,
            lr_before_momentum=True,
            weight_decay="decoupled",
        ),
    )
}


def get_convention(name: str) -> Convention:
    """Looks a convention up by name; an unknown name is a ValueError listing the known ones."""
    check_choice("convention", name, list(CONVENTIONS))
    return CONVENTIONS[name]
