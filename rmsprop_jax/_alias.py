"""`rmsprop`: the stages chained and parameterised the way a chosen framework does it."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._clipping import clip_by_global_norm, clip_by_norm, clip_by_value
from ._conventions import CONVENTIONS, Convention, ConventionName, SparseModeName
from ._learning_rate import (
    LearningRate,
    check_learning_rate,
    negate_updates,
    scale_by_learning_rate,
)
from ._momentum import trace_momentum
from ._rows import sum_duplicate_rows
from ._scaling import scale_by_centered_rms, scale_by_rms
from ._sparse_rows import is_sparse
from ._sparse_tables import Hyperparameters, TableRule
from ._sparse_tables import sparse_tables as sparse_tables_driver
from ._validation import (
    check_bool,
    check_choice,
    check_float_dtype,
    check_range,
    static_value,
    suggest_keywords,
)
from ._weight_decay import add_decoupled_weight_decay, add_l2_gradient, masked_decay

# Other frameworks' spellings of this function's arguments, and what to write instead.
_RENAMES = {
    "alpha": "PyTorch's `alpha` is `rho` here: write rho=... (the decay of the mean square).",
    "eps": "PyTorch's and Optax's `eps` is `epsilon` here: write epsilon=...",
    "lr": "Write learning_rate=... (`lr` is tf.keras's deprecated name).",
    "beta": "The decay of the mean square is `rho` here: write rho=...",
    "initial_scale": (
        "rmsprop has no `initial_scale`: convention='tf1' starts the mean square at 1, the "
        "others at 0; for any other start use rj.scale_by_rms(initial_scale=...)."
    ),
    "eps_in_sqrt": (
        "Epsilon's place follows the convention: convention='optax' (inside the root, Optax's "
        "default) or 'torch' (outside); see docs/conventions.md."
    ),
    "weight_decouple": "Write decoupled_weight_decay=True (or False for an L2 gradient term).",
    "decoupled_decay": "timm's `decoupled_decay` is decoupled_weight_decay=... here.",
    "mask": "Write weight_decay_mask=... (optax.adamw's `mask`: which params decay).",
    "decay": (
        "`decay` means two things: optax.rmsprop's `decay` is the mean square's decay, `rho` "
        "here (write rho=...); tf.keras's `decay` is the inverse-time learning-rate decay "
        "lr / (1 + decay * t) (write inverse_time_decay=...)."
    ),
}

_NO_RULE = (
    "convention={convention!r} ({reference}) has no weight decay of its own, so say how "
    "weight_decay={weight_decay!r} couples: decoupled_weight_decay=False adds weight_decay * w "
    "to the gradient (an L2 term, as PyTorch and timm's RMSpropTF by default), True shrinks "
    "the weights by lr * weight_decay * w outside the adaptive step (AdamW, Keras 3)."
)


def _is_off(value: jax.typing.ArrayLike | None) -> bool:
    """A stage is left out when its coefficient is None or a static zero."""
    return value is None or static_value(value) == 0.0


def _check_dtypes(
    tx: optax.GradientTransformation, conv: Convention
) -> optax.GradientTransformationExtraArgs:
    """``tx`` refusing integer params or gradients, and complex ones ``conv`` cannot hold."""
    supported = [name for name, c in CONVENTIONS.items() if c.complex_square is not None]
    complex_rule = (
        f"convention={conv.name!r} ({conv.reference}) has no complex RMSprop, so complex "
        f"params are refused rather than losing their imaginary part. The conventions that "
        f"support complex params are {', '.join(map(repr, supported))}."
    )

    def check(tree: Any, what: str) -> None:
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_sparse)[0]:
            if leaf is None or not hasattr(leaf, "dtype"):
                continue
            dtype = jnp.dtype(leaf.dtype)
            where = (
                f"rmsprop(convention={conv.name!r}): the {what} at "
                f"{jax.tree_util.keystr(path) or '(the root)'}"
            )
            if not jnp.issubdtype(dtype, jnp.inexact):
                raise TypeError(
                    f"{where} has dtype {dtype}; RMSprop needs floating params and gradients "
                    "(float16, bfloat16, float32, float64). Cast it, e.g. jax.tree.map(lambda p: "
                    "p.astype(jnp.float32), params), and differentiate with respect to floating "
                    "params."
                )
            if conv.complex_square is None and jnp.issubdtype(dtype, jnp.complexfloating):
                raise TypeError(f"{where} has dtype {dtype}. {complex_rule}")

    def init_fn(params: optax.Params) -> optax.OptState:
        check(params, "param")
        return tx.init(params)

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: Any = None, **extra_args: Any
    ) -> tuple[optax.Updates, optax.OptState]:
        check(updates, "gradient")
        check(params, "param")
        return tx.update(updates, state, params, **extra_args)  # type: ignore[call-arg]

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]


@suggest_keywords(_RENAMES)
def rmsprop(
    learning_rate: LearningRate = 1e-3,
    rho: jax.typing.ArrayLike = 0.9,
    momentum: jax.typing.ArrayLike | None = None,
    epsilon: jax.typing.ArrayLike = 1e-7,
    centered: bool = False,
    *,
    nesterov: bool = False,
    clipnorm: jax.typing.ArrayLike | None = None,
    clipvalue: jax.typing.ArrayLike | None = None,
    global_clipnorm: jax.typing.ArrayLike | None = None,
    inverse_time_decay: jax.typing.ArrayLike = 0.0,
    weight_decay: jax.typing.ArrayLike | None = None,
    decoupled_weight_decay: bool | None = None,
    weight_decay_mask: Any = None,
    maximize: bool = False,
    state_dtype: jnp.dtype | None = None,
    convention: ConventionName = "keras",
    sparse_mode: SparseModeName | None = None,
    sparse_tables: Any = None,
) -> optax.GradientTransformation:
    r"""RMSprop with the exact numerics of Keras (default), Keras 3, TF1, PyTorch or Optax.

    With :math:`\eta_t = \operatorname{lr}(t) / (1 + d\, t)` (:math:`d` the
    ``inverse_time_decay``, :math:`t` the updates so far):

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \quad
      mg_t = \rho\, mg_{t-1} + (1 - \rho)\, g_t, \quad
      v_t = ms_t - mg_t^2 \;(\text{centered}) \text{ else } ms_t, \quad
      w \mathrel{-}= \eta_t\, g_t / \operatorname{den}(v_t),

    with :math:`\operatorname{den}(v) = \sqrt{v} + \epsilon` or :math:`\sqrt{v + \epsilon}`, and
    with momentum :math:`\mu` a buffer :math:`m = \mu m + \eta_t g_t/\operatorname{den}`
    (PyTorch: :math:`m = \mu m + g_t/\operatorname{den}`, :math:`w \mathrel{-}= \eta_t m`).
    Gradients are clipped first (value, tensor norm, global norm: Keras's order).

    Warning:
      Where epsilon sits, how ``1 - rho`` rounds, where ``ms`` starts, the clipping formula,
      weight decay, complex params and sparse gradients follow the convention (see
      docs/conventions.md): pick the convention of the code you port. Other frameworks'
      spellings (``alpha``, ``eps``, ``lr``, ``decay``) are refused with the name to write.

    Args:
      learning_rate: a number >= 0 or an optax schedule of the step count.
      rho: decay of the running means, in [0, 1].
      momentum: in [0, 1]; None or a static 0 keeps no buffer.
      epsilon: added to the denominator, >= 0.
      centered: divide by the root of the variance ``ms - mg**2`` instead of ``ms``.
      nesterov: Nesterov momentum (needs momentum > 0).
      clipnorm: clip each gradient tensor to this L2 norm (>= 0), or None.
      clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``, or None.
      global_clipnorm: clip the whole gradient to this global norm, or None (not with
        ``clipnorm``).
      inverse_time_decay: tf.keras's ``decay`` :math:`d`, >= 0.
      weight_decay: decay coefficient :math:`\lambda` (>= 0) or None.
      decoupled_weight_decay: True: :math:`w \mathrel{-}= \eta_t \lambda w` (Keras 3, AdamW);
        False: :math:`g \mathrel{+}= \lambda w` (PyTorch); None: the convention's rule.
      weight_decay_mask: which params decay (``optax.adamw``'s ``mask``); None: all.
      maximize: climb the objective instead of descending it (PyTorch's ``maximize``).
      state_dtype: dtype of every accumulator; None keeps each param's dtype.
      convention: ``"keras"``, ``"keras3"``, ``"tf1"``, ``"torch"`` or ``"optax"``.
      sparse_mode: ``"keras"``, ``"lazy"`` or ``"dense"``; None: the convention's (see
        docs/sparse.md).
      sparse_tables: the tables whose untouched rows defer their work: bools on (a prefix of)
        the params' tree, or a function of the params returning them (see docs/sparse.md).

    Returns:
      An ``optax.GradientTransformation``; read its state by name, e.g.
      ``optax.tree.get(state, "ms")``.

    Raises:
      ValueError: for a hyperparameter out of range or an unknown choice, ``weight_decay``
        without a coupling, ``clipnorm`` with ``global_clipnorm``, or a combination the sparse
        tables cannot step.
      TypeError: for an argument of the wrong type or an unknown keyword, and (at ``init`` or
        trace time) for integer params or gradients, or complex ones the convention refuses.

    Example:
      tf.keras's documented example, one step on ``loss = var**2 / 2`` from ``var = 10``:

      >>> import jax, jax.numpy as jnp, rmsprop_jax as rj
      >>> tx = rj.rmsprop(learning_rate=0.1)
      >>> var = jnp.array(10.0)
      >>> updates, state = tx.update(jax.grad(lambda v: v**2 / 2)(var), tx.init(var), var)
      >>> rj.apply_updates(var, updates)
      Array(9.683772, dtype=float32)

    References:
      Hinton, Srivastava, Swersky, *Neural Networks for Machine Learning*, lecture 6e (2012);
      Graves, *Generating Sequences With Recurrent Neural Networks*, arXiv:1308.0850 (centered).
    """
    check_choice("convention", convention, list(CONVENTIONS))
    conv = CONVENTIONS[convention]
    for name, flag in (("centered", centered), ("nesterov", nesterov), ("maximize", maximize)):
        check_bool(name, flag)
    if momentum is not None:
        check_range(
            "momentum", momentum, low=0.0, high=1.0, hint="Use None or 0.0 to switch momentum off."
        )
    check_learning_rate(learning_rate, inverse_time_decay, decay_name="inverse_time_decay")
    clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
    for name, value in {**clips, "weight_decay": weight_decay}.items():
        if value is not None:
            check_range(name, value, low=0.0, hint=f"Use {name}=None to switch it off.")
    if clipnorm is not None and global_clipnorm is not None:
        raise ValueError(
            "`clipnorm` and `global_clipnorm` cannot both be set (as in Keras). "
            f"Received: clipnorm={clipnorm!r}, global_clipnorm={global_clipnorm!r}. "
            "Keep one of them."
        )
    check_range("rho", rho, low=0.0, high=1.0, hint="It is the decay of the mean square, e.g. 0.9.")
    check_range("epsilon", epsilon, low=0.0, hint="A small positive number such as 1e-7.")
    # Checked as given, then held as the framework holds them (float32 slots in TF).
    given = (learning_rate, rho, momentum, epsilon, inverse_time_decay)
    names = ("learning_rate", "rho", "momentum", "epsilon", "decay")
    learning_rate, rho, momentum, epsilon, decay = map(conv.round_hyperparameter, names, given)
    has_momentum = not _is_off(momentum)
    if nesterov and not has_momentum:
        raise ValueError(
            f"`nesterov=True` needs momentum > 0. Received: momentum={momentum!r}. "
            "Set momentum (e.g. 0.9) or nesterov=False."
        )
    if sparse_mode is None:
        sparse_mode = conv.sparse_mode
    check_choice("sparse_mode", sparse_mode, ["keras", "lazy", "dense"])
    lr_changes = callable(learning_rate) or static_value(decay) not in (None, 0.0)
    if (
        sparse_mode == "dense"
        and sparse_tables is not None  # without tables no SparseRows can take the dense path
        and has_momentum
        and not conv.lr_before_momentum
        and lr_changes
    ):
        raise ValueError(
            f"sparse_mode='dense' with momentum under convention={convention!r} needs a constant "
            "learning rate with sparse_tables: it multiplies the momentum buffer afterwards, so "
            "each change brings every row of the tables up to date (a pass over the tables). "
            f"Received: learning_rate={learning_rate!r}, inverse_time_decay={decay!r}. Use a "
            "constant (or injected, occasionally changed) learning rate, sparse_mode='lazy', or "
            "a convention that puts the learning rate inside the buffer."
        )
    defers = sparse_mode == "dense" or (sparse_mode == "keras" and not has_momentum)
    stages: list[optax.GradientTransformation] = []
    if sparse_mode != "keras" and any(value is not None for value in clips.values()):
        stages.append(sum_duplicate_rows())  # clip the densified gradient, not its slices
    if clipvalue is not None:
        stages.append(clip_by_value(clipvalue))
    if clipnorm is not None:
        stages.append(clip_by_norm(clipnorm, formula=conv.clipping))
    if global_clipnorm is not None:
        stages.append(clip_by_global_norm(global_clipnorm, formula=conv.clipping))
    if maximize:
        stages.append(negate_updates())
    decays_weights = not _is_off(weight_decay)
    coupling = conv.weight_decay
    if decoupled_weight_decay is not None:
        check_bool("decoupled_weight_decay", decoupled_weight_decay)
        coupling = "decoupled" if decoupled_weight_decay else "coupled"
    if decays_weights and coupling is None:
        raise ValueError(
            _NO_RULE.format(
                convention=convention, reference=conv.reference, weight_decay=weight_decay
            )
        )
    masked = functools.partial(masked_decay, weight_decay_mask)
    if decays_weights and coupling == "coupled":
        stages.append(masked(add_l2_gradient(weight_decay)))  # type: ignore[arg-type]
    rule = TableRule(
        numerics=conv.numerics(has_momentum),
        initial_ms=conv.initial_ms,
        centered=centered,
        has_momentum=has_momentum,
        nesterov=nesterov,
        lr_before_momentum=conv.lr_before_momentum,
        state_dtype=check_float_dtype("state_dtype", state_dtype, complex_ok=True),
        mode=sparse_mode,
        tables=sparse_tables,
        weight_decay_mask=weight_decay_mask,
    )
    hyper = Hyperparameters(
        learning_rate, decay, rho, epsilon, 0.0 if momentum is None else momentum
    )
    decoupled = decays_weights and coupling == "decoupled"
    if defers and sparse_tables is not None:  # the driver shrinks the weights itself
        hyper = hyper._replace(weight_decay=weight_decay if decoupled else None)
        stages.append(sparse_tables_driver(rule, hyper))
    else:
        stages += _rms_stages(rule, hyper)
        if decoupled:
            stages.append(
                masked(add_decoupled_weight_decay(weight_decay, learning_rate, decay=decay))  # type: ignore[arg-type]
            )
    return _check_dtypes(optax.chain(*stages), conv)


def _rms_stages(rule: TableRule, hyper: Hyperparameters) -> list[optax.GradientTransformation]:
    """Scaling, learning rate and momentum as a chain of this library's public stages."""
    lazy = rule.mode == "lazy" or (rule.has_momentum and rule.mode == "keras")
    n = rule.numerics
    options: dict[str, Any] = {
        "ms_form": n.ms_form,
        "rho_complement": n.rho_complement,
        "complex_square": n.complex_square,
        "state_dtype": rule.state_dtype,
        "sparse_mode": "lazy" if lazy else rule.mode,
    }
    if rule.centered:
        options["mg_form"] = n.mg_form
    scale = scale_by_centered_rms if rule.centered else scale_by_rms
    scaling = scale(hyper.rho, hyper.epsilon, rule.initial_ms, n.eps_in_sqrt, **options)
    lr, decay = hyper.learning_rate, hyper.decay
    if not rule.has_momentum:
        return [scaling, scale_by_learning_rate(lr, decay=decay)]
    buffer = trace_momentum(
        hyper.momentum,
        nesterov=rule.nesterov,
        state_dtype=rule.state_dtype,
        sparse_mode="dense" if rule.mode == "dense" else "lazy",
    )
    if rule.lr_before_momentum:  # the buffer holds lr * step; the descent sign comes last
        unsigned = scale_by_learning_rate(lr, decay=decay, flip_sign=False)
        return [scaling, unsigned, buffer, negate_updates()]
    return [scaling, buffer, scale_by_learning_rate(lr, decay=decay)]
