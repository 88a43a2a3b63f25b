"""rmsprop_jax: RMSprop for JAX as Optax-style stages, with the exact numbers of five frameworks.

The public names load on first use (PEP 562), so that ``rmsprop-jax --help`` answers without
importing JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import keras as keras
    from ._alias import rmsprop as rmsprop
    from ._clipping import clip_by_global_norm as clip_by_global_norm
    from ._clipping import clip_by_norm as clip_by_norm
    from ._clipping import clip_by_value as clip_by_value
    from ._conventions import CONVENTIONS as CONVENTIONS
    from ._conventions import Convention as Convention
    from ._conventions import RmsNumerics as RmsNumerics
    from ._diagnostics import TableCopies as TableCopies
    from ._diagnostics import table_copies as table_copies
    from ._embedding import value_and_sparse_grad as value_and_sparse_grad
    from ._inject import inject_hyperparams as inject_hyperparams
    from ._learning_rate import ScaleByLearningRateState as ScaleByLearningRateState
    from ._learning_rate import negate_updates as negate_updates
    from ._learning_rate import scale_by_learning_rate as scale_by_learning_rate
    from ._momentum import TraceMomentumState as TraceMomentumState
    from ._momentum import trace_momentum as trace_momentum
    from ._scaling import ScaleByCenteredRmsState as ScaleByCenteredRmsState
    from ._scaling import ScaleByRmsState as ScaleByRmsState
    from ._scaling import scale_by_centered_rms as scale_by_centered_rms
    from ._scaling import scale_by_rms as scale_by_rms
    from ._skip_nonfinite import SkipNonfiniteState as SkipNonfiniteState
    from ._skip_nonfinite import all_finite as all_finite
    from ._skip_nonfinite import skip_nonfinite as skip_nonfinite
    from ._sparse_rows import SparseRows as SparseRows
    from ._sparse_rows import check_indices as check_indices
    from ._sparse_tables import SparseTablesState as SparseTablesState
    from ._sparse_tables import materialize as materialize
    from ._torch_state import from_torch_state_dict as from_torch_state_dict
    from ._torch_state import to_torch_state_dict as to_torch_state_dict
    from ._tree import apply_updates as apply_updates
    from ._weight_decay import DecoupledWeightDecayState as DecoupledWeightDecayState
    from ._weight_decay import add_decoupled_weight_decay as add_decoupled_weight_decay
    from ._weight_decay import add_l2_gradient as add_l2_gradient

# public name -> the module that defines it
_LAZY = {
    "rmsprop": "._alias",
    "clip_by_global_norm": "._clipping",
    "clip_by_norm": "._clipping",
    "clip_by_value": "._clipping",
    "CONVENTIONS": "._conventions",
    "Convention": "._conventions",
    "RmsNumerics": "._conventions",
    "TableCopies": "._diagnostics",
    "table_copies": "._diagnostics",
    "value_and_sparse_grad": "._embedding",
    "inject_hyperparams": "._inject",
    "ScaleByLearningRateState": "._learning_rate",
    "scale_by_learning_rate": "._learning_rate",
    "TraceMomentumState": "._momentum",
    "trace_momentum": "._momentum",
    "ScaleByCenteredRmsState": "._scaling",
    "ScaleByRmsState": "._scaling",
    "scale_by_centered_rms": "._scaling",
    "scale_by_rms": "._scaling",
    "negate_updates": "._learning_rate",
    "SkipNonfiniteState": "._skip_nonfinite",
    "all_finite": "._skip_nonfinite",
    "skip_nonfinite": "._skip_nonfinite",
    "SparseRows": "._sparse_rows",
    "check_indices": "._sparse_rows",
    "SparseTablesState": "._sparse_tables",
    "materialize": "._sparse_tables",
    "from_torch_state_dict": "._torch_state",
    "to_torch_state_dict": "._torch_state",
    "apply_updates": "._tree",
    "DecoupledWeightDecayState": "._weight_decay",
    "add_decoupled_weight_decay": "._weight_decay",
    "add_l2_gradient": "._weight_decay",
}


def __getattr__(name: str) -> Any:
    if name == "keras":
        return importlib.import_module(".keras", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


__version__ = "0.1.0"

__all__ = [
    "CONVENTIONS",
    "Convention",
    "DecoupledWeightDecayState",
    "RmsNumerics",
    "ScaleByCenteredRmsState",
    "ScaleByLearningRateState",
    "ScaleByRmsState",
    "SkipNonfiniteState",
    "SparseRows",
    "SparseTablesState",
    "TableCopies",
    "TraceMomentumState",
    "add_decoupled_weight_decay",
    "add_l2_gradient",
    "all_finite",
    "apply_updates",
    "check_indices",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "from_torch_state_dict",
    "inject_hyperparams",
    "keras",
    "materialize",
    "negate_updates",
    "rmsprop",
    "scale_by_centered_rms",
    "scale_by_learning_rate",
    "scale_by_rms",
    "skip_nonfinite",
    "table_copies",
    "to_torch_state_dict",
    "trace_momentum",
    "value_and_sparse_grad",
]
