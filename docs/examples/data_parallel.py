"""Data-parallel training with rmsprop_jax: batch and embedding rows split over the devices.

JAX reduces the gradients across devices; the optimizer code is the one-device code.

Run on one host (any number of devices; on CPU, fake eight with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``):

    python docs/examples/data_parallel.py --steps 20

The same script runs on several hosts: call ``jax.distributed.initialize()`` first on each
(see docs/multi_device.md); ``jax.devices()`` is then the global device list, and each process
feeds only its own slice of the batch through ``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import rmsprop_jax as rj

ROWS, WIDTH, BATCH, LOOKUPS = 256, 8, 32, 3


def make_mesh(devices: Any = None, axis_type: AxisType = AxisType.Auto) -> jax.sharding.Mesh:
    """A one-axis mesh, ``"data"``, over ``devices`` (default: all devices of all hosts).

    With ``AxisType.Explicit`` (``jax.make_mesh``'s default), run ``train`` inside
    ``jax.set_mesh(mesh)``.
    """
    devices = jax.devices() if devices is None else list(devices)
    return jax.make_mesh((len(devices),), ("data",), (axis_type,), devices=devices)


def init_params(mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
    """The table's rows split over ``"data"``; the small dense weight replicated."""
    rng = np.random.default_rng(0)
    table = rng.normal(0.0, 0.5, (ROWS, WIDTH)).astype(np.float32)
    weight = rng.normal(0.0, 0.5, (WIDTH, 1)).astype(np.float32)
    return {
        "table": jax.device_put(table, NamedSharding(mesh, P("data", None))),
        "weight": jax.device_put(weight, NamedSharding(mesh, P())),
    }


def batch(mesh: jax.sharding.Mesh, step: int) -> tuple[jax.Array, jax.Array]:
    """Step ``step``'s batch, split over ``"data"``; each process supplies its own slice."""
    rng = np.random.default_rng(1000 + step)
    indices = rng.integers(0, ROWS, (BATCH, LOOKUPS)).astype(np.int32)
    targets = np.sin(indices / 10.0).sum(axis=1).astype(np.float32)  # one value per row, summed
    per_process = BATCH // jax.process_count()
    mine = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)
    split = NamedSharding(mesh, P("data"))
    return (
        jax.make_array_from_process_local_data(split, indices[mine]),
        jax.make_array_from_process_local_data(split, targets[mine]),
    )


TX = rj.rmsprop(0.01, momentum=0.9, sparse_tables={"table": True, "weight": False})


@jax.jit
def train_step(params: Any, state: Any, indices: jax.Array, targets: jax.Array) -> Any:
    """One step on the global batch: the same code as on one device."""

    def loss_fn(rows: jax.Array, weight: jax.Array) -> jax.Array:
        predictions = (rows.sum(axis=1) @ weight)[:, 0]
        return jnp.mean((predictions - targets) ** 2)  # JAX reduces over the whole batch

    loss, (table_grad, weight_grad) = rj.value_and_sparse_grad(
        loss_fn, params["table"], indices, params["weight"]
    )
    grads = {"table": table_grad, "weight": weight_grad}
    updates, state = TX.update(grads, state, params)
    return rj.apply_updates(params, updates), state, loss


def train(steps: int, mesh: jax.sharding.Mesh | None = None) -> tuple[list[float], Any]:
    """Trains for ``steps`` steps and returns the losses and the final params."""
    mesh = make_mesh() if mesh is None else mesh
    params = init_params(mesh)
    state = jax.jit(TX.init)(params)  # every state array is sharded like its param
    losses = []
    for step in range(steps):
        params, state, loss = train_step(params, state, *batch(mesh, step))
        losses.append(float(loss))
    return losses, params


def main() -> None:
    """Trains from the command line and prints the first and last loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    losses, params = train(args.steps)
    print(f"{len(jax.devices())} devices; table sharding: {params['table'].sharding.spec}")
    print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
