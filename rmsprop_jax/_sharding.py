"""Optimizer state that follows the sharding of the params, under ``jax.jit`` and outside it.

A buffer built from nothing but a shape (``jnp.full(param.shape, ...)``) carries no sharding:
outside jit it lands on one device, and under jit XLA is free to replicate it. The helpers here
build every state buffer from its param instead, so the state takes the param's sharding in each
of JAX's sharding modes:

- outside jit, from the param's concrete ``NamedSharding`` (or a ``jax.ShapeDtypeStruct``'s);
- under jit on a mesh with explicit axes (``jax.make_mesh``'s default), from the sharding in the
  param's type (``jax.typeof(param).sharding``);
- under jit on a mesh with automatic axes, by tying the buffer to its param with
  ``jax.experimental.shard_alike`` so that XLA's sharding propagation gives both the same sharding.

Per-row bookkeeping (one entry per table row) is sharded like the table's rows, and state that
has no param of its own (the step counters) is replicated over the params' mesh. So every state
leaf is a global array on the params' mesh: under ``jax.distributed`` none is a process-local
array, which checkpointing libraries refuse to save from several processes. Nothing here moves
data between devices: each helper only states where a new buffer lives.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.shard_alike import shard_alike
from jax.sharding import NamedSharding, PartitionSpec

from ._validation import is_tracer

__all__ = [
    "filled_like",
    "full_of_type",
    "gather_sharding",
    "refill",
    "replicated_like",
    "replicated_on_mesh",
    "rows_like",
    "scatter_sharding",
    "typed_sharding",
    "unsplit_rows",
]


def typed_sharding(x: Any) -> NamedSharding | None:
    """The sharding in the type of traced ``x`` when its mesh has explicit axes, else None."""
    if not is_tracer(x):
        return None
    sharding = getattr(jax.typeof(x), "sharding", None)
    if not isinstance(sharding, NamedSharding) or sharding.mesh.empty:
        return None
    if not sharding.mesh.are_all_axes_explicit:
        return None
    return sharding


def _concrete_sharding(x: Any) -> NamedSharding | None:
    """The ``NamedSharding`` of a concrete array or ``ShapeDtypeStruct`` over several devices."""
    sharding = getattr(x, "sharding", None)
    if isinstance(sharding, NamedSharding) and len(sharding.device_set) > 1:
        return sharding
    return None


def _row_spec(spec: PartitionSpec) -> PartitionSpec:
    return PartitionSpec(spec[0] if len(spec) else None)


def filled_like(param: Any, value: jax.typing.ArrayLike, dtype: Any) -> jax.Array:
    """An array of ``param``'s shape filled with ``value`` in ``dtype``, sharded like ``param``.

    Args:
      param: a param (a concrete array, a tracer, or a ``jax.ShapeDtypeStruct``).
      value: the fill value.
      dtype: the dtype of the result.
    """
    if not is_tracer(param):
        return jnp.full(param.shape, value, dtype, device=_concrete_sharding(param))
    typed = typed_sharding(param)
    if typed is not None:
        return jnp.full(param.shape, value, dtype, out_sharding=typed)
    filled = jnp.full(param.shape, value, dtype)
    return shard_alike(param, filled)[1]


def rows_like(param: Any, value: jax.typing.ArrayLike, dtype: Any) -> jax.Array:
    """A vector with one entry per row of ``param``, filled with ``value``, sharded like its rows.

    Args:
      param: a table of at least one dimension (concrete, traced or a ``jax.ShapeDtypeStruct``).
      value: the fill value.
      dtype: the dtype of the result.
    """
    shape = tuple(param.shape[:1])
    if not is_tracer(param):
        sharding = _concrete_sharding(param)
        if sharding is not None:
            sharding = NamedSharding(sharding.mesh, _row_spec(sharding.spec))
        return jnp.full(shape, value, dtype, device=sharding)
    typed = typed_sharding(param)
    if typed is not None:
        rows = NamedSharding(typed.mesh, _row_spec(typed.spec))
        return jnp.full(shape, value, dtype, out_sharding=rows)
    column = param[(slice(None),) + (0,) * (param.ndim - 1)]
    return shard_alike(column, jnp.full(shape, value, dtype))[1]


def replicated_like(params: Any, value: jax.typing.ArrayLike, dtype: Any) -> jax.Array:
    """A scalar ``value`` in ``dtype``, replicated over the mesh of ``params`` (a step counter).

    Outside jit, with params on a mesh of several devices, the scalar is a global array on every
    device of that mesh, not a single-device array of this process: under ``jax.distributed`` a
    state holding it can be saved from every process (Orbax refuses process-local arrays) and
    passed to a jitted step with the params. Under jit on an explicit mesh it is replicated in
    its type; on an automatic mesh, or with params on one device, it is a plain scalar.

    Args:
      params: the params tree (or any tree whose leaves carry the mesh, e.g. per-row
        bookkeeping); ``None`` leaves are ignored.
      value: the fill value.
      dtype: the dtype of the result.
    """
    found = jax.tree.leaves(params)
    if any(is_tracer(leaf) for leaf in found):
        typed = next((s for s in map(typed_sharding, found) if s is not None), None)
        if typed is None:
            return jnp.full((), value, dtype)
        return jnp.full((), value, dtype, out_sharding=NamedSharding(typed.mesh, PartitionSpec()))
    concrete = next((s for s in map(_concrete_sharding, found) if s is not None), None)
    if concrete is None:
        return jnp.full((), value, dtype)
    return jnp.full((), value, dtype, device=NamedSharding(concrete.mesh, PartitionSpec()))


def replicated_on_mesh(params: Any, tree: Any) -> Any:
    """``tree`` with its single-device leaves replicated over the mesh of concrete ``params``.

    For state built by code outside this library (``optax.inject_hyperparams`` makes its step
    counter and hyperparameters with ``jnp.asarray``): outside jit, with params on a mesh of
    several devices, each concrete array of ``tree`` on one device becomes a global array
    replicated over that mesh (the same value on every process, as every process computes
    it). Arrays already on several devices, traced values and anything under jit are kept.
    """
    found = jax.tree.leaves(params)
    if any(is_tracer(leaf) for leaf in found):
        return tree
    concrete = next((s for s in map(_concrete_sharding, found) if s is not None), None)
    if concrete is None:
        return tree
    replicated = NamedSharding(concrete.mesh, PartitionSpec())

    def place(leaf: Any) -> Any:
        if not isinstance(leaf, jax.Array) or is_tracer(leaf):
            return leaf
        if len(leaf.sharding.device_set) > 1:
            return leaf
        return jax.device_put(np.asarray(leaf), replicated)

    return jax.tree.map(place, tree)


def full_of_type(like: Any, value: jax.typing.ArrayLike, dtype: Any) -> jax.Array:
    """``jnp.full(like.shape, value, dtype)`` with the sharding in ``like``'s type, if any.

    For abstract values under jit (``jax.eval_shape``'s ``ShapeDtypeStruct``): on a mesh with
    explicit axes the sharding is part of the type, and ``jax.lax.cond`` needs both branches to
    agree on it; on other meshes the array is left to XLA's propagation.
    """
    sharding = getattr(like, "sharding", None)
    if (
        isinstance(sharding, NamedSharding)
        and not sharding.mesh.empty
        and sharding.mesh.are_all_axes_explicit
    ):
        return jnp.full(like.shape, value, dtype, out_sharding=sharding)
    return jnp.full(like.shape, value, dtype)


def refill(like: jax.Array, value: jax.typing.ArrayLike) -> jax.Array:
    """``jnp.full_like(like, value)`` that keeps ``like``'s sharding under jit in every mode."""
    if is_tracer(like) and typed_sharding(like) is None:
        return shard_alike(like, jnp.full_like(like, value))[1]
    return jnp.full_like(like, value)


def gather_sharding(table: Any, index: Any) -> NamedSharding | None:
    """The ``out_sharding`` of ``table[index]`` for an integer array ``index``.

    Only for meshes with explicit axes (else None: XLA's sharding propagation decides). The
    gathered rows are split like ``index`` (e.g. over the batch) and like the table's other
    dimensions, and replicated over the mesh axes of the table's rows: XLA computes them with a
    masked gather on each device and an all-reduce of the gathered rows, never an all-gather of
    the table.
    """
    typed = typed_sharding(table)
    if typed is None:
        return None
    row_spec = tuple(typed.spec[1:])
    index_typed = typed_sharding(index)
    index_spec = tuple(index_typed.spec) if index_typed is not None else ()
    index_spec = (index_spec + (None,) * index.ndim)[: index.ndim]
    used = {axis for entry in row_spec if entry is not None for axis in _axes(entry)}
    if any(set(_axes(entry)) & used for entry in index_spec if entry is not None):
        index_spec = (None,) * index.ndim
    return NamedSharding(typed.mesh, PartitionSpec(*index_spec, *row_spec))


def _axes(entry: Any) -> tuple[str, ...]:
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def unsplit_rows(x: jax.Array) -> jax.Array:
    """``x`` with its first dimension not split over devices (explicit meshes only).

    A `SparseRows` gradient whose looked-up rows are split over the batch is gathered to every
    device before its indices are sorted and summed: ``k`` rows, never the table. On other
    meshes XLA's propagation inserts the same communication by itself, and ``x`` is returned
    as it is.
    """
    typed = typed_sharding(x)
    if typed is None or not len(typed.spec) or typed.spec[0] is None:
        return x
    return jax.sharding.reshard(x, NamedSharding(typed.mesh, PartitionSpec(None, *typed.spec[1:])))


def scatter_sharding(table: Any) -> NamedSharding | None:
    """The ``out_sharding`` of a scatter into ``table``: the table's own (explicit meshes only)."""
    return typed_sharding(table)
