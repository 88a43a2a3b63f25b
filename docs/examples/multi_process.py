"""Multi-process training on ``jax.distributed``: N processes on this machine, one global mesh.

Run it as the launcher (the default): it picks a free port on 127.0.0.1 and starts
``--processes`` copies of itself, each with ``--devices`` CPU devices, which meet on that port
and train one model together on a mesh of all their devices:

    python docs/examples/multi_process.py --processes 2 --devices 4 --steps 20

Each copy is a worker (``--process-id`` given), as one process per host would be on a cluster:
there, start the workers yourself with the coordinator's address (or let
``jax.distributed.initialize()`` find it on Cloud TPU, Slurm or Open MPI). The embedding table's
rows and the batch are split over all devices of all processes; the optimizer code is the
one-device code. See docs/multi_device.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROWS, WIDTH, BATCH, LOOKUPS = 256, 8, 32, 3


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One process: joins the others, trains, and returns its losses (the same on every one)."""
    import jax

    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", args.devices)  # before any other JAX call
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.processes,
        process_id=args.process_id,
        heartbeat_timeout_seconds=30,  # how long the others wait for a process that vanished
    )
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import rmsprop_jax as rj

    mesh = jax.make_mesh((jax.device_count(),), ("data",), (AxisType.Auto,))  # every device
    rng = np.random.default_rng(0)
    host = {  # every process builds only the shards it holds
        "table": rng.normal(0.0, 0.5, (ROWS, WIDTH)).astype(np.float32),
        "weight": rng.normal(0.0, 0.5, (WIDTH, 1)).astype(np.float32),
    }
    specs = {"table": P("data", None), "weight": P()}
    params = {
        name: jax.make_array_from_callback(
            value.shape, NamedSharding(mesh, specs[name]), lambda index, v=value: v[index]
        )
        for name, value in host.items()
    }
    tx = rj.rmsprop(0.01, momentum=0.9, sparse_tables={"table": True, "weight": False})
    state = tx.init(params)  # global arrays, sharded like the params, counters replicated

    @jax.jit
    def train_step(params: Any, state: Any, indices: jax.Array, targets: jax.Array) -> Any:
        def loss_fn(rows: jax.Array, weight: jax.Array) -> jax.Array:
            predictions = (rows.sum(axis=1) @ weight)[:, 0]
            return jnp.mean((predictions - targets) ** 2)

        loss, (table_grad, weight_grad) = rj.value_and_sparse_grad(
            loss_fn, params["table"], indices, params["weight"]
        )
        updates, state = tx.update({"table": table_grad, "weight": weight_grad}, state, params)
        return rj.apply_updates(params, updates), state, loss

    split = NamedSharding(mesh, P("data"))
    per_process = BATCH // jax.process_count()
    mine = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)
    losses = []
    for step in range(args.steps):
        data = np.random.default_rng(1000 + step)
        indices = data.integers(0, ROWS, (BATCH, LOOKUPS)).astype(np.int32)
        targets = np.sin(indices / 10.0).sum(axis=1).astype(np.float32)
        # each process feeds only its slice of the global batch
        params, state, loss = train_step(
            params,
            state,
            jax.make_array_from_process_local_data(split, indices[mine]),
            jax.make_array_from_process_local_data(split, targets[mine]),
        )
        losses.append(float(multihost_utils.process_allgather(loss, tiled=True)))
    params, state = jax.jit(lambda p, s: rj.materialize(p, s))(params, state)
    if args.checkpoint:  # every process writes its own shards into one absolute path
        import orbax.checkpoint as ocp

        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(Path(args.checkpoint).resolve(), {"params": params, "state": state})
    table = multihost_utils.process_allgather(params["table"], tiled=True)  # the whole table
    return {
        "process": jax.process_index(),
        "devices": [jax.process_count(), jax.local_device_count()],
        "losses": losses,
        "table_sum": float(np.sum(table, dtype=np.float64)),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(processes: int, devices: int, steps: int, checkpoint: str, timeout: float) -> list[Any]:
    """Starts the workers and returns their results; a failed or hung worker ends them all.

    Each worker runs in its own process group, so ending a group ends everything it started.
    """
    port = free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        children: list[subprocess.Popen[bytes]] = []
        try:
            for pid in range(processes):
                command = [sys.executable, __file__, f"--process-id={pid}", f"--steps={steps}"]
                command += [f"--processes={processes}", f"--devices={devices}"]
                command += [f"--coordinator=127.0.0.1:{port}", f"--checkpoint={checkpoint}"]
                with open(f"{tmp}/{pid}.out", "wb") as out, open(f"{tmp}/{pid}.err", "wb") as err:
                    children.append(
                        subprocess.Popen(
                            command, stdout=out, stderr=err, env=env, start_new_session=True
                        )
                    )
            deadline = time.monotonic() + timeout
            while not all(child.poll() == 0 for child in children):
                failed = [i for i, child in enumerate(children) if child.poll() not in (None, 0)]
                if failed or time.monotonic() > deadline:
                    i = failed[0] if failed else 0
                    why = f"exited with code {children[i].returncode}" if failed else "timed out"
                    error = Path(f"{tmp}/{i}.err").read_text(errors="replace")[-4000:]
                    raise RuntimeError(f"worker {i} {why}; all were ended. Its stderr:\n{error}")
                time.sleep(0.05)
        finally:
            for child in children:  # end every group, finished or not
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        outputs = [Path(f"{tmp}/{i}.out").read_text().splitlines() for i in range(processes)]
        return [json.loads(output[-1]) for output in outputs]  # the last line is the result


def main(steps: int = 20, processes: int = 2, devices: int = 4, checkpoint: str = "") -> list[Any]:
    """Launches the workers, prints the loss of each, and returns their results."""
    results = launch(processes, devices, steps, checkpoint, timeout=300)
    for result in results:
        losses = result["losses"]
        print(f"process {result['process']}: loss first {losses[0]:.4f}, last {losses[-1]:.4f}")
    return results


def cli() -> None:
    """The launcher, or with ``--process-id`` one worker (which prints its result as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--devices", type=int, default=4, help="CPU devices per process")
    parser.add_argument("--checkpoint", default="", help="save an Orbax checkpoint here")
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--coordinator", default="")
    args = parser.parse_args()
    if args.process_id is None:
        main(args.steps, args.processes, args.devices, args.checkpoint)
        return
    try:
        print("\n" + json.dumps(worker(args)))
    except BaseException:
        # Exit at once: a plain exit would wait for the other processes at jax.distributed's
        # shutdown barrier (shutdown_timeout_seconds, 300 s by default) and look hung.
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    cli()
