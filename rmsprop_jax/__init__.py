"""rmsprop_jax: RMSprop for JAX as Optax-style stages, with the exact numbers of five frameworks.

The public names load on first use (PEP 562), so that ``rmsprop-jax --help`` answers without
importing JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import keras
    from ._alias import rmsprop
    from ._clipping import clip_by_global_norm, clip_by_norm, clip_by_value
    from ._conventions import CONVENTIONS, Convention, RmsNumerics
    from ._diagnostics import TableCopies, table_copies
    from ._embedding import value_and_sparse_grad
    from ._inject import inject_hyperparams
    from ._learning_rate import ScaleByLearningRateState, negate_updates, scale_by_learning_rate
    from ._momentum import TraceMomentumState, trace_momentum
    from ._scaling import (
        ScaleByCenteredRmsState,
        ScaleByRmsState,
        scale_by_centered_rms,
        scale_by_rms,
    )
    from ._skip_nonfinite import SkipNonfiniteState, all_finite, skip_nonfinite
    from ._sparse_rows import SparseRows, check_indices
    from ._sparse_tables import SparseTablesState, materialize
    from ._torch_state import from_torch_state_dict, to_torch_state_dict
    from ._tree import apply_updates
    from ._weight_decay import (
        DecoupledWeightDecayState,
        add_decoupled_weight_decay,
        add_l2_gradient,
    )

__version__ = "0.1.0"

# The modules imported above, searched in order on the first use of a public name (each name is
# the same object wherever it is imported).
_MODULES = "_alias _clipping _conventions _diagnostics _embedding _inject _learning_rate _momentum"
_MODULES += " _scaling _skip_nonfinite _sparse_rows _sparse_tables _torch_state _tree _weight_decay"


def __getattr__(name: str) -> Any:
    if name == "keras":
        return importlib.import_module(".keras", __name__)
    for module in _MODULES.split() if name in __all__ else ():
        value = getattr(importlib.import_module(f".{module}", __name__), name, None)
        if value is not None:
            globals()[name] = value  # later lookups skip __getattr__
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


# Literal lists, one line each, so that pyright reads them.
__all__ = ["CONVENTIONS", "Convention", "RmsNumerics", "TableCopies", "keras", "table_copies"]
__all__ += ["ScaleByLearningRateState", "negate_updates", "rmsprop", "scale_by_learning_rate"]
__all__ += ["ScaleByCenteredRmsState", "ScaleByRmsState", "scale_by_centered_rms", "scale_by_rms"]
__all__ += ["SkipNonfiniteState", "SparseRows", "SparseTablesState", "TraceMomentumState"]
__all__ += ["all_finite", "check_indices", "materialize", "skip_nonfinite", "trace_momentum"]
__all__ += ["apply_updates", "clip_by_global_norm", "clip_by_norm", "clip_by_value"]
__all__ += ["from_torch_state_dict", "inject_hyperparams", "to_torch_state_dict"]
__all__ += ["DecoupledWeightDecayState", "add_decoupled_weight_decay", "add_l2_gradient"]
__all__ += ["value_and_sparse_grad"]
