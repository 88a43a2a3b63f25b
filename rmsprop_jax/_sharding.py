"""Optimizer state built from the params, so that it follows their sharding in and out of jit.

Outside jit a buffer takes its param's ``NamedSharding``; under jit on an explicit mesh the
sharding in its type; on an automatic mesh it is tied to its param with ``shard_alike``. Step
counters are replicated over the params' mesh (see docs/multi_device.md).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.shard_alike import shard_alike
from jax.sharding import NamedSharding, PartitionSpec

from ._validation import is_tracer


def _explicit(sharding: Any) -> NamedSharding | None:
    named = isinstance(sharding, NamedSharding) and not sharding.mesh.empty
    return sharding if named and sharding.mesh.are_all_axes_explicit else None


def typed_sharding(x: Any) -> NamedSharding | None:
    """The sharding in the type of traced ``x`` when its mesh has explicit axes, else None."""
    return _explicit(getattr(jax.typeof(x), "sharding", None)) if is_tracer(x) else None


def _concrete_sharding(x: Any) -> NamedSharding | None:  # of an array on several devices
    sharding = getattr(x, "sharding", None)
    several = isinstance(sharding, NamedSharding) and len(sharding.device_set) > 1
    return sharding if several else None


def _rows(sharding: NamedSharding) -> NamedSharding:
    spec = sharding.spec
    return NamedSharding(sharding.mesh, PartitionSpec(spec[0] if len(spec) else None))


def filled_like(
    param: Any, value: jax.typing.ArrayLike, dtype: Any, *, rows: bool = False
) -> jax.Array:
    """``jnp.full(param.shape, value, dtype)`` sharded like ``param`` (``rows``: one per row)."""
    shape = tuple(param.shape[:1]) if rows else param.shape
    fit = _rows if rows else lambda sharding: sharding
    if not is_tracer(param):
        sharding = _concrete_sharding(param)
        return jnp.full(shape, value, dtype, device=None if sharding is None else fit(sharding))
    typed = typed_sharding(param)
    if typed is not None:
        return jnp.full(shape, value, dtype, out_sharding=fit(typed))
    like = param[(slice(None),) + (0,) * (param.ndim - 1)] if rows else param
    return shard_alike(like, jnp.full(shape, value, dtype))[1]


def _replicated(params: Any) -> tuple[NamedSharding | None, bool]:
    """The replicated sharding on the mesh of ``params`` (or None), and whether they are traced."""
    found = jax.tree.leaves(params)
    traced = any(is_tracer(leaf) for leaf in found)
    found_shardings = map(typed_sharding if traced else _concrete_sharding, found)
    sharding = next((s for s in found_shardings if s is not None), None)
    return None if sharding is None else NamedSharding(sharding.mesh, PartitionSpec()), traced


def replicated_like(params: Any, value: jax.typing.ArrayLike, dtype: Any) -> jax.Array:
    """A scalar ``value`` in ``dtype`` replicated over the mesh of ``params`` (a step counter)."""
    replicated, traced = _replicated(params)
    if traced:
        return jnp.full((), value, dtype, out_sharding=replicated)
    return jnp.full((), value, dtype, device=replicated)


def replicated_on_mesh(params: Any, tree: Any) -> Any:
    """``tree`` (built by optax) with its single-device arrays replicated over ``params``' mesh."""
    replicated, traced = _replicated(params)
    if replicated is None or traced:
        return tree

    def place(leaf: Any) -> Any:
        if not isinstance(leaf, jax.Array) or is_tracer(leaf) or len(leaf.sharding.device_set) > 1:
            return leaf
        return jax.device_put(np.asarray(leaf), replicated)

    return jax.tree.map(place, tree)


def full_of_type(like: Any, value: jax.typing.ArrayLike, dtype: Any) -> jax.Array:
    """``jnp.full(like.shape, value, dtype)`` with the explicit sharding in ``like``'s type."""
    return jnp.full(
        like.shape, value, dtype, out_sharding=_explicit(getattr(like, "sharding", None))
    )


def refill(like: jax.Array, value: jax.typing.ArrayLike) -> jax.Array:
    """``jnp.full_like(like, value)`` that keeps ``like``'s sharding under jit in every mode."""
    if is_tracer(like) and typed_sharding(like) is None:
        return shard_alike(like, jnp.full_like(like, value))[1]
    return jnp.full_like(like, value)


def gather_sharding(table: Any, index: Any) -> NamedSharding | None:
    """``table[index]``'s ``out_sharding`` on an explicit mesh: ``index``'s split, rows whole."""
    typed = typed_sharding(table)
    if typed is None:
        return None

    def axes(entry: Any) -> tuple[str, ...]:
        return () if entry is None else tuple(entry) if isinstance(entry, tuple) else (entry,)

    row_spec = tuple(typed.spec[1:])
    index_typed = typed_sharding(index)
    index_spec = tuple(index_typed.spec) if index_typed is not None else ()
    index_spec = (index_spec + (None,) * index.ndim)[: index.ndim]
    used = {axis for entry in row_spec for axis in axes(entry)}
    if any(set(axes(entry)) & used for entry in index_spec):
        index_spec = (None,) * index.ndim
    return NamedSharding(typed.mesh, PartitionSpec(*index_spec, *row_spec))


def unsplit_rows(x: jax.Array) -> jax.Array:
    """``x`` with its first dimension not split over devices (explicit meshes only)."""
    typed = typed_sharding(x)
    if typed is None or not len(typed.spec) or typed.spec[0] is None:
        return x
    return jax.sharding.reshard(x, NamedSharding(typed.mesh, PartitionSpec(None, *typed.spec[1:])))


scatter_sharding = typed_sharding  # a scatter into a table keeps the table's sharding
