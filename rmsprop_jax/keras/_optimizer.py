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
from .._tree import apply_updates
from .._validation import check_bool
from ._arguments import gradient_pairs, loss_gradients, variable_list
from ._config import KWARGS, Hyperparameters, arguments_from_config, checked_kwargs, checked_weights
from ._schedules import LearningRateSchedule
from ._variable import SLOTS, Record, StateView, Variable, momentum_enabled, new_slot

__all__ = ["RMSprop"]

_FIXED = ("centered", "clipnorm", "clipvalue", "global_clipnorm", "skip_nonfinite", "generation")
_HYPER = ("learning_rate", "lr", "rho", "momentum", "epsilon", "decay")


class _Listed(list):  # type: ignore[type-arg]
    """``optimizer.variables``: a list (Keras 3) that can also be called (tf.keras)."""

    __call__ = lambda self: self  # noqa: E731


class RMSprop:
    r"""tf.keras's ``RMSprop`` for JAX, either generation: the same arguments and numbers.

    ``generation="legacy"`` (default) is TF <= 2.10's (`rmsprop_jax.rmsprop`'s
    ``convention="keras"``), ``"keras3"`` TF >= 2.11's and Keras 3's (``convention="keras3"``).
    Each variable has its own core state (its slots); each `apply_gradients` is one jitted
    update; ``init`` and ``update`` make it an ``optax`` transformation. See docs/keras.md.

    Warning:
      With ``"keras3"``, repeated indices of a `rmsprop_jax.SparseRows` are summed (tf-keras new,
      Keras 3 on JAX and torch); Keras 3 on TF adds each repeat's square to the mean square.

    Example:
      >>> import rmsprop_jax as rj
      >>> opt, var1 = rj.keras.RMSprop(learning_rate=0.1), rj.keras.Variable(10.0)
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
            warnings.warn("The `lr` argument is deprecated, use `learning_rate`.", stacklevel=2)
            learning_rate = kwargs.pop("lr")
        check_bool("skip_nonfinite", skip_nonfinite)
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string. Received: name={name!r}.")
        legacy = generation == "legacy"
        if legacy and not callable(epsilon) and not epsilon:
            epsilon = 1e-7  # tf.keras: `epsilon or backend_config.epsilon()`
        values = dict(learning_rate=learning_rate, rho=rho, momentum=momentum, epsilon=epsilon)
        values.update({"decay": kwargs.pop("decay", 0.0)} if legacy else {})
        wide = ("epsilon",) if legacy else ("rho", "momentum", "epsilon")  # Keras's Python floats
        self._hyper = Hyperparameters(values, wide)
        self.name, self.generation, self.has_momentum = name, generation, momentum_enabled(momentum)
        self._static = {k: kwargs.pop(k, None) for k in (*KWARGS[:3], "weight_decay")}  # stages
        self._static.update(centered=centered, convention="keras" if legacy else "keras3")
        # keras3's other arguments (at values that switch them off), and skip_nonfinite.
        self._modern = {**kwargs, "skip_nonfinite": skip_nonfinite}
        rmsprop(**self._static)  # validates with the core's messages
        # Per variable, the call's global norm clipping (and clipvalue before it) is the shell's.
        clipped = self._static["global_clipnorm"] is not None
        self._alone = {"global_clipnorm": None, **({"clipvalue": None} if clipped else {})}
        self._records: dict[int, Record] = {}  # id(variable) -> its slots, in creation order
        self._batches: list[list[Record]] = []  # the records each call created
        self._count = self._skipped = jnp.zeros((), jnp.int32)  # `iterations`, skipped steps
        # Weights of add_weight, hyperparameter views, separate slots of add_slot (by variable).
        self._extra, self._views, self._custom = [], {}, {}
        static = ("tables", "schedule")  # the optimizer's own buffers are donated
        self._step = jax.jit(self._update, donate_argnums=(0, 1), static_argnames=static)
        write = lambda value: setattr(self, "_count", jnp.array(value, jnp.int32))  # noqa: E731
        self.iterations = StateView("iter" if legacy else "iteration", lambda: self._count, write)

    def _core(self, h: dict[str, Any], dtype: Any = None, table: bool = False, **over: Any) -> Any:
        """`rmsprop_jax.rmsprop` of one variable, Python floats held in ``dtype`` if float64."""
        wide = lambda x: x.astype(jnp.float64 if dtype == jnp.float64 else jnp.float32)  # noqa: E731
        mom = wide(h["momentum"]) if self.has_momentum else None
        args = (h["learning_rate"], wide(h["rho"]), mom, wide(h["epsilon"]))
        static = {**self._static, **self._alone, **over}
        return rmsprop(*args, sparse_tables=True if table else None, **static)

    def _update(self, values, states, grads, h, schedule, count, skipped, *, tables):  # type: ignore[no-untyped-def]
        """One step of the call's variables: tf.keras's rate at ``count``, clipping, the core."""
        lr = jnp.asarray(schedule(count) if schedule else h["learning_rate"], jnp.float32)
        if "decay" in h:  # legacy inverse-time decay, in float32
            lr = lr / (1.0 + h["decay"] * count.astype(jnp.float32))
        clipvalue, norm = self._static["clipvalue"], self._static["global_clipnorm"]
        if norm is not None:  # over the call's gradients, after clipvalue (Keras's order)
            if clipvalue is not None:
                grads, _ = clip_by_value(clipvalue).update(grads, optax.EmptyState())
            grads, _ = clip_by_global_norm(norm, formula="tf").update(grads, optax.EmptyState())
        h, each = {**h, "learning_rate": lr}, zip(values, states, grads, tables, strict=True)  # type: ignore[arg-type]
        out = [self._core(h, v.dtype, t).update(g, s, v) for v, s, g, t in each]
        new = [apply_updates(v, u) for v, (u, _) in zip(values, out, strict=True)]
        ok = all_finite(grads).astype(jnp.int32) if self._modern["skip_nonfinite"] else 1
        keep = lambda n, o: jax.tree.map(lambda a, b: jnp.where(ok == 1, a, b), tuple(n), o)  # noqa: E731
        return keep(new, values), keep([s for _, s in out], states), count + ok, skipped + 1 - ok

    def init(self, params: optax.Params) -> optax.OptState:
        """``optax`` init (the optimizer as an ``optax`` transformation)."""
        return self._face().init(params)

    def update(self, updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        """``optax`` update, with the hyperparameters as they are when it runs (or is traced)."""
        return self._face().update(updates, state, params)

    def _face(self) -> optax.GradientTransformation:
        h, schedule = self._hyper.step_values()
        rate = {**h, "learning_rate": schedule or h["learning_rate"]}
        tx = self._core(rate, inverse_time_decay=h.get("decay", 0.0), **self._static)
        return skip_nonfinite(tx) if self._modern["skip_nonfinite"] else tx

    def __getattr__(self, name: str) -> Any:  # for names not found otherwise
        if name in _HYPER and "_hyper" in self.__dict__:
            name = "learning_rate" if name == "lr" else name
            if name not in self._hyper.settings:
                raise AttributeError(f"The {self.generation} generation has no `{name}`.")
            if isinstance(self._hyper.settings[name], LearningRateSchedule):
                return self._hyper.settings[name]
            read, write = lambda: self._hyper.value(name), lambda v: self._set_hyper(name, v)
            return self._views.setdefault(name, StateView(name, read, write))
        if name in {**self.__dict__.get("_static", {}), **self.__dict__.get("_modern", {})}:
            return {**self._static, **self._modern}[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIXED and "_static" in self.__dict__:
            raise AttributeError(
                f"`{name}` of {self.name} is fixed at construction: it decides the optimizer's "
                f"slots and stages. Build a new optimizer with {name}={value!r} instead "
                "(`RMSprop.from_config({**opt.get_config(), ...})`)."
            )
        if name in _HYPER:
            return self._set_hyper("learning_rate" if name == "lr" else name, value)
        super().__setattr__(name, value)

    def _set_hyper(self, name: str, value: Any) -> None:
        value = value.value if isinstance(value, Variable) else value
        if isinstance(value, jax.Array | np.ndarray | np.generic) and np.ndim(value) == 0:
            value = float(value)  # a plain number, as the config reports it
        if name == "momentum" and not self.has_momentum and momentum_enabled(value):
            warnings.warn(
                f"{self.name} was built without momentum (momentum=0.0), so, as in tf.keras, it "
                "has no momentum slot and this value has no effect. Build it with momentum > 0.",
                stacklevel=3,
            )
        self._hyper.set(name, value)

    @property
    def skipped_steps(self) -> int:
        """How many `apply_gradients` calls were skipped for non-finite gradients."""
        return int(self._skipped)

    def get_slot_names(self) -> list[str]:
        """The slots kept per variable, in Keras's order."""
        kept = {"ms": True, "mom": self.has_momentum, "mg": self._static["centered"]}
        return [name for name, field in SLOTS[self.generation].items() if kept[field]]

    def _register(self, variables: Sequence[Variable], tables: Sequence[bool]) -> list[Record]:
        """The variables' records: new ones made (one batch), a first sparse gradient's table."""
        new = [var for var in variables if id(var) not in self._records]
        if new and self.generation == "keras3" and self._batches:
            raise ValueError(
                f"Unknown variable: {new[0].name!r}. This optimizer can only be called for the "
                "variables it was built with (as Keras 3): `build` it with every variable first."
            )
        self._batches += [[Record(var, None) for var in new]] if new else []
        self._records.update({id(r.var): r for r in self._batches[-1]} if new else {})
        records = [self._records[id(var)] for var in variables]
        settings, h = self._hyper.settings, None  # the state's structure depends on them
        for record, table in zip(records, tables, strict=True):
            if record.state is None or (table and record.rows() is None):
                h = h or {n: jnp.float32(0.0 if callable(v) else v) for n, v in settings.items()}
                record.renew(self._core(h, record.var.dtype, table).init(record.var._value))
        return records

    def build(self, var_list: Iterable[Variable]) -> None:
        """Creates the slots of ``var_list`` without a step (e.g. before `set_weights`)."""
        variables = variable_list(list(var_list), "var_list")
        if self.generation == "legacy" or not self._batches:  # Keras 3 builds once
            self._register(variables, [False] * len(variables))

    def add_slot(self, var: Variable, slot_name: str, initializer: Any = "zeros") -> Variable:
        """Creates (or returns) slot ``slot_name`` of ``var``; another name makes a separate one."""
        (var,) = variable_list([var], "var")
        if slot_name in self.get_slot_names():
            self.build([var])
            return self.get_slot(var, slot_name)
        custom = self._custom.setdefault(id(var), {})
        if slot_name not in custom:
            name = f"{var.name}/{slot_name}"
            custom[slot_name] = new_slot(name, var.shape, var.dtype, initializer)
        return custom[slot_name]

    def get_slot(self, var: Variable, slot_name: str) -> Variable:
        """Slot ``slot_name`` of ``var``: a view of its state, brought up to date when read."""
        (var,) = variable_list([var], "var")
        record, custom = self._records.get(id(var)), self._custom.get(id(var), {})
        names = self.get_slot_names() if record else []
        if slot_name in names:
            return record.view(self.generation, slot_name)  # type: ignore[union-attr]
        if slot_name in custom:
            return custom[slot_name]
        raise KeyError(
            f"Variable {var.name!r} has no slot {slot_name!r}; it has {sorted([*names, *custom])}."
            + ("" if names else " Call `build([var])` or take a step to create its slots.")
        )

    def add_weight(
        self, name: str, shape: Any = (), dtype: Any = "float32", initializer: Any = 0.0
    ) -> Any:
        """Adds a non-slot weight (listed after the slots)."""
        self._extra.append(new_slot(name, tuple(shape), dtype, initializer))
        return self._extra[-1]

    @property
    def _row_steps(self) -> dict[int, jax.Array]:
        """Per-row bookkeeping of the sparse tables, by ``id(variable)`` (copies, to inspect)."""
        return {k: rows.copy() for k, r in self._records.items() if (rows := r.rows()) is not None}

    @property
    def variables(self) -> _Listed:
        """The weights: legacy in creation order, keras3 in ``optimizer.variables`` order."""
        names, g = self.get_slot_names(), self.generation  # keras3: one batch, built once
        slots = [r.view(g, n) for b in self._batches for n in names for r in b]
        fixed_lr = not callable(self._hyper.settings["learning_rate"])
        lr = [self.learning_rate] if g == "keras3" and fixed_lr else []
        return _Listed([self.iterations, *lr, *slots, *self._extra])

    weights = variables  # tf.keras's name

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays (the iteration count as int64 first), up to date."""
        weights = self.variables
        return [np.asarray(weights[0].numpy(), np.int64)] + [w.numpy() for w in weights[1:]]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Restores either generation's weights (see `checked_weights`); all or nothing."""
        targets, lr = list(self.variables), self._views.get("learning_rate")
        for target, value in checked_weights(self.name, targets, list(weights), lr):
            target.assign(value)

    def get_config(self) -> dict[str, Any]:
        """The config the generation's tf.keras returns, its keys in that order."""
        return self._hyper.config(self.generation, self.name, {**self._static, **self._modern})

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RMSprop:
        """The optimizer of a tf.keras or Keras 3 config, of the generation its keys name."""
        return cls(**arguments_from_config(config))

    def get_gradients(self, loss: Callable[[], Any], params: Sequence[Variable]) -> list[jax.Array]:
        """Gradients of the zero-argument ``loss``; a parameter it does not read is an error."""
        pairs = loss_gradients(loss, params)
        if unread := [var.name for grad, var in pairs if grad is None]:
            raise ValueError(
                f"Variable {unread[0]!r} has `None` for gradient: the loss does not read it. "
                "Leave it out of `params`, or use it in the loss."
            )
        return [grad for grad, _ in pairs]

    def get_updates(self, loss: Callable[[], Any], params: Sequence[Variable]) -> list[Variable]:
        """tf.keras's graph-mode ``get_updates``, run eagerly: takes the step now."""
        self.apply_gradients(list(zip(self.get_gradients(loss, params), params, strict=True)))
        return [self.iterations]

    def minimize(self, loss: Any, var_list: Any, grad_loss: Any = None, name: Any = None) -> Any:
        """One step on the zero-argument ``loss`` (``var_list`` may be a callable); `iterations`."""
        return self.apply_gradients(loss_gradients(loss, var_list, grad_loss), name=name)

    def apply_gradients(self, grads_and_vars: Iterable[Any], name: Any = None) -> Variable:
        """Applies ``(gradient, Variable)`` pairs in one jitted update; returns `iterations`."""
        pairs = gradient_pairs(grads_and_vars)
        given = [(g, var) for g, var in pairs if g is not None]
        missing = [var.name for g, var in pairs if g is None]
        if pairs and not given:
            raise ValueError(f"No gradients provided for any variable: {missing}.")
        if missing:
            message = f"Gradients do not exist for variables {missing} when minimizing the loss."
            warnings.warn(message, stacklevel=2)
        if not given:
            return self.iterations
        grads = tuple(g if is_sparse(g) else jnp.asarray(g) for g, _ in given)
        # A table defers its rows' work, except where Keras 3's momentum moves every row's weight.
        defer = self.generation == "legacy" or not self.has_momentum
        records = self._register([var for _, var in given], [is_sparse(g) and defer for g in grads])
        # In place where safe: a buffer the user may hold (or share) is copied first.
        values, states = tuple(r.donatable() for r in records), tuple(r.state for r in records)
        tables = tuple(r.rows() is not None for r in records)
        with warnings.catch_warnings():  # a pass over such a table is Keras 3's own step
            warnings.filterwarnings("ignore", ".*without per-row bookkeeping", UserWarning)
            args = (values, states, grads, *self._hyper.step_values(np), self._count, self._skipped)
            values, states, self._count, self._skipped = self._step(*args, tables=tables)
        for record, value, record.state in zip(records, values, states, strict=True):
            record.var._store(value)
        return self.iterations
