"""Conventions: whose RMSprop numerics to reproduce, as data that `rmsprop_jax.rmsprop` reads."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from ._clipping import ClipFormula
from ._numerics import ComplexSquare, RhoComplement, RmsNumerics
from ._validation import is_static

ConventionName = Literal["keras", "keras3", "tf1", "torch", "optax"]
SparseModeName = Literal["keras", "lazy", "dense"]


@dataclasses.dataclass(frozen=True)
class Convention:
    """One framework's RMSprop: the few facts that change its numbers (see docs/conventions.md)."""

    name: str
    reference: str  # the framework API reproduced
    without_momentum: RmsNumerics  # the path taken when momentum is a static 0
    with_momentum: RmsNumerics  # the path taken otherwise
    initial_ms: float  # the mean square's starting value
    lr_before_momentum: bool  # lr * step enters the buffer (TF, Keras, Optax) or scales it (torch)
    # var -= lr*wd*var, or g += wd*var; None: the framework has no weight decay (the user chooses)
    weight_decay: Literal["decoupled", "coupled"] | None
    clipping: ClipFormula  # the formula of clipnorm and global_clipnorm
    rho_complement: RhoComplement  # "exact": fl(1 - rho); "rounded": fl(1 - fl(rho))
    complex_square: ComplexSquare | None  # complex params: |g|^2, g*g, split parts, or refused
    sparse_mode: SparseModeName  # what SparseRows do to untouched rows unless sparse_mode= says
    float32_hyperparameters: tuple[str, ...]  # held as float32 whatever the param dtype

    def round_hyperparameter(self, name: str, value: Any) -> Any:
        """``value`` as the framework holds it: a static float32 slot is rounded to float32."""
        rounded = name in self.float32_hyperparameters and is_static(value)
        return np.float32(value) if rounded else value

    def numerics(self, has_momentum: bool) -> RmsNumerics:
        """Every per-element rule of the path the framework takes with or without momentum."""
        path = self.with_momentum if has_momentum else self.without_momentum
        return dataclasses.replace(
            path, rho_complement=self.rho_complement, complex_square=self.complex_square or "abs"
        )


_TF_KERNEL = RmsNumerics(eps_in_sqrt=True, ms_form="interpolate", mg_form="interpolate")
_EMA_EPS_INSIDE = RmsNumerics(eps_in_sqrt=True, ms_form="ema", mg_form="ema")
_TORCH = RmsNumerics(eps_in_sqrt=False, ms_form="addcmul", mg_form="lerp")

# fmt: off
CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention(
        name="keras", reference="tf.keras.optimizers.RMSprop (TF 2.x OptimizerV2, tf_keras legacy)",
        without_momentum=RmsNumerics(eps_in_sqrt=False, ms_form="ema", mg_form="ema"),
        with_momentum=_TF_KERNEL, initial_ms=0.0, lr_before_momentum=True,
        weight_decay=None, clipping="tf", rho_complement="rounded", complex_square="square",
        sparse_mode="keras", float32_hyperparameters=("learning_rate", "rho", "momentum")),
    Convention(
        name="keras3", reference="keras.optimizers.RMSprop (Keras 3)",
        without_momentum=_EMA_EPS_INSIDE, with_momentum=_EMA_EPS_INSIDE, initial_ms=0.0,
        lr_before_momentum=True, weight_decay="decoupled", clipping="tf", rho_complement="exact",
        complex_square="square", sparse_mode="dense", float32_hyperparameters=("learning_rate",)),
    Convention(
        name="tf1", reference="tf.compat.v1.train.RMSPropOptimizer",
        without_momentum=_TF_KERNEL, with_momentum=_TF_KERNEL, initial_ms=1.0,
        lr_before_momentum=True, weight_decay=None, clipping="tf", rho_complement="rounded",
        complex_square="square", sparse_mode="lazy",
        float32_hyperparameters=("learning_rate", "rho", "momentum", "epsilon")),
    Convention(
        name="torch", reference="torch.optim.RMSprop",
        without_momentum=_TORCH, with_momentum=_TORCH, initial_ms=0.0,
        lr_before_momentum=False, weight_decay="coupled", clipping="torch", rho_complement="exact",
        complex_square="split", sparse_mode="dense", float32_hyperparameters=()),
    Convention(
        name="optax", reference="optax.rmsprop",
        without_momentum=_EMA_EPS_INSIDE, with_momentum=_EMA_EPS_INSIDE, initial_ms=0.0,
        lr_before_momentum=True, weight_decay=None, clipping="optax", rho_complement="exact",
        complex_square="abs", sparse_mode="dense", float32_hyperparameters=()),
)}
# fmt: on
