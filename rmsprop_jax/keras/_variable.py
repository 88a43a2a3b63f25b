"""`Variable`: a mutable box around a JAX array, for Keras-style stateful code."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Variable"]


class Variable:
    """A named, mutable holder of a JAX array, like ``tf.Variable`` for the Keras front end.

    Arithmetic on a `Variable` reads its current value, so a Keras loss such as
    ``lambda: (var1 ** 2) / 2.0`` works as written, and `RMSprop.minimize` can differentiate it.

    Args:
      value: the initial value (anything ``jnp.asarray`` accepts).
      name: an optional name, used in messages and in slot names.

    Example:
      >>> import rmsprop_jax as rj
      >>> v = rj.keras.Variable(10.0, name="var1")
      >>> v.assign(v * 2)
      >>> v.numpy()
      array(20., dtype=float32)
    """

    def __init__(self, value: Any, name: str | None = None) -> None:
        self._value = jnp.asarray(value.value if isinstance(value, Variable) else value)
        self.name = name or "Variable"

    @property
    def value(self) -> jax.Array:
        """The current value."""
        return self._value

    @property
    def shape(self) -> tuple[int, ...]:
        """The value's shape."""
        return tuple(self._value.shape)

    @property
    def dtype(self) -> jnp.dtype:
        """The value's dtype."""
        return self._value.dtype

    def numpy(self) -> np.ndarray:
        """The current value as a NumPy array."""
        return np.asarray(self._value)

    def assign(self, value: Any) -> None:
        """Replaces the value; shape and dtype must stay the same."""
        new = jnp.asarray(value.value if isinstance(value, Variable) else value)
        if new.shape != self._value.shape:
            raise ValueError(
                f"Cannot assign a value of shape {new.shape} to variable {self.name!r} of shape "
                f"{self._value.shape}."
            )
        self._value = new.astype(self._value.dtype)

    def __jax_array__(self) -> jax.Array:
        return self._value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._value, dtype=dtype)

    def __repr__(self) -> str:
        return f"Variable(name={self.name!r}, value={self._value!r})"


def _binary(op: Callable[[Any, Any], Any], reflected: bool) -> Callable[[Variable, Any], Any]:
    def method(self: Variable, other: Any) -> Any:
        other = other.value if isinstance(other, Variable) else other
        return op(other, self.value) if reflected else op(self.value, other)

    return method


for _name, _op in {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "pow": operator.pow,
    "matmul": operator.matmul,
    "mod": operator.mod,
}.items():
    setattr(Variable, f"__{_name}__", _binary(_op, reflected=False))
    setattr(Variable, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}.items():
    setattr(Variable, f"__{_name}__", _binary(_op, reflected=False))
Variable.__neg__ = lambda self: -self.value  # type: ignore[attr-defined]
Variable.__getitem__ = lambda self, index: self.value[index]  # type: ignore[attr-defined]
