"""`RMSprop`: the tf.keras optimizer's API over this library's stages."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._alias import rmsprop
from .._materialize import materialize
from .._sharding import filled_like, rows_like
from .._skip_nonfinite import SkipNonfiniteState, skip_nonfinite
from .._sparse_rows import is_sparse
from .._updates import apply_updates
from .._validation import check_bool, check_range
from ._schedules import LearningRateSchedule, deserialize, serialize
from ._variable import Variable

__all__ = ["RMSprop"]

_KWARGS = ("clipnorm", "clipvalue", "global_clipnorm", "lr", "decay")
# Keys of real tf.keras / Keras 3 configs that carry no RMSprop numerics: accepted with any value
# (None) or only with the values that switch their feature off.
_INERT_KEYS: dict[str, tuple[Any, ...] | None] = {
    "is_legacy_optimizer": None,
    "jit_compile": None,
    "ema_momentum": None,
    "use_ema": (False,),
    "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None,),
    "weight_decay": (None,),
}
_CONFIG_KEYS = (
    "name",
    "learning_rate",
    "decay",
    "rho",
    "momentum",
    "epsilon",
    "centered",
    *_KWARGS[:3],
    "skip_nonfinite",
)
_SLOT_ORDER = ("rms", "momentum", "mg")
_INITIALIZERS = {"zeros": 0.0, "ones": 1.0}


def _number(name: str, value: Any) -> Any:
    """A config number as a plain Python value (tf.keras configs may hold NumPy scalars)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _checked_weight(target: Variable, weight: Any) -> np.ndarray:
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


class RMSprop:
    r"""tf.keras's ``RMSprop`` (TF 2.x OptimizerV2) for JAX: the same arguments and numbers.

    The update is `rmsprop_jax.rmsprop` with ``convention="keras"``: with
    :math:`\eta_t = \operatorname{lr}(t) / (1 + \text{decay}\cdot t)`,

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \qquad
      w \mathrel{-}= \frac{\eta_t\, g_t}{\sqrt{ms_t} + \epsilon} \;(\mu = 0), \qquad
      m_t = \mu\, m_{t-1} + \frac{\eta_t\, g_t}{\sqrt{ms_t + \epsilon}},\;
      w \mathrel{-}= m_t \;(\mu > 0),

    centered variants dividing by :math:`\sqrt{ms_t - mg_t^2}`. Gradients may be dense arrays or
    `rmsprop_jax.SparseRows` (tf.keras's ``IndexedSlices``), with tf.keras's sparse semantics.

    Two ways to use it:

    - as in tf.keras, with `Variable` objects: `minimize`, `apply_gradients`, `get_weights`,
      `set_weights`, slots and `iterations`; each step runs a jitted, donated update compiled
      once per structure of variables and gradients;
    - as an ``optax`` gradient transformation: it has ``init`` and ``update``, so it chains into
      ``optax.chain`` and Flax (``nnx.Optimizer(model, rj.keras.RMSprop(...))``).

    Args:
      learning_rate: a float, a Keras schedule (`rmsprop_jax.keras.schedules`), or a zero-argument
        callable called afresh at each `apply_gradients` and `minimize`.
      rho: discounting factor of the mean square, in [0, 1].
      momentum: momentum, in [0, 1].
      epsilon: small constant for numerical stability, >= 0.
      centered: normalize by the estimated variance of the gradient.
      name: the optimizer's name.
      skip_nonfinite: skip every step whose gradients contain NaN or Inf (see
        `rmsprop_jax.skip_nonfinite`): variables, slots and `iterations` stay exactly as they
        were, and `skipped_steps` counts it. Not a tf.keras argument; it appears in
        `get_config` only when True.
      **kwargs: ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``decay`` (inverse-time decay
        of the learning rate) and ``lr`` (deprecated alias of ``learning_rate``, which it
        overrides, with a warning). Anything else is a TypeError.

    Example:
      The tf.keras documentation's example, with ``rj.keras`` in place of ``tf.keras``:

      >>> import rmsprop_jax as rj
      >>> opt = rj.keras.RMSprop(learning_rate=0.1)
      >>> var1 = rj.keras.Variable(10.0)
      >>> loss = lambda: (var1 ** 2) / 2.0    # d(loss) / d(var1) = var1
      >>> step_count = opt.minimize(loss, [var1]).numpy()
      >>> var1.numpy()
      array(9.683772, dtype=float32)
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], Any] = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-07,
        centered: bool = False,
        name: str = "RMSprop",
        *,
        skip_nonfinite: bool = False,
        **kwargs: Any,
    ) -> None:
        for key in kwargs:
            if key not in _KWARGS:
                raise TypeError(
                    f"Unexpected keyword argument passed to optimizer: {key}. "
                    f"Allowed kwargs are {list(_KWARGS)}."
                )
        if "lr" in kwargs:
            warnings.warn(
                "The `lr` argument is deprecated, use `learning_rate` instead.",
                UserWarning,
                stacklevel=2,
            )
            learning_rate = kwargs.pop("lr")
        if not callable(learning_rate):
            check_range("learning_rate", learning_rate, low=0.0)
        check_bool("skip_nonfinite", skip_nonfinite)
        if not isinstance(name, str):
            raise TypeError(
                f"`name` must be a string. Received: name={name!r} of type {type(name).__name__}."
            )
        self.name = name
        self.skip_nonfinite = bool(skip_nonfinite)
        self._learning_rate = learning_rate
        self._hyper = {
            "rho": rho,
            "momentum": momentum,
            "epsilon": epsilon,
            "centered": centered,
            "clipnorm": kwargs.get("clipnorm"),
            "clipvalue": kwargs.get("clipvalue"),
            "global_clipnorm": kwargs.get("global_clipnorm"),
            "decay": kwargs.get("decay", 0.0),
        }
        self.transformation()  # validates every hyperparameter with this library's messages
        self.iterations = Variable(jnp.zeros((), jnp.int32), name="iter")
        self._variables: list[Variable] = []  # in the order first seen
        self._slots: dict[int, dict[str, Variable]] = {}
        self._row_steps: dict[int, jax.Array] = {}  # per-row bookkeeping of sparse tables
        self._extra_weights: list[Variable] = []
        self._skipped = jnp.zeros((), jnp.int32)
        self._step = jax.jit(self._step_impl, donate_argnums=(0, 1, 2))
        if not callable(learning_rate):
            self._lr_array = jnp.asarray(learning_rate, jnp.float32)

    # --- the optax face ------------------------------------------------------------------

    @property
    def has_momentum(self) -> bool:
        """Whether a momentum slot is kept (momentum > 0)."""
        return float(self._hyper["momentum"]) > 0

    def _schedule(self) -> Any:
        """The learning rate as `rmsprop_jax.rmsprop` takes it: a number or a schedule of steps."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return lr
        if callable(lr):
            return lambda count: jnp.asarray(lr(), jnp.float32)
        return lr

    def transformation(
        self, learning_rate: Any = None, sparse_tables: Any = None
    ) -> optax.GradientTransformation:
        """The ``optax`` transformation this optimizer applies (the keras convention)."""
        return rmsprop(
            learning_rate=self._schedule() if learning_rate is None else learning_rate,
            convention="keras",
            sparse_tables=sparse_tables,
            **self._hyper,
        )

    def _optax(self) -> optax.GradientTransformation:
        tx = self.transformation()
        return skip_nonfinite(tx) if self.skip_nonfinite else tx

    @property
    def init(self) -> Callable[[optax.Params], optax.OptState]:
        """``optax`` init: the state for ``params`` (a `SkipNonfiniteState` if skipping)."""
        return self._optax().init

    @property
    def update(self) -> Callable[..., tuple[optax.Updates, optax.OptState]]:
        """The ``optax`` update function, called as ``update(grads, state, params)``."""
        return self._optax().update

    @property
    def skipped_steps(self) -> int:
        """How many `apply_gradients` calls were skipped for non-finite gradients (0 if off)."""
        return int(self._skipped)

    # --- slots ---------------------------------------------------------------------------

    def get_slot_names(self) -> list[str]:
        """The slot names this optimizer keeps per variable, in Keras's order."""
        names = ["rms"]
        if self.has_momentum:
            names.append("momentum")
        if self._hyper["centered"]:
            names.append("mg")
        return names

    def add_slot(self, var: Variable, slot_name: str, initializer: Any = "zeros") -> Variable:
        """Creates (or returns) the slot ``slot_name`` of ``var``.

        ``initializer`` is ``"zeros"``, ``"ones"``, a number, an array of ``var``'s shape, or a
        callable ``(shape, dtype) -> array``.
        """
        slots = self._slots_of(var)
        if slot_name in slots:
            return slots[slot_name]
        if isinstance(initializer, str):
            if initializer not in _INITIALIZERS:
                raise ValueError(
                    f"Unknown initializer {initializer!r}; supported: {sorted(_INITIALIZERS)}, "
                    "a number, an array or a callable (shape, dtype) -> array."
                )
            value = filled_like(var.value, _INITIALIZERS[initializer], var.dtype)
        elif callable(initializer):
            value = jnp.asarray(initializer(var.shape, var.dtype), var.dtype)
        else:
            value = jnp.broadcast_to(jnp.asarray(initializer, var.dtype), var.shape)
        if value.shape != var.shape:
            raise ValueError(
                f"The initializer of slot {slot_name!r} gave shape {value.shape}; the variable "
                f"{var.name!r} has shape {var.shape}."
            )
        slot = Variable(value, name=f"{var.name}/{slot_name}")
        slots[slot_name] = slot
        return slot

    def get_slot(self, var: Variable, slot_name: str) -> Variable:
        """The slot ``slot_name`` of ``var``, with every deferred sparse update applied."""
        self._materialize()
        slots = self._slots.get(id(var), {})
        if slot_name not in slots:
            raise KeyError(
                f"Variable {var.name!r} has no slot {slot_name!r}; it has {sorted(slots)}."
            )
        return slots[slot_name]

    def _slots_of(self, var: Variable) -> dict[str, Variable]:
        if id(var) not in self._slots:
            self._variables.append(var)
            self._slots[id(var)] = {}
        return self._slots[id(var)]

    def build(self, var_list: Iterable[Variable]) -> None:
        """Creates every slot of ``var_list`` without taking a step (e.g. before `set_weights`)."""
        for var in var_list:
            for name in self.get_slot_names():
                self.add_slot(var, name)

    def add_weight(
        self,
        name: str,
        shape: Sequence[int] = (),
        dtype: Any = jnp.float32,
        initializer: Any = "zeros",
    ) -> Variable:
        """Adds a non-slot weight (listed after the slots in `weights`)."""
        value = (
            jnp.full(tuple(shape), _INITIALIZERS[initializer], dtype)
            if isinstance(initializer, str) and initializer in _INITIALIZERS
            else jnp.broadcast_to(jnp.asarray(initializer, dtype), tuple(shape))
        )
        weight = Variable(value, name=name)
        self._extra_weights.append(weight)
        return weight

    # --- weights ---------------------------------------------------------------------------

    def variables(self) -> list[Variable]:
        """``iterations``, then every "rms", every "momentum", every "mg" slot (Keras's order)."""
        self._materialize()
        slots = [
            self._slots[id(var)][name]
            for name in _SLOT_ORDER
            for var in self._variables
            if name in self._slots[id(var)]
        ]
        return [self.iterations, *slots, *self._extra_weights]

    @property
    def weights(self) -> list[Variable]:
        """Same as `variables`."""
        return self.variables()

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays, in Keras's order (``iterations`` as int64 first)."""
        weights = self.variables()
        return [np.asarray(weights[0].numpy(), np.int64)] + [w.numpy() for w in weights[1:]]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Restores weights saved by `get_weights` or by tf.keras; all-or-nothing.

        Accepts the list with ``iterations`` first, or without it (as Keras does).

        Raises:
          ValueError: for a wrong number of weights, a wrong shape, a negative or too large
            iteration count, or a NaN or Inf value; nothing changes then.
          TypeError: for a weight of the wrong kind of dtype: ``iterations`` needs integers, a
            floating slot a real number array (float64 is rounded to the slot's dtype, as in
            tf.keras); strings, bools, complex numbers and objects are refused.
        """
        targets = self.variables()
        weights = list(weights)
        if len(weights) == len(targets) - 1:
            targets = targets[1:]
        if len(weights) != len(targets):
            raise ValueError(
                f"You called `set_weights(weights)` on optimizer {self.name} with a weight list "
                f"of length {len(weights)}, but the optimizer was expecting {len(targets)} "
                f"weights (or {len(targets) - 1} without the iteration count). Call "
                "`build(var_list)` or take a step first so that the slots exist."
            )
        values = [_checked_weight(t, w) for t, w in zip(targets, weights, strict=True)]
        for target, value in zip(targets, values, strict=True):
            target.assign(value)
        self._row_steps = {
            key: jnp.full_like(rows, self._count()) for key, rows in self._row_steps.items()
        }

    # --- config --------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The config tf.keras returns: name, the clip keys that are set, then the numerics."""
        config: dict[str, Any] = {"name": self.name}
        if self.skip_nonfinite:
            config["skip_nonfinite"] = True
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if self._hyper[key] is not None:
                config[key] = self._hyper[key]
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = serialize(lr)
        elif callable(lr):
            lr = float(lr())
        config.update(
            learning_rate=lr,
            decay=self._hyper["decay"],
            rho=self._hyper["rho"],
            momentum=self._hyper["momentum"],
            epsilon=self._hyper["epsilon"],
            centered=self._hyper["centered"],
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RMSprop:
        """Builds the optimizer from a tf.keras or Keras 3 ``get_config()``; data only.

        Raises:
          ValueError: for an unknown key, a schedule class that is not supported, or a Keras 3
            feature this optimizer does not have (e.g. ``use_ema=True``), listing what is, or a
            value out of range.
          TypeError: for a value that is not plain data (a number, bool, string, None, or for
            ``learning_rate`` a serialized schedule dict), or of the wrong type for its key.
        """
        if not isinstance(config, dict):
            raise TypeError(f"`config` must be a dict. Received: {type(config).__name__}.")
        arguments: dict[str, Any] = {}
        for key, value in config.items():
            if key in _INERT_KEYS:
                value = _number(key, value)
                allowed = _INERT_KEYS[key]
                if allowed is not None and value not in allowed:
                    raise ValueError(
                        f"Config key {key}={value!r} asks for a feature rj.keras.RMSprop does "
                        f"not have; it is accepted only as {allowed[0]!r}."
                    )
                continue
            if key not in _CONFIG_KEYS:
                raise ValueError(
                    f"Unknown key {key!r} in the RMSprop config. Supported keys: "
                    f"{sorted(_CONFIG_KEYS)} (and, when off, {sorted(_INERT_KEYS)})."
                )
            value = _config_value(key, value)
            if value is not None or key not in ("clipnorm", "clipvalue", "global_clipnorm"):
                arguments[key] = value
        return cls(**arguments)

    # --- steps ---------------------------------------------------------------------------

    def _count(self) -> jax.Array:
        return jnp.asarray(self.iterations.value, jnp.int32)

    def get_gradients(self, loss: Callable[[], Any], params: Sequence[Variable]) -> list[jax.Array]:
        """Gradients of the zero-argument ``loss`` with respect to the Variables ``params``."""
        params = list(params)

        def evaluate(values: Sequence[jax.Array]) -> jax.Array:
            saved = [var._value for var in params]
            try:
                for var, value in zip(params, values, strict=True):
                    var._value = value
                return jnp.asarray(loss())
            finally:
                for var, value in zip(params, saved, strict=True):
                    var._value = value

        return list(jax.grad(evaluate)([var.value for var in params]))

    def minimize(self, loss: Callable[[], Any], var_list: Sequence[Variable]) -> Variable:
        """One step on the zero-argument ``loss``: gradients with JAX, then `apply_gradients`."""
        var_list = list(var_list)
        return self.apply_gradients(zip(self.get_gradients(loss, var_list), var_list, strict=True))

    def apply_gradients(
        self, grads_and_vars: Iterable[tuple[Any, Variable]], name: str | None = None
    ) -> Variable:
        """Applies ``(gradient, Variable)`` pairs; increments `iterations`; returns it.

        A gradient may be a dense array or a `rmsprop_jax.SparseRows`; None gradients are
        skipped with a warning.

        Raises:
          ValueError: if every gradient is None.
        """
        del name
        pairs = list(grads_and_vars)
        given = [(grad, var) for grad, var in pairs if grad is not None]
        if not given:
            raise ValueError(
                f"No gradients provided for any variable: {[var.name for _, var in pairs]}."
            )
        if len(given) < len(pairs):
            missing = [var.name for grad, var in pairs if grad is None]
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss.",
                UserWarning,
                stacklevel=2,
            )
        variables = [var for _, var in given]
        names = self.get_slot_names()
        self.build(var for var in variables if len(self._slots.get(id(var), ())) < len(names))
        grads = tuple(
            grad if isinstance(grad, jax.Array) or is_sparse(grad) else jnp.asarray(grad)
            for grad, _ in given
        )
        defers = not self.has_momentum  # keras mode defers the decay of untouched rows
        for grad, var in zip(grads, variables, strict=True):
            if defers and is_sparse(grad) and id(var) not in self._row_steps:
                self._row_steps[id(var)] = rows_like(var.value, self._count(), jnp.int32)
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr_value = None  # evaluated inside the step, from the step count
        elif callable(lr):
            lr_value = jnp.asarray(lr(), jnp.float32)  # called afresh, passed as an argument
        else:
            lr_value = self._lr_array
        slot_vars = [tuple(self._slots[id(var)][n] for n in names) for var in variables]
        new_values, new_slots, new_row_steps, count, skipped = self._step(
            tuple(var.value for var in variables),
            tuple(tuple(slot.value for slot in slots) for slots in slot_vars),
            tuple(self._row_steps.get(id(var)) for var in variables),
            grads,
            self.iterations.value,
            self._skipped,
            lr_value,
        )
        for var, slots, value, slot_values, rows in zip(
            variables, slot_vars, new_values, new_slots, new_row_steps, strict=True
        ):
            var._value = value
            for slot, slot_value in zip(slots, slot_values, strict=True):
                slot._value = slot_value
            if rows is not None:
                self._row_steps[id(var)] = rows
        self.iterations._value = count  # unchanged by a skipped step
        self._skipped = skipped
        return self.iterations

    def _state_for(
        self,
        tx: optax.GradientTransformation,
        values: Any,
        slots: Any,
        row_steps: Any,
        count: jax.Array,
    ) -> Any:
        """The chain's state for ``values``, filled from the slots and ``iterations``."""
        names = self.get_slot_names()
        per_name = {
            {"rms": "ms", "momentum": "mom", "mg": "mg"}[name]: tuple(s[i] for s in slots)
            for i, name in enumerate(names)
        }
        stages = []
        for stage in tuple(tx.init(values)):  # type: ignore[arg-type]
            fields = getattr(stage, "_fields", ())
            if "count" in fields and stage.count is not None:
                stage = stage._replace(count=count)
            for field, tree in per_name.items():
                if field in fields:
                    stage = stage._replace(**{field: tree})
            if "row_steps" in fields and any(
                leaf is not None for leaf in jax.tree_util.tree_leaves(stage.row_steps)
            ):
                stage = stage._replace(row_steps=row_steps)
            stages.append(stage)
        return tuple(stages)

    def _slots_from(self, state: Any, row_steps: Any) -> tuple[Any, Any]:
        names = self.get_slot_names()
        found: dict[str, Any] = {}
        rows_out = row_steps
        for stage in state:
            fields = getattr(stage, "_fields", ())
            for name in names:
                field = {"rms": "ms", "momentum": "mom", "mg": "mg"}[name]
                if field in fields:
                    found[name] = getattr(stage, field)
            if "row_steps" in fields and any(
                leaf is not None for leaf in jax.tree_util.tree_leaves(stage.row_steps)
            ):
                rows_out = stage.row_steps
        count = len(next(iter(found.values())))
        slots = tuple(tuple(found[name][i] for name in names) for i in range(count))
        return slots, rows_out

    def _step_impl(
        self,
        values: Any,
        slots: Any,
        row_steps: Any,
        grads: Any,
        count: jax.Array,
        skipped: jax.Array,
        lr_value: jax.Array | None,
    ) -> tuple[Any, Any, Any, jax.Array, jax.Array]:
        tables = tuple(rows is not None for rows in row_steps)
        tx = self.transformation(
            learning_rate=self._learning_rate if lr_value is None else lr_value,
            sparse_tables=tables,
        )
        state: Any = self._state_for(tx, values, slots, row_steps, count)
        if self.skip_nonfinite:
            guarded: Any = SkipNonfiniteState(state, skipped)
            updates, guarded = skip_nonfinite(tx).update(grads, guarded, values)
            state, skipped = guarded.inner_state, guarded.skipped
        else:
            updates, state = tx.update(grads, state, values)
        new_values = apply_updates(values, updates)
        new_slots, new_row_steps = self._slots_from(state, row_steps)
        new_count = next(
            stage.count
            for stage in state
            if "count" in getattr(stage, "_fields", ()) and stage.count is not None
        )
        return new_values, new_slots, new_row_steps, new_count, skipped

    def _materialize(self) -> None:
        """Applies the decay that sparse steps deferred, to every row of every table."""
        if not self._row_steps:
            return
        variables = [var for var in self._variables if id(var) in self._row_steps]
        names = self.get_slot_names()
        values = tuple(var.value for var in variables)
        slots = tuple(tuple(self._slots[id(var)][n].value for n in names) for var in variables)
        row_steps = tuple(self._row_steps[id(var)] for var in variables)
        tx = self.transformation(learning_rate=0.0, sparse_tables=tuple(True for _ in variables))
        state = self._state_for(tx, values, slots, row_steps, self._count())
        new_values, state = materialize(tx, values, state)
        new_values = tuple(new_values)  # type: ignore[arg-type]
        new_slots, new_rows = self._slots_from(state, row_steps)
        for var, value, slot_values, rows in zip(
            variables, new_values, new_slots, new_rows, strict=True
        ):
            var._value = value
            for slot_name, slot_value in zip(names, slot_values, strict=True):
                self._slots[id(var)][slot_name]._value = slot_value
            self._row_steps[id(var)] = rows
