"""`RMSprop`: tf.keras's optimizer (both generations) as a thin shell over `rmsprop_jax.rmsprop`."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._alias import rmsprop
from .._clipping import clip_by_global_norm, clip_by_value
from .._skip_nonfinite import all_finite, skip_nonfinite
from .._sparse_rows import is_sparse
from .._sparse_tables import materialize
from .._updates import apply_updates
from .._validation import check_bool
from ._arguments import gradient_pairs, loss_gradients, variable_list
from ._config import KERAS3_KEYS, LEGACY_KEYS, NUMERICS, arguments_from_config, checked_kwargs
from ._config import checked_weight
from ._hyperparams import Hyperparameters, momentum_enabled
from ._schedules import LearningRateSchedule, serialize
from ._slots import Record, slot_names
from ._variable import StateView, Variable

__all__ = ["RMSprop"]

_INITIALIZERS = {"zeros": 0.0, "ones": 1.0}
_FIXED = ("centered", "clipnorm", "clipvalue", "global_clipnorm", "skip_nonfinite", "generation")


class _Listed(list):  # type: ignore[type-arg]
    """``optimizer.variables``: a list (Keras 3) that can also be called (tf.keras)."""

    def __call__(self) -> _Listed:
        return self


class RMSprop:
    r"""tf.keras's ``RMSprop`` for JAX, either generation: the same arguments and numbers.

    ``generation="legacy"`` (the default) is tf.keras's optimizer of TF <= 2.10
    (``tf_keras.optimizers.legacy.RMSprop``): `rmsprop_jax.rmsprop` with ``convention="keras"``,
    :math:`w \mathrel{-}= \eta g / (\sqrt{ms} + \epsilon)` (momentum: epsilon inside the root),
    :math:`\eta = \operatorname{lr}(t) / (1 + \text{decay}\cdot t)`; ``get_weights`` in creation
    order. ``generation="keras3"`` is ``tf.keras.optimizers.RMSprop`` of TF >= 2.11 and Keras 3
    on any backend: ``convention="keras3"``, :math:`w \mathrel{-}= \eta g / \sqrt{ms + \epsilon}`,
    with ``weight_decay`` and Keras 3's ``optimizer.variables``. `from_config` picks the
    generation from the config's keys.

    Warning:
      On `rmsprop_jax.SparseRows` with repeated indices the keras3 generation sums the repeated
      rows first (tf-keras's new optimizer, and Keras 3 on JAX and torch, which densify); Keras 3
      on the TF backend adds each repeated row's square to the mean square instead.

    Hyperparameters are attributes (``opt.learning_rate = 0.01``) and may be zero-argument
    callables, called at every step; ``learning_rate`` may be a schedule of `iterations`. Each
    variable has its own core state (its slots), made when it is first seen; each
    `apply_gradients` is one jitted update of the variables it names. It is also an ``optax``
    transformation (``init``, ``update``), for ``optax.chain`` and ``nnx.Optimizer``.

    Example:
      >>> import rmsprop_jax as rj
      >>> opt = rj.keras.RMSprop(learning_rate=0.1)
      >>> var1 = rj.keras.Variable(10.0)
      >>> step_count = opt.minimize(lambda: (var1 ** 2) / 2.0, [var1]).numpy()
      >>> var1.numpy()
      array(9.683772, dtype=float32)
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], Any] = 0.001,
        rho: float | Callable[[], Any] = 0.9,
        momentum: float | Callable[[], Any] = 0.0,
        epsilon: float | Callable[[], Any] | None = 1e-07,
        centered: bool = False,
        name: str = "RMSprop",
        *,
        generation: str = "legacy",
        skip_nonfinite: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs = checked_kwargs(generation, kwargs)
        if "lr" in kwargs:
            warnings.warn(
                "The `lr` argument is deprecated, use `learning_rate` instead.", stacklevel=2
            )
            learning_rate = kwargs.pop("lr")
        check_bool("skip_nonfinite", skip_nonfinite)
        if not isinstance(name, str):
            raise TypeError(
                f"`name` must be a string. Received: name={name!r} of type {type(name).__name__}."
            )
        legacy = generation == "legacy"
        if legacy and not callable(epsilon) and not epsilon:
            epsilon = 1e-7  # tf.keras: `epsilon or backend_config.epsilon()`
        values = {
            "learning_rate": learning_rate,
            "rho": rho,
            "momentum": momentum,
            "epsilon": epsilon,
        }
        if legacy:
            values["decay"] = kwargs.pop("decay", 0.0)
        wide = ("epsilon",) if legacy else ("rho", "momentum", "epsilon")
        self._hyper = Hyperparameters(values, wide)
        self.name, self.generation, self._skip_nonfinite = name, generation, skip_nonfinite
        self.has_momentum = momentum_enabled(momentum)
        clips = dict.fromkeys(("clipnorm", "clipvalue", "global_clipnorm"))
        self._fixed = {"centered": centered, **clips, **kwargs}
        self._check()
        self._records: dict[int, Record] = {}  # id(variable) -> its slots, in creation order
        self._batches: list[list[Record]] = []  # the records each call created
        self._count = jnp.zeros((), jnp.int32)  # `iterations`
        self._skipped = jnp.zeros((), jnp.int32)
        self._extra: list[Variable] = []
        self._views: dict[str, Any] = {}
        self._step = jax.jit(
            self._update, static_argnames=("tables", "schedule"), donate_argnums=(0, 1)
        )
        self._catch_up = jax.jit(materialize, donate_argnums=(0, 1))
        self._iterations = StateView(
            "iter" if legacy else "iteration", lambda: self._count, self._set_count
        )

    # --- the core, built from the hyperparameters' arrays ---------------------------------------

    def _core(self, h: dict[str, Any], dtype: Any, table: bool) -> optax.GradientTransformation:
        wide = jnp.float64 if dtype == jnp.float64 else jnp.float32
        f = self._fixed
        return rmsprop(
            h["learning_rate"],
            h["rho"].astype(wide),
            h["momentum"].astype(wide) if self.has_momentum else None,
            h["epsilon"].astype(wide),
            f["centered"],
            clipnorm=f["clipnorm"],
            clipvalue=None if f["global_clipnorm"] is not None else f["clipvalue"],  # see _update
            weight_decay=f.get("weight_decay"),
            convention="keras" if self.generation == "legacy" else "keras3",
            sparse_tables=True if table else None,
        )

    def _check(self) -> None:
        """Validates with `rmsprop_jax.rmsprop`'s messages, numbers as given."""
        given = {n: v for n, v in self._hyper._settings.items() if not callable(v)}
        given["momentum"] = given.get("momentum", 0.5) if self.has_momentum else None
        rmsprop(
            **given,
            **{
                k: v
                for k, v in self._fixed.items()
                if k in ("centered", "clipnorm", "clipvalue", "global_clipnorm", "weight_decay")
            },
            convention="keras",
        )

    def _rate(self, h: dict[str, Any], count: jax.Array, schedule: Any) -> jax.Array:
        """tf.keras's learning rate at step ``count``: the schedule's, then the legacy decay."""
        lr = jnp.asarray(schedule(count) if schedule else h["learning_rate"], jnp.float32)
        if "decay" in h:
            lr = lr / (1.0 + h["decay"] * count.astype(jnp.float32))
        return lr

    def _update(self, values, states, grads, h, count, skipped, *, tables, schedule):  # type: ignore[no-untyped-def]
        h = {**h, "learning_rate": self._rate(h, count, schedule)}
        if self._fixed["global_clipnorm"] is not None:  # over the call's gradients, after clipvalue
            if self._fixed["clipvalue"] is not None:
                grads, _ = clip_by_value(self._fixed["clipvalue"]).update(grads, None)
            grads, _ = clip_by_global_norm(self._fixed["global_clipnorm"]).update(grads, None)
        new_values, new_states = [], []
        for value, state, grad, table in zip(values, states, grads, tables, strict=True):
            updates, state = self._core(h, value.dtype, table).update(grad, state, value)
            new_values.append(apply_updates(value, updates))
            new_states.append(state)
        if not self._skip_nonfinite:
            return tuple(new_values), tuple(new_states), count + 1, skipped
        ok = all_finite(grads).astype(jnp.int32)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok == 1, n, o), new, old)  # noqa: E731
        return (
            keep(tuple(new_values), values),
            keep(tuple(new_states), states),
            count + ok,
            skipped + 1 - ok,
        )

    # --- the optax face -------------------------------------------------------------------

    def _face(self) -> optax.GradientTransformation:
        h, schedule = self._hyper.step_values(), self._hyper.schedule()
        lr = schedule if schedule else h["learning_rate"]
        f = {
            k: v
            for k, v in self._fixed.items()
            if k in ("centered", "clipnorm", "clipvalue", "global_clipnorm", "weight_decay")
        }
        tx = rmsprop(
            lr,
            h["rho"],
            h["momentum"] if self.has_momentum else None,
            h["epsilon"],
            decay=h.get("decay", 0.0),
            convention="keras" if self.generation == "legacy" else "keras3",
            **f,
        )
        return skip_nonfinite(tx) if self._skip_nonfinite else tx

    def init(self, params: optax.Params) -> optax.OptState:
        """``optax`` init."""
        return self._face().init(params)

    def update(
        self, updates: optax.Updates, state: optax.OptState, params: Any = None, **extra: Any
    ) -> tuple[optax.Updates, optax.OptState]:
        """``optax`` update, with the hyperparameters as they are when it runs (or is traced)."""
        return self._face().update(updates, state, params)

    def transformation(self) -> optax.GradientTransformation:
        """The ``optax`` transformation this optimizer is (its `init` and `update`)."""
        return optax.GradientTransformation(self.init, self.update)

    # --- hyperparameters and fixed settings ---------------------------------------------------

    def _hyper_view(self, name: str) -> Any:
        if name not in self._hyper._settings:
            raise AttributeError(f"The {self.generation} generation has no `{name}`.")
        if isinstance(self._hyper.setting(name), LearningRateSchedule):
            return self._hyper.setting(name)
        if name not in self._views:
            self._views[name] = StateView(
                name, lambda: self._hyper.value(name), lambda v: self._set_hyper(name, v)
            )
        return self._views[name]

    def _set_hyper(self, name: str, value: Any) -> None:
        if isinstance(value, Variable):
            value = value.value
        if isinstance(value, jax.Array | np.ndarray | np.generic) and np.ndim(value) == 0:
            value = float(value)  # a plain number, as the config reports it
        if name == "momentum" and not self.has_momentum and momentum_enabled(value):
            warnings.warn(
                f"{self.name} was built without momentum (momentum=0.0), so, as in tf.keras, it has no "
                "momentum slot and this value has no effect. Build rj.keras.RMSprop(momentum=...) "
                "with momentum > 0 (or a callable) instead.",
                stacklevel=3,
            )
        self._hyper.set(name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIXED and "_fixed" in self.__dict__:
            raise AttributeError(
                f"`{name}` of {self.name} is fixed at construction: it decides the optimizer's slots "
                f"and stages. Build a new optimizer with {name}={value!r} instead "
                "(`RMSprop.from_config({**opt.get_config(), ...})`)."
            )
        if name in ("learning_rate", "lr", "rho", "momentum", "epsilon", "decay"):
            return self._set_hyper("learning_rate" if name == "lr" else name, value)
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:  # called for names not found otherwise
        if name in ("learning_rate", "lr", "rho", "momentum", "epsilon", "decay"):
            return self._hyper_view("learning_rate" if name == "lr" else name)
        if name in self.__dict__.get("_fixed", {}):
            return self.__dict__["_fixed"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def skip_nonfinite(self) -> bool:
        """Whether steps with NaN or Inf gradients are skipped."""
        return self._skip_nonfinite

    @property
    def iterations(self) -> Variable:
        """The number of steps taken (int32, assignable)."""
        return self._iterations

    @property
    def skipped_steps(self) -> int:
        """How many `apply_gradients` calls were skipped for non-finite gradients."""
        return int(self._skipped)

    def _set_count(self, value: Any) -> None:
        self._count = jnp.array(value, jnp.int32)

    # --- variables and their slots ---------------------------------------------------------

    def get_slot_names(self) -> list[str]:
        """The slots kept per variable, in Keras's order."""
        return slot_names(self.generation, self.has_momentum, self._fixed["centered"])

    def _register(self, variables: Sequence[Variable], sparse: Sequence[bool]) -> list[Record]:
        """The variables' records; new ones made (in one batch), tables upgraded."""
        new = [var for var in variables if id(var) not in self._records]
        if new and self.generation == "keras3" and self._batches:
            raise ValueError(
                f"Unknown variable: {new[0].name!r}. This optimizer can only be called for the "
                "variables it was originally built with (as Keras 3). Call `build` with every "
                "variable first, or build a new optimizer for a new set of variables."
            )
        if new:
            self._batches.append([])
        for var in new:
            self._records[id(var)] = Record(var, None)
            self._batches[-1].append(self._records[id(var)])
        records = [self._records[id(var)] for var in variables]
        # The state's structure, not its numbers, depends on these (callables are not called).
        h = {
            n: jnp.asarray(0.0 if callable(v) else v, jnp.float32)
            for n, v in self._hyper._settings.items()
        }
        for record, table in zip(records, sparse, strict=True):
            if record.state is None or (table and not record.table):
                old, record.table = record.state, record.table or table
                state = self._core(h, record.var.dtype, record.table).init(record.var._value)
                record.state = jax.tree.map(jnp.copy, state)  # its own buffers: it is donated
                if old is not None:
                    record.take_slots(old)
        return records

    def build(self, var_list: Iterable[Variable]) -> None:
        """Creates the slots of ``var_list`` without a step (e.g. before `set_weights`)."""
        variables = variable_list(list(var_list), "var_list")
        if self.generation == "legacy" or not self._batches:
            self._register(variables, [False] * len(variables))

    def _bring_up_to_date(self, records: Iterable[Record]) -> None:
        """Applies the work sparse steps deferred on the tables' rows (not a step)."""
        for r in records:
            rows = r.rows()
            if rows is not None and bool(jnp.any(rows != optax.tree.get(r.state, "count"))):
                value = r.var._value if r.var.owns_buffer() else r.var._value.copy()
                value, r.state = self._catch_up(value, r.state)
                r.var._own(value)

    def _slot_view(self, record: Record, name: str) -> StateView:
        if name not in record.views:
            sep = "/" if self.generation == "legacy" else "_"

            def read() -> jax.Array:
                self._bring_up_to_date([record])
                return record.read(self.generation, name)

            def write(value: Any) -> None:
                self._bring_up_to_date([record])
                record.write(self.generation, {name: value})

            record.views[name] = StateView(f"{record.var.name}{sep}{name}", read, write)
        return record.views[name]

    def add_slot(self, var: Variable, slot_name: str, initializer: Any = "zeros") -> Variable:
        """Creates (or returns) slot ``slot_name`` of ``var``; another name makes a separate one."""
        (var,) = variable_list([var], "var")
        if slot_name in self.get_slot_names():
            self.build([var])
            return self.get_slot(var, slot_name)
        custom = self._custom(var)
        if slot_name not in custom:
            if isinstance(initializer, str) and initializer not in _INITIALIZERS:
                raise ValueError(
                    f"Unknown initializer {initializer!r}; supported: {sorted(_INITIALIZERS)}, a "
                    "number, an array or a callable (shape, dtype) -> array."
                )
            init = (
                _INITIALIZERS.get(initializer, initializer)
                if isinstance(initializer, str)
                else initializer
            )
            value = (
                init(var.shape, var.dtype)
                if callable(init)
                else jnp.broadcast_to(jnp.asarray(init, var.dtype), var.shape)
            )
            custom[slot_name] = Variable(value, name=f"{var.name}/{slot_name}", trainable=False)
        return custom[slot_name]

    def _custom(self, var: Variable) -> dict[str, Variable]:
        return self.__dict__.setdefault("_custom_slots", {}).setdefault(id(var), {})

    def get_slot(self, var: Variable, slot_name: str) -> Variable:
        """Slot ``slot_name`` of ``var``: a view of its state, brought up to date when read."""
        (var,) = variable_list([var], "var")
        record = self._records.get(id(var))
        names = self.get_slot_names() if record is not None else []
        if slot_name in names:
            return self._slot_view(record, slot_name)  # type: ignore[arg-type]
        if slot_name in self._custom(var):
            return self._custom(var)[slot_name]
        raise KeyError(
            f"Variable {var.name!r} has no slot {slot_name!r}; it has {sorted([*names, *self._custom(var)])}."
            + ("" if names else " Call `build([var])` or take a step to create its slots.")
        )

    def add_weight(
        self,
        name: str,
        shape: Sequence[int] = (),
        dtype: Any = jnp.float32,
        initializer: Any = "zeros",
    ) -> Variable:
        """Adds a non-slot weight (listed after the slots)."""
        init = (
            _INITIALIZERS.get(initializer, initializer)
            if isinstance(initializer, str)
            else initializer
        )
        self._extra.append(
            Variable(
                jnp.broadcast_to(jnp.asarray(init, dtype), tuple(shape)), name=name, trainable=False
            )
        )
        return self._extra[-1]

    @property
    def _row_steps(self) -> dict[int, jax.Array]:
        """Per-row bookkeeping of the sparse tables, by ``id(variable)`` (copies, for inspection)."""
        return {key: r.rows().copy() for key, r in self._records.items() if r.rows() is not None}

    # --- weights ---------------------------------------------------------------------------

    @property
    def variables(self) -> _Listed:
        """legacy: ``iter``, then each call's new slots by name (creation order); keras3:
        ``iteration``, ``learning_rate`` (a number's), then every velocity, momentum, average."""
        names = self.get_slot_names()
        if self.generation == "legacy":
            slots = [self._slot_view(r, n) for batch in self._batches for n in names for r in batch]
            return _Listed([self._iterations, *slots, *self._extra])
        rate = self._hyper.setting("learning_rate")
        lr = [] if callable(rate) else [self._hyper_view("learning_rate")]
        slots = [self._slot_view(r, n) for n in names for r in self._records.values()]
        return _Listed([self._iterations, *lr, *slots, *self._extra])

    @property
    def weights(self) -> list[Variable]:
        """Same as `variables`."""
        return self.variables

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays (the iteration count as int64 first), up to date."""
        self._bring_up_to_date(self._records.values())
        weights = self.variables
        return [np.asarray(weights[0].numpy(), np.int64)] + [w.numpy() for w in weights[1:]]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Restores `get_weights`, tf.keras's ``get_weights`` or Keras 3's ``variables``.

        Also accepts the list without the iteration count (legacy) or without the learning rate
        (tf-keras's new optimizer). All or nothing: a bad weight raises and changes nothing.
        """
        targets, weights = list(self.variables), list(weights)
        if len(weights) == len(targets) - 1:  # without the learning rate, else the count
            lr = [i for i, t in enumerate(targets) if t is self._views.get("learning_rate")]
            del targets[lr[0] if lr else 0]
        if len(weights) != len(targets):
            raise ValueError(
                f"You called `set_weights(weights)` on optimizer {self.name} with a weight list of "
                f"length {len(weights)}, but the optimizer was expecting {len(targets)} weights (or "
                f"{len(targets) - 1} without the iteration count). Call `build(var_list)` or take a "
                "step first so that the slots exist."
            )
        values = [checked_weight(t, w) for t, w in zip(targets, weights, strict=True)]
        self._bring_up_to_date(self._records.values())
        by_view = {id(v): (r, n) for r in self._records.values() for n, v in r.views.items()}
        for target, value in zip(targets, values, strict=True):
            if id(target) in by_view:
                record, name = by_view[id(target)]
                record.write(self.generation, {name: value})
            else:
                target.assign(value)

    # --- config ----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The config the generation's tf.keras returns, its keys in that order."""
        config: dict[str, Any] = {"name": self.name}
        if self.skip_nonfinite:
            config["skip_nonfinite"] = True
        legacy = self.generation == "legacy"
        for key in (LEGACY_KEYS if legacy else KERAS3_KEYS)[1:]:
            if key in self._hyper._settings:
                value = self._hyper.config_value(key)
                config[key] = serialize(value) if isinstance(value, LearningRateSchedule) else value
            elif not legacy or self._fixed[key] is not None:
                config[key] = self._fixed[key]
        for key in NUMERICS:
            config[key] = self._fixed[key] if key == "centered" else self._hyper.config_value(key)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RMSprop:
        """Builds the optimizer from a tf.keras or Keras 3 ``get_config()`` (data only): the
        config's keys say which generation wrote it, and it is that generation."""
        return cls(**arguments_from_config(config))

    # --- steps -----------------------------------------------------------------------------

    def get_gradients(self, loss: Callable[[], Any], params: Sequence[Variable]) -> list[jax.Array]:
        """Gradients of the zero-argument ``loss``; a parameter it does not read is an error."""
        pairs = loss_gradients(loss, params)
        for grad, var in pairs:
            if grad is None:
                raise ValueError(
                    f"Variable {var.name!r} has `None` for gradient: the loss does not read it. "
                    "Leave it out of `params`, or use it in the loss."
                )
        return [grad for grad, _ in pairs]

    def get_updates(self, loss: Callable[[], Any], params: Sequence[Variable]) -> list[Variable]:
        """tf.keras's graph-mode ``get_updates``, run eagerly: takes the step now."""
        self.apply_gradients(list(zip(self.get_gradients(loss, params), params, strict=True)))
        return [self.iterations]

    def minimize(
        self, loss: Callable[[], Any], var_list: Any, grad_loss: Any = None, name: str | None = None
    ) -> Variable:
        """One step on the zero-argument ``loss`` (``var_list`` may be a callable); `iterations`."""
        return self.apply_gradients(loss_gradients(loss, var_list, grad_loss), name=name)

    def apply_gradients(
        self, grads_and_vars: Iterable[tuple[Any, Variable]], name: str | None = None
    ) -> Variable:
        """Applies ``(gradient, Variable)`` pairs (dense or `rmsprop_jax.SparseRows`) in one
        jitted update; None gradients are skipped with a warning; returns `iterations`."""
        del name
        pairs = gradient_pairs(grads_and_vars)
        given = [(grad, var) for grad, var in pairs if grad is not None]
        if pairs and not given:
            raise ValueError(
                f"No gradients provided for any variable: {[var.name for _, var in pairs]}."
            )
        if not given:
            return self.iterations
        if len(given) < len(pairs):
            missing = [var.name for grad, var in pairs if grad is None]
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss.",
                stacklevel=2,
            )
        grads = tuple(
            g if isinstance(g, jax.Array) or is_sparse(g) else jnp.asarray(g) for g, _ in given
        )
        # A table defers its rows' work, except where Keras 3's momentum moves every row's weight.
        tables = [
            is_sparse(g) and (self.generation == "legacy" or not self.has_momentum) for g in grads
        ]
        records = self._register([var for _, var in given], tables)
        # In place where safe: a buffer the user may hold (or share) is copied first.
        values = tuple(
            r.var._value if r.var.owns_buffer() else r.var._value.copy() for r in records
        )
        with warnings.catch_warnings():  # a pass over such a table is Keras's own step
            warnings.filterwarnings("ignore", ".*without per-row bookkeeping", UserWarning)
            values, states, self._count, self._skipped = self._step(
                values,
                tuple(r.state for r in records),
                grads,
                self._hyper.step_values(),
                self._count,
                self._skipped,
                tables=tuple(r.table for r in records),
                schedule=self._hyper.schedule(),
            )
        for record, value, state in zip(records, values, states, strict=True):
            record.var._own(value)
            record.state = state
        return self.iterations
