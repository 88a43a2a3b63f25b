"""rmsprop_jax: RMSprop for JAX as Optax-style stages, with the exact numbers of five frameworks."""

from . import keras as keras
from ._alias import rmsprop as rmsprop
from ._clipping import clip_by_global_norm as clip_by_global_norm
from ._clipping import clip_by_norm as clip_by_norm
from ._clipping import clip_by_value as clip_by_value
from ._conventions import CONVENTIONS as CONVENTIONS
from ._conventions import Convention as Convention
from ._conventions import RmsNumerics as RmsNumerics
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
from ._tree import apply_updates as apply_updates
from ._weight_decay import DecoupledWeightDecayState as DecoupledWeightDecayState
from ._weight_decay import add_decoupled_weight_decay as add_decoupled_weight_decay
from ._weight_decay import add_l2_gradient as add_l2_gradient

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
    "TraceMomentumState",
    "add_decoupled_weight_decay",
    "add_l2_gradient",
    "all_finite",
    "apply_updates",
    "check_indices",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "inject_hyperparams",
    "keras",
    "materialize",
    "negate_updates",
    "rmsprop",
    "scale_by_centered_rms",
    "scale_by_learning_rate",
    "scale_by_rms",
    "skip_nonfinite",
    "trace_momentum",
    "value_and_sparse_grad",
]
