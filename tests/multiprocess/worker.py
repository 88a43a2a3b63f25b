"""One process of a multi-process training run; tests/test_multiprocess.py launches N of them.

Started by tests/multiprocess/launcher.py (``launch``), every process joins the global mesh of
all processes' CPU devices, trains every config of ``CONFIGS`` on a mesh with automatic axes and
on one with explicit axes, and writes a JSON report: the losses, a SHA-256 of the bytes of the
final params and state (gathered with ``process_allgather``), the final params themselves, the
collectives of the compiled step, and the checkpoint checks. Every config ends with
``rj.materialize``; the state of ``rj.inject_hyperparams(rj.rmsprop)`` is built outside jit and
checked (and saved) too.

Model: ``((table[indices].sum(1) + x @ w_rows) @ w_cols + bias`` against targets, with the
table's rows split over the mesh (its gradient a `SparseRows` from ``rj.value_and_sparse_grad``),
``w_rows`` split by rows, ``w_cols`` by columns, and ``bias`` replicated. Every process feeds its
own slice of the batch (``make_array_from_process_local_data``).

Checkpoints (Orbax, every process saving its shards): with ``--save DIR``, all configs are saved
before the first step and after ``FIRST`` steps, both are restored and compared bit for bit, and
training continues from the restored mid-run state; with ``--restore DIR``, the mid-run
checkpoint written by another topology is restored onto this one and training continues from it.
``--meshes`` and ``--configs`` (comma-separated) pick what runs. ``--die-at STEP`` makes process 1
raise at that step while the others go on into a collective (the launcher must end them and
report the error).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path
from typing import Any

from tests.hlo import collectives
from tests.multiprocess import launcher  # the launcher puts the repository on PYTHONPATH

ROWS, WIDTH, D_IN, OUT = 256, 8, 16, 16
BATCH, LOOKUPS = 32, 3
FIRST, THEN = 3, 3  # steps before the mid-run checkpoint, steps after it
TABLES = {"table": True, "w_rows": False, "w_cols": False, "bias": False}
# name: (rmsprop kwargs, init under jax.jit, SparseRows rebuilt outside jit, skip_nonfinite)
CONFIGS: dict[str, tuple[dict[str, Any], bool, bool, bool]] = {
    "keras": ({"learning_rate": 0.01}, False, False, True),
    "keras_momentum_centered": ({"momentum": 0.9, "centered": True}, True, False, False),
    "lazy_nesterov_clip": (
        {"sparse_mode": "lazy", "momentum": 0.5, "nesterov": True, "global_clipnorm": 1.0},
        False,
        True,
        False,
    ),
    "dense_momentum_centered": (
        {"sparse_mode": "dense", "momentum": 0.9, "centered": True, "learning_rate": 0.02},
        True,
        False,
        False,
    ),
}


def main() -> None:
    args = launcher.connect()
    rest = dict(zip(args.rest[::2], args.rest[1::2], strict=True))
    import jax
    import jax.numpy as jnp
    import numpy as np
    import orbax.checkpoint as ocp
    from jax.experimental import multihost_utils
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import rmsprop_jax as rj

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    assert jax.device_count() == 8, jax.device_count()
    started = time.monotonic()
    specs = {"table": P("x", None), "w_rows": P("x", None), "w_cols": P(None, "x"), "bias": P()}

    def host_params() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        return {
            "table": rng.normal(0.0, 0.5, (ROWS, WIDTH)).astype(np.float32),
            "w_rows": rng.normal(0.0, 0.3, (D_IN, WIDTH)).astype(np.float32),
            "w_cols": rng.normal(0.0, 0.3, (WIDTH, OUT)).astype(np.float32),
            "bias": rng.normal(0.0, 0.1, (OUT,)).astype(np.float32),
        }

    def global_params(mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
        """Each process builds only its own shards from the host copy."""
        return {
            name: jax.make_array_from_callback(
                value.shape, NamedSharding(mesh, specs[name]), lambda index, v=value: v[index]
            )
            for name, value in host_params().items()
        }

    def batch(mesh: jax.sharding.Mesh, step: int) -> tuple[jax.Array, ...]:
        """Step ``step``'s global batch; this process supplies only its slice of it."""
        rng = np.random.default_rng(1000 + step)
        indices = rng.integers(0, ROWS, (BATCH, LOOKUPS)).astype(np.int32)
        x = rng.normal(size=(BATCH, D_IN)).astype(np.float32)
        y = np.sin(indices.sum(axis=1, keepdims=True) / 7.0 + np.arange(OUT) / 3.0)
        per_process = BATCH // jax.process_count()
        mine = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)
        split = NamedSharding(mesh, P("x"))
        return tuple(
            jax.make_array_from_process_local_data(split, a[mine])
            for a in (indices, x, y.astype(np.float32))
        )

    def loss_and_grads(params: Any, indices: Any, x: Any, y: Any) -> Any:
        def loss_fn(rows: Any, w_rows: Any, w_cols: Any, bias: Any) -> Any:
            hidden = rows.sum(axis=1) + x @ w_rows
            # on an explicit mesh the batch keeps the "x" axis, so w_cols's columns are gathered
            split = P("x", None) if jax.sharding.get_abstract_mesh().are_all_axes_explicit else None
            out = jnp.matmul(hidden, w_cols, out_sharding=split)
            return jnp.mean((out + bias[None, :] - y) ** 2)

        loss, grads = rj.value_and_sparse_grad(
            loss_fn, params["table"], indices, params["w_rows"], params["w_cols"], params["bias"]
        )
        return loss, dict(zip(("table", "w_rows", "w_cols", "bias"), grads, strict=True))

    def gathered(tree: Any) -> list[np.ndarray]:
        return [np.asarray(a) for a in multihost_utils.process_allgather(tree, tiled=True)]

    def host_lists(params: dict[str, Any]) -> dict[str, Any]:
        return {k: v.tolist() for k, v in zip(params, gathered(list(params.values())), strict=True)}

    def digest(tree: Any) -> str:
        sha = hashlib.sha256()
        for leaf in gathered(jax.tree.leaves(tree)):
            sha.update(str(leaf.dtype).encode() + str(leaf.shape).encode() + leaf.tobytes())
        return sha.hexdigest()

    def global_leaves(tree: Any) -> list[str]:
        """Paths of state leaves that are not global arrays on all 8 devices (must be none)."""
        return [
            jax.tree_util.keystr(path)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
            if len(leaf.sharding.device_set) != jax.device_count()
        ]

    class Run:
        """One config on one mesh: its optimizer, jitted step and current params and state."""

        def __init__(self, name: str, mesh: jax.sharding.Mesh) -> None:
            kwargs, init_jit, self.eager_rows, skip = CONFIGS[name]
            tx = rj.rmsprop(sparse_tables=TABLES, **kwargs)
            self.tx = rj.skip_nonfinite(tx) if skip else tx
            self.mesh = mesh
            self.params = global_params(mesh)
            init = jax.jit(self.tx.init) if init_jit else self.tx.init
            self.state = init(self.params)
            self.losses: list[float] = []
            tx_ = self.tx

            def step(params: Any, state: Any, indices: Any, x: Any, y: Any) -> Any:
                loss, grads = loss_and_grads(params, indices, x, y)
                updates, state = tx_.update(grads, state, params)
                return rj.apply_updates(params, updates), state, loss

            def grads_only(params: Any, indices: Any, x: Any, y: Any) -> Any:
                loss, grads = loss_and_grads(params, indices, x, y)
                table = grads["table"]
                return loss, table.indices, table.values, {**grads, "table": None}

            def update(params: Any, state: Any, grads: Any) -> Any:
                updates, state = tx_.update(grads, state, params)
                return rj.apply_updates(params, updates), state

            self.step = jax.jit(step)
            self.grads_only = jax.jit(grads_only)
            self.update = jax.jit(update)
            self.materialize = jax.jit(lambda p, s: rj.materialize(p, s))

        def train(self, steps: range, die_at: int) -> None:
            for k in range(steps.start, steps.stop):
                if k == die_at and jax.process_index() == 1:
                    raise RuntimeError(f"worker 1 dies on purpose at step {k}")
                data = batch(self.mesh, k)
                if self.eager_rows:  # the SparseRows is built outside jit, from global arrays
                    loss, indices, values, grads = self.grads_only(self.params, *data)
                    grads["table"] = rj.SparseRows(indices, values, (ROWS, WIDTH))
                    self.params, self.state = self.update(self.params, self.state, grads)
                else:
                    self.params, self.state, loss = self.step(self.params, self.state, *data)
                self.losses.append(float(multihost_utils.process_allgather(loss, tiled=True)))

        def tree(self) -> dict[str, Any]:
            return {"params": self.params, "state": self.state}

        def step_collectives(self) -> list[dict[str, Any]]:
            data = batch(self.mesh, 0)
            if self.eager_rows:
                lowered = self.grads_only.lower(self.params, *data)
            else:
                lowered = self.step.lower(self.params, self.state, *data)
            return collectives(lowered.compile().as_text())

    def abstract(tree: Any) -> Any:
        return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)

    def restore(checkpointer: Any, path: Path, like: Any) -> Any:
        return checkpointer.restore(path, abstract(like))

    die_at = int(rest.get("--die-at", -1))
    save_dir = Path(rest["--save"]) if "--save" in rest else None
    restore_dir = Path(rest["--restore"]) if "--restore" in rest else None
    kinds = rest.get("--meshes", "auto,explicit").split(",")
    names = rest.get("--configs", ",".join(CONFIGS)).split(",")
    out: dict[str, Any] = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "local_devices": jax.local_device_count(),
        "collectives_implementation": jax.config.jax_cpu_collectives_implementation,
        "meshes": {},
        "inject_not_global": {},
        "inject_restored_equal": {},
    }
    checkpointer = ocp.StandardCheckpointer()
    for kind in kinds:
        axis_type = AxisType.Explicit if kind == "explicit" else AxisType.Auto
        mesh = jax.make_mesh((8,), ("x",), (axis_type,))
        section: dict[str, Any] = {}
        # An explicit mesh must be entered (JAX requires it under jit); an automatic one is not,
        # as in the recipe of docs/multi_device.md.
        with jax.set_mesh(mesh) if kind == "explicit" else contextlib.nullcontext():
            runs = {name: Run(name, mesh) for name in names}
            for name, run in runs.items():
                section[name] = {
                    "init_not_global": global_leaves(run.state),
                    "collectives": run.step_collectives(),
                }
            # optax.inject_hyperparams makes its own counter and hyperparameters
            some = runs[names[0]].params
            injected = rj.inject_hyperparams(rj.rmsprop)(learning_rate=0.01, momentum=0.9)
            injected_state = injected.init(some)
            out["inject_not_global"][kind] = global_leaves(injected_state)
            if save_dir is not None:
                first = {name: run.tree() for name, run in runs.items()}
                first["injected"] = {"params": some, "state": injected_state}
                checkpointer.save(save_dir / kind / "step0", first)
                checkpointer.wait_until_finished()
            for run in runs.values():
                run.train(range(FIRST), die_at)
            mid = {name: run.tree() for name, run in runs.items()}
            if save_dir is not None:
                checkpointer.save(save_dir / kind / "mid", mid)
                checkpointer.wait_until_finished()
            mid_digest = {name: digest(tree) for name, tree in mid.items()}
            for run in runs.values():
                run.train(range(FIRST, FIRST + THEN), die_at)
            for name, run in runs.items():
                section[name].update(
                    losses=run.losses,
                    mid_digest=mid_digest[name],
                    final_digest=digest(run.tree()),
                    state_not_global=global_leaves(run.state),
                )
                params, state = run.materialize(run.params, run.state)
                section[name].update(
                    materialized_digest=digest({"params": params, "state": state}),
                    materialized_params=host_lists(params),
                )
            if save_dir is not None:
                back = restore(checkpointer, save_dir / kind / "step0", first)
                out["inject_restored_equal"][kind] = digest(back["injected"]) == digest(
                    first["injected"]
                )
                for name in names:
                    section[name]["step0_restored_equal"] = digest(back[name]) == digest(
                        first[name]
                    )
            source = save_dir if save_dir is not None else restore_dir
            if source is not None:
                # the checkpoint holds every config: a run of fewer restores them all, as its
                # target must name every saved leaf, and continues its own
                like = {n: mid[n] if n in mid else Run(n, mesh).tree() for n in CONFIGS}
                back = restore(checkpointer, source / kind / "mid", like)
                for name, run in runs.items():
                    run.params, run.state = back[name]["params"], back[name]["state"]
                    section[name]["restored_mid_digest"] = digest(back[name])
                    section[name]["restored_not_global"] = global_leaves(run.state)
                    run.losses = []
                    run.train(range(FIRST, FIRST + THEN), -1)
                    section[name]["continued_losses"] = run.losses
                    section[name]["continued_digest"] = digest(run.tree())
                    section[name]["continued_params"] = host_lists(run.params)
        out["meshes"][kind] = section
    checkpointer.close()
    out["seconds"] = time.monotonic() - started
    launcher.report(args, out)


if __name__ == "__main__":
    main()
