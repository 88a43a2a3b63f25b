"""`Variable`: a mutable box that owns a JAX array, for Keras-style stateful code; slot records."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._sparse_tables import materialize
from .._validation import static_value

# Sets of the ids of the Variables a loss reads while `RMSprop.minimize` evaluates it (a tape).
READS: list[set[int]] = []


def _copy(value: Any) -> jax.Array:
    """A fresh device buffer holding ``value`` (keeps a jax.Array's sharding)."""
    value = value.value if isinstance(value, Variable) else value
    return value.copy() if isinstance(value, jax.Array) else jnp.array(value)


@jax.tree_util.register_pytree_with_keys_class
class Variable:
    """A named, mutable holder of a JAX array, like ``tf.Variable`` for the Keras front end.

    It copies the value it is given and every value assigned (a step may update it in place
    while it `owns_buffer`), behaves like the array it holds, and is a pytree that defines
    ``__jax_array__``, so every ``jnp`` function, ``jax.jit`` and ``jax.grad`` take it.

    Example:
      >>> import jax.numpy as jnp, rmsprop_jax as rj
      >>> v = rj.keras.Variable(10.0, name="var1")
      >>> _ = v.assign(v * 2)
      >>> float(v), float(jnp.sin(v) ** 2 + jnp.cos(v) ** 2)
      (20.0, 1.0)
    """

    shape: tuple[int, ...]  # these four read the value's (set below the class)
    dtype: Any
    ndim: int
    size: int
    _value: jax.Array

    def __init__(self, value: Any, name: str | None = None, trainable: bool = True) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string or None. Received: name={name!r}.")
        self._value, self._shared = _copy(value), False
        self.name, self.trainable = name or "Variable", bool(trainable)

    def tree_flatten_with_keys(self) -> tuple[tuple[tuple[Any, jax.Array], ...], tuple[Any, ...]]:
        return ((jax.tree_util.GetAttrKey("value"), self.value),), (self.name, self.trainable)

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: Any) -> Variable:
        """Pytree protocol: a new Variable around the child (not copied: it may be a tracer)."""
        var = object.__new__(cls)
        vars(var).update(_value=children[0], _shared=True, name=aux[0], trainable=aux[1])
        return var

    @property
    def value(self) -> jax.Array:
        """The current value (the Variable's own buffer; `read_value` returns a copy)."""
        for seen in READS:
            seen.add(id(self))
        self._shared = True  # the caller may keep it, or an array sharing its buffer
        return self._value

    def read_value(self) -> jax.Array:
        """A copy of the current value, which later updates of the Variable do not touch."""
        return _copy(self.value)

    def numpy(self) -> np.ndarray:
        """The current value as a (new) NumPy array."""
        for seen in READS:
            seen.add(id(self))
        return np.array(self._value)

    def _store(self, new: jax.Array) -> Variable:
        self._value, self._shared = new.astype(self._value.dtype), False
        return self

    def _checked(self, value: Any, method: str) -> jax.Array:
        new = jnp.asarray(value.value if isinstance(value, Variable) else value)
        if new.shape != self._value.shape:
            raise ValueError(
                f"Variable.{method}: cannot give variable {self.name!r} of shape "
                f"{self._value.shape} a value of shape {new.shape}. Pass a value of shape "
                f"{self._value.shape}."
            )
        return new

    def assign(self, value: Any) -> Variable:
        """Replaces the value (copied; shape must match, cast to the Variable's dtype)."""
        return self._store(_copy(self._checked(value, "assign")))

    def assign_add(self, delta: Any) -> Variable:
        """Adds ``delta`` to the value."""
        return self._store(self._value + self._checked(delta, "assign_add"))

    def assign_sub(self, delta: Any) -> Variable:
        """Subtracts ``delta`` from the value."""
        return self._store(self._value - self._checked(delta, "assign_sub"))

    def owns_buffer(self) -> bool:
        """Whether only this Variable can hold its buffer (a step may donate it), until `value`."""
        return not (isinstance(self, StateView) or self._shared)


for _name in ("shape", "dtype", "ndim", "size"):
    setattr(Variable, _name, property(lambda self, n=_name: getattr(self._value, n)))
for _fn in (float, int, bool, len, iter, abs, operator.index, operator.neg, operator.pos):
    setattr(Variable, f"__{_fn.__name__}__", lambda self, f=_fn: f(self.value))
Variable.__invert__ = lambda self: ~self.value  # type: ignore[attr-defined]
Variable.__jax_array__ = lambda self: self.value  # type: ignore[attr-defined]
Variable.__array__ = lambda self, dtype=None, copy=None: np.asarray(self.value, dtype)  # type: ignore[attr-defined]
Variable.__repr__ = lambda self: f"Variable(name={self.name!r}, value={self._value!r})"  # type: ignore[method-assign]
Variable.__hash__ = object.__hash__  # identity, as the optimizer keys its slots by variable
Variable.__getitem__ = lambda self, index: self.value[index]  # type: ignore[attr-defined]


def _binary(op: Callable[[Any, Any], Any], reflected: bool) -> Callable[[Variable, Any], Any]:
    def method(self: Variable, other: Any) -> Any:
        other = other.value if isinstance(other, Variable) else other
        return op(other, self.value) if reflected else op(self.value, other)

    return method


for _name in "add sub mul truediv floordiv pow matmul mod and or xor lt le gt ge eq ne".split():
    _op = getattr(operator, f"__{_name}__")
    setattr(Variable, f"__{_name}__", _binary(_op, reflected=False))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):  # comparisons are not reflected
        setattr(Variable, f"__r{_name}__", _binary(_op, reflected=True))


@jax.tree_util.register_pytree_with_keys_class
class StateView(Variable):
    """A `Variable` whose value lives elsewhere (an optimizer's state); reading returns a copy."""

    def __init__(self, name: str, read: Callable[[], Any], write: Callable[[Any], None]) -> None:
        self.name, self.trainable, self._read, self._write = name, False, read, write

    @property  # type: ignore[override]
    def _value(self) -> jax.Array:  # type: ignore[override]
        return self._read().copy()  # it survives the next step's in-place update

    @_value.setter
    def _value(self, new: jax.Array) -> None:
        self._write(new)

    # Pytree protocol: a plain Variable (a view is not rebuilt from leaves).
    tree_unflatten = Variable.tree_unflatten  # type: ignore[assignment]


_INITIALIZERS = {"zeros": 0.0, "ones": 1.0}
_MATERIALIZE = jax.jit(materialize, donate_argnums=(0, 1))  # the record's own buffers

# Keras slot name -> core state field, in the order each generation lists its slots.
SLOTS = {
    "legacy": {"rms": "ms", "momentum": "mom", "mg": "mg"},
    "keras3": {"velocity": "ms", "momentum": "mom", "average_gradient": "mg"},
}


def momentum_enabled(momentum: Any) -> bool:
    """Whether the momentum slot exists, by tf.keras's rule: a callable, an array, a number > 0."""
    number = static_value(momentum) or 0.0  # None for a callable, an array, a non-number
    return callable(momentum) or isinstance(momentum, jax.Array) or number > 0


def new_slot(name: str, shape: tuple[int, ...], dtype: Any, initializer: Any) -> Variable:
    """A separate slot or weight from "zeros", "ones", a number, an array or a callable."""
    if isinstance(initializer, str):
        if initializer not in _INITIALIZERS:
            raise ValueError(
                f"Unknown initializer {initializer!r}; supported: {sorted(_INITIALIZERS)}, a "
                "number, an array or a callable (shape, dtype) -> array."
            )
        initializer = _INITIALIZERS[initializer]
    value = initializer(shape, dtype) if callable(initializer) else initializer
    return Variable(jnp.broadcast_to(jnp.asarray(value, dtype), shape), name, trainable=False)


@dataclasses.dataclass(eq=False)
class Record:
    """One variable's slots: the core state of ``rmsprop(...).init(var)``, and their views."""

    var: Variable
    state: Any
    views: dict[str, StateView] = dataclasses.field(default_factory=dict)

    def renew(self, state: Any) -> None:
        """A new state (its own buffers: steps donate it), with the old one's slots if any."""
        old = self.state
        kept = {f: v for f in SLOTS["legacy"].values() if (v := optax.tree.get(old, f)) is not None}
        self.state = optax.tree.set(jax.tree.map(jnp.copy, state), **kept)

    def view(self, generation: str, name: str) -> StateView:
        """Slot ``name`` as a Variable: read brought up to date, written into the state."""
        field, sep = SLOTS[generation][name], "/" if generation == "legacy" else "_"

        def write(value: jax.Array) -> None:  # cast, copied, up to date: `Variable._store`
            self.state = optax.tree.set(self.state, **{field: value})

        read = lambda: optax.tree.get(self.bring_up_to_date(), field)  # noqa: E731
        return self.views.setdefault(name, StateView(f"{self.var.name}{sep}{name}", read, write))

    def rows(self) -> jax.Array | None:
        """A table's per-row bookkeeping (int32 per row); None if the state keeps no table."""
        return optax.tree.get(self.state, "row_steps")

    def donatable(self) -> jax.Array:
        """The buffer if nothing else can hold it (`Variable.owns_buffer`), else a copy."""
        return self.var._value if self.var.owns_buffer() else self.var._value.copy()

    def bring_up_to_date(self) -> Any:
        """Applies the work sparse steps deferred (`rmsprop_jax.materialize`); returns the state."""
        rows = self.rows()
        if rows is not None and bool(jnp.any(rows != optax.tree.get(self.state, "count"))):
            value, self.state = _MATERIALIZE(self.donatable(), self.state)
            self.var._store(value)
        return self.state
