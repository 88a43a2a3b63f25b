"""`RMSprop`: the tf.keras optimizer's API over this library's stages."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._alias import rmsprop
from .._sharding import filled_like
from .._skip_nonfinite import skip_nonfinite
from .._sparse_rows import is_sparse
from .._sparse_tables import materialize
from .._updates import apply_updates
from .._validation import check_bool
from . import _layout as layout
from ._arguments import gradient_pairs, loss_gradients, variable_list
from ._config import KWARGS, arguments_from_config, checked_weight
from ._hyperparams import HYPERPARAMETERS, Hyperparameters, momentum_enabled
from ._schedules import LearningRateSchedule, serialize
from ._variable import StateView, Variable

__all__ = ["RMSprop"]

_SLOT_ORDER = ("rms", "momentum", "mg")  # Keras's order of the slots in `weights`
_INITIALIZERS = {"zeros": 0.0, "ones": 1.0}


class RMSprop:
    r"""tf.keras's ``RMSprop`` (TF 2.x OptimizerV2) for JAX: the same arguments and numbers.

    The update is `rmsprop_jax.rmsprop` with ``convention="keras"``: with
    :math:`\eta_t = \operatorname{lr}(t) / (1 + \text{decay}\cdot t)`,

    .. math::

      ms_t = \rho\, ms_{t-1} + (1 - \rho)\, g_t^2, \qquad
      w \mathrel{-}= \frac{\eta_t\, g_t}{\sqrt{ms_t} + \epsilon} \;(\text{no momentum}), \qquad
      m_t = \mu\, m_{t-1} + \frac{\eta_t\, g_t}{\sqrt{ms_t + \epsilon}},\;
      w \mathrel{-}= m_t \;(\text{momentum}),

    centered variants dividing by :math:`\sqrt{ms_t - mg_t^2}`. Gradients may be dense arrays or
    `rmsprop_jax.SparseRows` (tf.keras's ``IndexedSlices``), with tf.keras's sparse semantics.

    As in tf.keras, ``learning_rate``, ``rho``, ``momentum``, ``epsilon`` and ``decay`` are
    attributes that can be read and assigned (``opt.learning_rate = 0.01``, ``opt.lr``), and
    each may be a zero-argument callable returning the value to use, called at every
    `apply_gradients`; ``learning_rate`` may also be a schedule. A new value takes effect at the
    next step without recompiling it. Which path momentum takes is fixed at construction, as in
    tf.keras: a callable or a number > 0 enables the momentum slot; assigning a momentum later
    changes its value on that path only.

    Warning:
      tf.keras's legacy optimizer keeps using the ``decay`` given at construction even after
      ``opt.decay`` is assigned; here the assigned ``decay`` takes effect at the next step (and
      `get_config` reports it).

    Two ways to use it:

    - as in tf.keras, with `Variable` objects: `minimize`, `apply_gradients`, `get_weights`,
      `set_weights`, slots and `iterations`; each step runs one jitted update, compiled once per
      structure of variables and gradients, that updates the variables' and the optimizer's
      buffers in place;
    - as an ``optax`` gradient transformation: it has ``init`` and ``update``, so it chains into
      ``optax.chain`` and Flax (``nnx.Optimizer(model, rj.keras.RMSprop(...))``).

    The optimizer holds one ``optax`` state (of ``optax.inject_hyperparams`` over
    `rmsprop_jax.rmsprop`) for all its variables; slots and `iterations` are views of it.

    Args:
      learning_rate: a float, a Keras schedule (`rmsprop_jax.keras.schedules`), or a zero-argument
        callable.
      rho: discounting factor of the mean square, in [0, 1], or a zero-argument callable.
      momentum: momentum, in [0, 1], or a zero-argument callable (which enables momentum).
      epsilon: small constant for numerical stability, >= 0, or a zero-argument callable.
      centered: normalize by the estimated variance of the gradient.
      name: the optimizer's name.
      skip_nonfinite: skip every step whose gradients contain NaN or Inf (see
        `rmsprop_jax.skip_nonfinite`): variables, slots and `iterations` stay exactly as they
        were, and `skipped_steps` counts it. Not a tf.keras argument; it appears in
        `get_config` only when True.
      **kwargs: ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``decay`` (inverse-time decay
        of the learning rate; a number or a zero-argument callable) and ``lr`` (deprecated alias
        of ``learning_rate``, which it overrides, with a warning). Anything else is a TypeError.

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
        rho: float | Callable[[], Any] = 0.9,
        momentum: float | Callable[[], Any] = 0.0,
        epsilon: float | Callable[[], Any] = 1e-07,
        centered: bool = False,
        name: str = "RMSprop",
        *,
        skip_nonfinite: bool = False,
        **kwargs: Any,
    ) -> None:
        for key in kwargs:
            if key not in KWARGS:
                raise TypeError(
                    f"Unexpected keyword argument passed to optimizer: {key}. "
                    f"Allowed kwargs are {list(KWARGS)}."
                )
        if "lr" in kwargs:
            warnings.warn(
                "The `lr` argument is deprecated, use `learning_rate` instead.",
                UserWarning,
                stacklevel=2,
            )
            learning_rate = kwargs.pop("lr")
        check_bool("skip_nonfinite", skip_nonfinite)
        if not isinstance(name, str):
            raise TypeError(
                f"`name` must be a string. Received: name={name!r} of type {type(name).__name__}."
            )
        self._hyper = Hyperparameters(
            {
                "learning_rate": learning_rate,
                "rho": rho,
                "momentum": momentum,
                "epsilon": epsilon,
                "decay": kwargs.get("decay", 0.0),
            }
        )
        self.name = name
        self._skip_nonfinite = bool(skip_nonfinite)
        self._momentum = momentum_enabled(momentum)
        self._static = {
            "centered": centered,
            "clipnorm": kwargs.get("clipnorm"),
            "clipvalue": kwargs.get("clipvalue"),
            "global_clipnorm": kwargs.get("global_clipnorm"),
        }
        # The hyperparameters each step receives as float32 arrays.
        self._injected = tuple(n for n in HYPERPARAMETERS if n != "momentum" or self._momentum)
        self._check_static()
        self._variables: list[Variable] = []  # in the order first seen: params[i] of the state
        self._index: dict[int, int] = {}  # id(variable) -> its position
        self._tables: list[bool] = []  # whether variable i has received SparseRows gradients
        self._tx = self._transformation(sparse_tables=lambda params: tuple(self._tables))
        self._face = self._transformation(sparse_tables=None)
        self._state: Any = self._tx.init(())
        self._pending = False  # sparse steps since the deferred rows were last brought up to date
        self._views: dict[tuple[int, str], StateView] = {}
        self._slot_keys: dict[Variable, tuple[str, int]] = {}  # slot view -> (name, position)
        self._custom_slots: dict[int, dict[str, Variable]] = {}
        self._extra_weights: list[Variable] = []
        self._hyper_views: dict[str, StateView] = {}
        self._step = jax.jit(
            self._step_impl,
            static_argnames=("indices", "schedule"),
            donate_argnames=("values", "state"),
        )
        self._bring_up_to_date = jax.jit(
            self._materialize_impl, static_argnames=("indices",), donate_argnames=("state",)
        )
        self._iterations = StateView(
            "iter", read=lambda: layout.count(self._state), write=self._write_iterations
        )

    # --- the optax transformation, built once -------------------------------------------------

    def _check_static(self) -> None:
        """Validates everything with `rmsprop_jax.rmsprop`'s messages, numbers as given."""
        given = {
            n: self._hyper.setting(n)
            for n in HYPERPARAMETERS
            if not callable(self._hyper.setting(n))
        }
        if not self._momentum:
            given["momentum"] = 0.0
        rmsprop(convention="keras", **self._static, **given)

    def _transformation(self, sparse_tables: Any) -> optax.GradientTransformationExtraArgs:
        """``optax.inject_hyperparams`` over `rmsprop_jax.rmsprop`: the hyperparameters are state.

        Only the names in ``self._injected`` are injected: the factory has exactly those
        parameters, so nothing else (a static momentum 0, the table flags) becomes an array.
        """
        static: dict[str, Any] = {
            "convention": "keras",
            "sparse_tables": sparse_tables,
            **self._static,
        }

        def with_momentum(
            learning_rate: Any, rho: Any, momentum: Any, epsilon: Any, decay: Any
        ) -> optax.GradientTransformation:
            return rmsprop(learning_rate, rho, momentum, epsilon, decay=decay, **static)

        def without_momentum(  # a static momentum 0: tf.keras's path without momentum
            learning_rate: Any, rho: Any, epsilon: Any, decay: Any
        ) -> optax.GradientTransformation:
            return rmsprop(learning_rate, rho, 0.0, epsilon, decay=decay, **static)

        factory = with_momentum if self._momentum else without_momentum
        placeholders = {n: 0.0 for n in self._injected}
        tx = optax.inject_hyperparams(factory, hyperparam_dtype=jnp.float32)(**placeholders)
        return skip_nonfinite(tx) if self._skip_nonfinite else tx

    def transformation(self) -> optax.GradientTransformationExtraArgs:
        """The ``optax`` transformation this optimizer is (same as its `init` and `update`)."""
        return optax.GradientTransformationExtraArgs(self._face_init, self._face_update)

    def _face_hyperparams(self, state: Any) -> dict[str, jax.Array]:
        values = self._hyper.step_values(self._injected)
        schedule = self._hyper.schedule()
        if schedule is not None:
            values["learning_rate"] = jnp.asarray(schedule(layout.count(state)), jnp.float32)
        return values

    def _face_init(self, params: optax.Params) -> optax.OptState:
        state = self._face.init(params)
        return layout.with_hyperparams(state, self._face_hyperparams(state))

    def _face_update(
        self, updates: optax.Updates, state: optax.OptState, params: Any = None, **extra: Any
    ) -> tuple[optax.Updates, optax.OptState]:
        state = layout.with_hyperparams(state, self._face_hyperparams(state))
        return self._face.update(updates, state, params, **extra)

    @property
    def init(self) -> Callable[[optax.Params], optax.OptState]:
        """``optax`` init: the state for ``params`` (a `SkipNonfiniteState` if skipping)."""
        return self._face_init

    @property
    def update(self) -> Callable[..., tuple[optax.Updates, optax.OptState]]:
        """The ``optax`` update function, called as ``update(grads, state, params)``.

        It uses the optimizer's hyperparameters as they are when it runs (under ``jax.jit``:
        when the step is traced).
        """
        return self._face_update

    # --- hyperparameters, as tf.keras's OptimizerV2 attributes --------------------------------

    def _hyper_view(self, name: str) -> Any:
        if isinstance(self._hyper.setting(name), LearningRateSchedule):
            return self._hyper.setting(name)
        if name not in self._hyper_views:
            self._hyper_views[name] = StateView(
                name,
                read=lambda: self._hyper.value(name),
                write=lambda value: self._set_hyper(name, value),
            )
        return self._hyper_views[name]

    def _set_hyper(self, name: str, value: Any) -> None:
        if isinstance(value, Variable):
            value = value.value
        if isinstance(value, jax.Array | np.ndarray | np.generic) and np.ndim(value) == 0:
            value = float(value)  # a plain number, as the config reports it
        if name == "momentum" and not self._momentum and momentum_enabled(value):
            warnings.warn(
                f"{self.name} was built without momentum (momentum=0.0), so, as in tf.keras, it "
                "has no momentum slot and this value has no effect. Build "
                "rj.keras.RMSprop(momentum=...) with momentum > 0 (or a callable) instead.",
                UserWarning,
                stacklevel=3,
            )
        self._hyper.set(name, value)

    @property
    def learning_rate(self) -> Any:
        """The learning rate: a float32 Variable view (assignable), or the schedule."""
        return self._hyper_view("learning_rate")

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self._set_hyper("learning_rate", value)

    @property
    def lr(self) -> Any:
        """Deprecated alias of `learning_rate` (as in tf.keras)."""
        return self._hyper_view("learning_rate")

    @lr.setter
    def lr(self, value: Any) -> None:
        self._set_hyper("learning_rate", value)

    @property
    def rho(self) -> Any:
        """The discounting factor of the mean square (a float32 Variable view, assignable)."""
        return self._hyper_view("rho")

    @rho.setter
    def rho(self, value: Any) -> None:
        self._set_hyper("rho", value)

    @property
    def momentum(self) -> Any:
        """The momentum (a float32 Variable view, assignable; see the class docstring)."""
        return self._hyper_view("momentum")

    @momentum.setter
    def momentum(self, value: Any) -> None:
        self._set_hyper("momentum", value)

    @property
    def epsilon(self) -> Any:
        """The epsilon (a float32 Variable view, assignable)."""
        return self._hyper_view("epsilon")

    @epsilon.setter
    def epsilon(self, value: Any) -> None:
        self._set_hyper("epsilon", value)

    @property
    def decay(self) -> Any:
        """The inverse-time decay of the learning rate (a float32 Variable view, assignable)."""
        return self._hyper_view("decay")

    @decay.setter
    def decay(self, value: Any) -> None:
        self._set_hyper("decay", value)

    def _fixed(self, name: str) -> Any:
        return self._static[name]

    centered = property(lambda self: self._fixed("centered"), doc="Whether it is centered.")
    clipnorm = property(lambda self: self._fixed("clipnorm"), doc="Per-tensor clip norm.")
    clipvalue = property(lambda self: self._fixed("clipvalue"), doc="Clip value.")
    global_clipnorm = property(lambda self: self._fixed("global_clipnorm"), doc="Global norm.")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("centered", "clipnorm", "clipvalue", "global_clipnorm", "skip_nonfinite"):
            raise AttributeError(
                f"`{name}` of {self.name} is fixed at construction: it decides the optimizer's "
                f"slots and stages. Build a new optimizer with {name}={value!r} instead "
                "(`RMSprop.from_config({**opt.get_config(), ...})`)."
            )
        super().__setattr__(name, value)

    @property
    def skip_nonfinite(self) -> bool:
        """Whether steps with NaN or Inf gradients are skipped."""
        return self._skip_nonfinite

    @property
    def has_momentum(self) -> bool:
        """Whether a momentum slot is kept (decided at construction, as in tf.keras)."""
        return self._momentum

    @property
    def iterations(self) -> Variable:
        """The number of steps taken: an int32 view of the optimizer state (assignable)."""
        return self._iterations

    @property
    def skipped_steps(self) -> int:
        """How many `apply_gradients` calls were skipped for non-finite gradients (0 if off)."""
        return layout.skipped(self._state)

    def _write_iterations(self, value: Any) -> None:
        self._materialize()  # pending row updates belong to the old count
        self._state = layout.mark_rows_current(
            layout.with_count(self._state, jnp.asarray(value, jnp.int32))
        )

    # --- variables and their slots -----------------------------------------------------------

    def _register(self, variables: Sequence[Variable], sparse: Sequence[bool]) -> None:
        """Adds new variables (and new sparse tables) to the optax state, keeping what it holds."""
        changed = False
        for var, is_table in zip(variables, sparse, strict=True):
            if id(var) not in self._index:
                self._index[id(var)] = len(self._variables)
                self._variables.append(var)
                self._tables.append(bool(is_table))
                changed = True
            elif is_table and not self._tables[self._index[id(var)]]:
                self._tables[self._index[id(var)]] = True
                changed = True
        if changed:  # rare: a first step, or a first sparse gradient for a variable
            fresh = self._tx.init(tuple(var.value for var in self._variables))
            self._state = layout.merge(fresh, self._state)

    def get_slot_names(self) -> list[str]:
        """The slot names this optimizer keeps per variable, in Keras's order."""
        names = ["rms"]
        if self.has_momentum:
            names.append("momentum")
        if self.centered:
            names.append("mg")
        return names

    def _slot_view(self, var: Variable, name: str) -> StateView:
        key = (id(var), name)
        if key not in self._views:
            index = self._index[id(var)]
            self._views[key] = StateView(
                f"{var.name}/{name}",
                read=lambda: self._read_slot(name, index),
                write=lambda value: self._write_slot(name, index, value),
            )
            self._slot_keys[self._views[key]] = (name, index)
        return self._views[key]

    def _read_slot(self, name: str, index: int) -> jax.Array:
        self._materialize()
        return layout.slot(self._state, name, index)

    def _write_slot(self, name: str, index: int, value: jax.Array) -> None:
        self._materialize()
        state = layout.with_slots(self._state, {(name, index): value})
        self._state = layout.mark_rows_current(state)

    def add_slot(self, var: Variable, slot_name: str, initializer: Any = "zeros") -> Variable:
        """Creates (or returns) the slot ``slot_name`` of ``var``.

        The optimizer's own slots (`get_slot_names`) are views of its state. Another name makes
        a separate slot: ``initializer`` is ``"zeros"``, ``"ones"``, a number, an array of
        ``var``'s shape, or a callable ``(shape, dtype) -> array``.
        """
        (var,) = variable_list([var], "var")
        if slot_name in self.get_slot_names():
            self.build([var])
            return self._slot_view(var, slot_name)
        slots = self._custom_slots.setdefault(id(var), {})
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
        slot = Variable(value, name=f"{var.name}/{slot_name}", trainable=False)
        slots[slot_name] = slot
        return slot

    def get_slot(self, var: Variable, slot_name: str) -> Variable:
        """The slot ``slot_name`` of ``var``: a view of the optimizer state.

        Reading it first applies every update that sparse steps deferred (so it shows what
        tf.keras shows); reading returns a copy, assigning writes into the state.
        """
        (var,) = variable_list([var], "var")
        names = self.get_slot_names() if id(var) in self._index else []
        custom = self._custom_slots.get(id(var), {})
        if slot_name in names:
            return self._slot_view(var, slot_name)
        if slot_name in custom:
            return custom[slot_name]
        raise KeyError(
            f"Variable {var.name!r} has no slot {slot_name!r}; it has {sorted([*names, *custom])}."
            + ("" if names else " Call `build([var])` or take a step to create its slots.")
        )

    def build(self, var_list: Iterable[Variable]) -> None:
        """Creates every slot of ``var_list`` without taking a step (e.g. before `set_weights`)."""
        variables = variable_list(list(var_list), "var_list")
        self._register(variables, [False] * len(variables))

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
        weight = Variable(value, name=name, trainable=False)
        self._extra_weights.append(weight)
        return weight

    @property
    def _row_steps(self) -> dict[int, jax.Array]:
        """Per-row bookkeeping of sparse tables, by ``id(variable)`` (for inspection)."""
        found = {id(var): layout.rows(self._state, i) for i, var in enumerate(self._variables)}
        return {key: rows for key, rows in found.items() if rows is not None}

    # --- weights ---------------------------------------------------------------------------

    def variables(self) -> list[Variable]:
        """``iterations``, then every "rms", every "momentum", every "mg" slot (Keras's order).

        The slots are views of the state (see `get_slot`): reading one first applies the
        updates that sparse steps deferred.
        """
        slots = [
            self._slot_view(var, name)
            for name in _SLOT_ORDER
            if name in self.get_slot_names()
            for var in self._variables
        ]
        return [self._iterations, *slots, *self._extra_weights]

    @property
    def weights(self) -> list[Variable]:
        """Same as `variables`."""
        return self.variables()

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays, in Keras's order (``iterations`` as int64 first).

        Applies the updates that sparse steps deferred first, so the slots are tf.keras's.
        """
        self._materialize()
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
        self._materialize()
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
        values = [checked_weight(t, w) for t, w in zip(targets, weights, strict=True)]
        # One write of the state for all its slots; `iterations` and extra weights as assigned.
        slots = {}
        for target, value in zip(targets, values, strict=True):
            if target in self._slot_keys:
                slots[self._slot_keys[target]] = value
            else:
                target.assign(value)
        self._state = layout.mark_rows_current(layout.with_slots(self._state, slots))

    # --- config --------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The config tf.keras returns: name, the clip keys that are set, then the numerics.

        Hyperparameters are their current settings (a callable's current value).
        """
        config: dict[str, Any] = {"name": self.name}
        if self.skip_nonfinite:
            config["skip_nonfinite"] = True
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if self._static[key] is not None:
                config[key] = self._static[key]
        lr = self._hyper.config_value("learning_rate")
        config.update(
            learning_rate=serialize(lr) if isinstance(lr, LearningRateSchedule) else lr,
            decay=self._hyper.config_value("decay"),
            rho=self._hyper.config_value("rho"),
            momentum=self._hyper.config_value("momentum"),
            epsilon=self._hyper.config_value("epsilon"),
            centered=self.centered,
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
        return cls(**arguments_from_config(config))

    # --- gradients -------------------------------------------------------------------------

    def get_gradients(self, loss: Callable[[], Any], params: Sequence[Variable]) -> list[jax.Array]:
        """Gradients of the zero-argument ``loss`` with respect to the Variables ``params``.

        Raises:
          ValueError: if ``loss`` does not read one of ``params`` (tf.keras: a None gradient).
        """
        pairs = loss_gradients(loss, params)
        for grad, var in pairs:
            if grad is None:
                raise ValueError(
                    f"Variable {var.name!r} has `None` for gradient: the loss does not read it. "
                    "Leave it out of `params`, or use it in the loss."
                )
        return [grad for grad, _ in pairs]

    def get_updates(self, loss: Callable[[], Any], params: Sequence[Variable]) -> list[Variable]:
        """tf.keras's graph-mode ``get_updates``, run eagerly: takes the step now.

        tf.keras returns the update operations to run later; there is no graph here, so this
        applies one step of ``loss``'s gradients to ``params`` at once and returns
        ``[iterations]``.
        """
        self.apply_gradients(list(zip(self.get_gradients(loss, params), params, strict=True)))
        return [self.iterations]

    def minimize(
        self,
        loss: Callable[[], Any],
        var_list: Sequence[Variable] | Callable[[], Sequence[Variable]],
        grad_loss: Any = None,
        name: str | None = None,
    ) -> Variable:
        """One step on the zero-argument ``loss``: gradients with JAX, then `apply_gradients`.

        Args:
          loss: a zero-argument callable returning the value to minimize; a non-scalar value is
            summed (as TF's gradient of a non-scalar target).
          var_list: a list or tuple of `Variable`, or a callable returning one (called after a
            first call of ``loss``, which may create the variables).
          grad_loss: optional gradient of the final objective with respect to ``loss()``.
          name: ignored (tf.keras's name of the returned operation).

        Returns:
          `iterations`, incremented.
        """
        return self.apply_gradients(loss_gradients(loss, var_list, grad_loss), name=name)

    # --- steps ---------------------------------------------------------------------------

    def apply_gradients(
        self, grads_and_vars: Iterable[tuple[Any, Variable]], name: str | None = None
    ) -> Variable:
        """Applies ``(gradient, Variable)`` pairs; increments `iterations`; returns it.

        A gradient may be a dense array or a `rmsprop_jax.SparseRows`; None gradients are
        skipped with a warning; an empty list is a no-op (no increment), as in tf.keras.

        Raises:
          ValueError: if every gradient is None, or a gradient's shape is not its variable's.
          TypeError: for an item that is not a ``(gradient, Variable)`` pair.
        """
        del name
        pairs = gradient_pairs(grads_and_vars)
        if not pairs:
            return self.iterations
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
        grads = tuple(
            grad if isinstance(grad, jax.Array) or is_sparse(grad) else jnp.asarray(grad)
            for grad, _ in given
        )
        sparse = [is_sparse(grad) for grad in grads]
        self._register(variables, sparse)
        # Donated in place: a buffer someone else still holds is copied first, never deleted.
        values = tuple(var._value if var.owns_buffer() else var._value.copy() for var in variables)
        new_values, self._state = self._step(
            values,
            self._state,
            grads,
            self._hyper.step_values(self._injected),
            indices=tuple(self._index[id(var)] for var in variables),
            schedule=self._hyper.schedule(),
        )
        for var, value in zip(variables, new_values, strict=True):
            var._value = value
        self._pending = self._pending or any(sparse)
        return self.iterations

    def _step_impl(
        self,
        values: tuple[jax.Array, ...],
        state: Any,
        grads: tuple[Any, ...],
        hyperparams: dict[str, jax.Array],
        *,
        indices: tuple[int, ...],
        schedule: LearningRateSchedule | None,
    ) -> tuple[tuple[jax.Array, ...], Any]:
        part = layout.take(state, indices)
        if schedule is not None:  # tf.keras: the schedule of `iterations`
            rate = jnp.asarray(schedule(layout.count(part)), jnp.float32)
            hyperparams = {**hyperparams, "learning_rate": rate}
        part = layout.with_hyperparams(part, hyperparams)
        updates, part = self._tx.update(grads, part, values)
        new_values = cast(tuple[jax.Array, ...], apply_updates(values, updates))
        return new_values, layout.put(state, part, indices)

    def _materialize(self) -> None:
        """Applies the decay that sparse steps deferred, to every row of every table."""
        if not self._pending:
            return
        self._pending = False
        indices = tuple(
            i for i in range(len(self._variables)) if layout.rows(self._state, i) is not None
        )
        if not indices:
            return
        values = tuple(self._variables[i]._value for i in indices)
        new_values, self._state = self._bring_up_to_date(values, self._state, indices=indices)
        for i, value in zip(indices, new_values, strict=True):
            self._variables[i]._value = value

    def _materialize_impl(
        self, values: tuple[jax.Array, ...], state: Any, *, indices: tuple[int, ...]
    ) -> tuple[tuple[jax.Array, ...], Any]:
        part = layout.take(state, indices)
        now = layout.count(part)
        new_values, part = materialize(values, part)
        # Bringing rows up to date is not a step: every counter stays at `iterations`.
        part = layout.with_count(part, now)
        return cast(tuple[jax.Array, ...], new_values), layout.put(state, part, indices)
