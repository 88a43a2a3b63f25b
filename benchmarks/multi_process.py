"""The same sharded training step on 1 x 8, 2 x 4 and 4 x 2 (processes x CPU devices).

Each layout runs as real processes on 127.0.0.1 joined by ``jax.distributed`` (the launcher of
tests/multiprocess/launcher.py), on one global mesh of 8 CPU devices: the data-parallel step of
docs/examples/multi_process.py with a row-sharded table, ``SparseRows`` gradients and RMSprop
with momentum. The script reports each layout's compile time and median step time as ratios to
the one-process 1 x 8 layout. All processes share this machine's cores, so the figures measure
the overhead of crossing processes (gloo collectives over loopback TCP instead of in-process
all-reduces), not a speed-up.

It also measures when XLA gathers the table: for tables of 64 to 256 rows and 96 lookups on
1 x 8 devices, whether the compiled step all-gathers the table, and the largest array any of
its collectives moves.

    python benchmarks/multi_process.py [--steps 20] [--repeats 5]

It writes the "Multi-process step" section of RESULTS.md and multi_process.png.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hlo import collectives  # noqa: E402
from tests.multiprocess import launcher  # noqa: E402

SECTION = "## Multi-process step"
LAYOUTS = [(1, 8), (2, 4), (4, 2)]
ROWS, WIDTH, BATCH, LOOKUPS = 16384, 32, 512, 4
GATHER_ROWS, GATHER_WIDTH, GATHER_BATCH, GATHER_LOOKUPS = (64, 96, 104, 112, 128, 256), 8, 32, 3


def build(rows: int, width: int, batch: int, lookups: int) -> tuple[Any, Any, Any, Any]:
    """Params, state, the jitted step and a batch function, on a mesh of every device."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import rmsprop_jax as rj

    mesh = jax.make_mesh((jax.device_count(),), ("data",), (AxisType.Auto,))
    rng = np.random.default_rng(0)
    host = {
        "table": rng.normal(0.0, 0.5, (rows, width)).astype(np.float32),
        "weight": rng.normal(0.0, 0.5, (width, 1)).astype(np.float32),
    }
    specs = {"table": P("data", None), "weight": P()}
    params = {
        k: jax.make_array_from_callback(
            v.shape, NamedSharding(mesh, specs[k]), lambda index, v=v: v[index]
        )
        for k, v in host.items()
    }
    tx = rj.rmsprop(0.01, momentum=0.9, sparse_tables={"table": True, "weight": False})
    state = tx.init(params)

    def step(params: Any, state: Any, indices: Any, targets: Any) -> Any:
        def loss_fn(rows: Any, weight: Any) -> Any:
            return jnp.mean(((rows.sum(axis=1) @ weight)[:, 0] - targets) ** 2)

        loss, (table_grad, weight_grad) = rj.value_and_sparse_grad(
            loss_fn, params["table"], indices, params["weight"]
        )
        updates, state = tx.update({"table": table_grad, "weight": weight_grad}, state, params)
        return rj.apply_updates(params, updates), state, loss

    split = NamedSharding(mesh, P("data"))
    per_process = batch // jax.process_count()
    mine = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)

    def data(k: int) -> tuple[Any, Any]:
        gen = np.random.default_rng(1000 + k)
        indices = gen.integers(0, rows, (batch, lookups)).astype(np.int32)
        targets = np.sin(indices / 10.0).sum(axis=1).astype(np.float32)
        return (
            jax.make_array_from_process_local_data(split, indices[mine]),
            jax.make_array_from_process_local_data(split, targets[mine]),
        )

    return params, state, jax.jit(step, donate_argnums=(0, 1)), data


def worker() -> None:
    """One process: compiles and times the step; the 1 x 8 process also measures gathers."""
    args = launcher.connect()
    rest = dict(zip(args.rest[::2], args.rest[1::2], strict=True))
    steps, repeats = int(rest["--steps"]), int(rest["--repeats"])
    import jax
    from jax.experimental import multihost_utils

    params, state, step, data = build(ROWS, WIDTH, BATCH, LOOKUPS)
    start = time.perf_counter()
    compiled = step.lower(params, state, *data(0)).compile()
    compile_s = time.perf_counter() - start
    batches = [data(k) for k in range(steps)]
    params, state, loss = compiled(params, state, *batches[0])  # warm-up
    jax.block_until_ready(loss)
    times = []
    for _ in range(repeats):
        multihost_utils.sync_global_devices("repeat")
        start = time.perf_counter()
        for batch in batches:
            params, state, loss = compiled(params, state, *batch)
        jax.block_until_ready((params, state, loss))
        times.append((time.perf_counter() - start) / steps)
    out: dict[str, Any] = {
        "compile_s": compile_s,
        "step_s": statistics.median(times),
        "loss": float(multihost_utils.process_allgather(loss, tiled=True)),
    }
    if jax.process_count() == 1:
        gathers = {}
        for rows in GATHER_ROWS:
            params, state, step, data = build(rows, GATHER_WIDTH, GATHER_BATCH, GATHER_LOOKUPS)
            moved = collectives(step.lower(params, state, *data(0)).compile().as_text())
            largest = max(moved, key=lambda c: c["size"])
            gathers[rows] = {
                "largest": f"{largest['op']} {largest['dtype']}{largest['shape']}",
                "table_gathered": any(
                    c["op"] == "all-gather" and c["size"] >= rows * GATHER_WIDTH for c in moved
                ),
            }
        out["gathers"] = gathers
    launcher.report(args, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import machine, write_section

    results = {}
    for processes, devices in LAYOUTS:
        reports = launcher.launch(
            __file__,
            processes,
            devices,
            ["--steps", str(args.steps), "--repeats", str(args.repeats)],
            timeout=900,
        )
        results[processes, devices] = {
            "compile_s": max(r["compile_s"] for r in reports),
            "step_s": max(r["step_s"] for r in reports),  # the step ends when the slowest does
            "loss": reports[0]["loss"],
            "gathers": reports[0].get("gathers"),
        }
        r = results[processes, devices]
        print(
            f"{processes} x {devices}: compile {r['compile_s']:.2f} s, "
            f"step {r['step_s'] * 1e3:.2f} ms"
        )
    base = results[1, 8]
    info = machine({})
    lines = [
        SECTION,
        "",
        f"Produced by `python benchmarks/multi_process.py` on {info['date']}: {info['cpu']}, "
        f"{info['cores']} cores, load {info['load']} at the end; {info['versions']}. The "
        f"data-parallel step of docs/examples/multi_process.py (a [{ROWS}, {WIDTH}] table with "
        f"rows split over 8 CPU devices, batch {BATCH} x {LOOKUPS} lookups split likewise, "
        "`SparseRows` gradients, `rj.rmsprop(0.01, momentum=0.9)`, params and state donated) "
        "run as processes x devices per process on one machine, joined by `jax.distributed` "
        f"(gloo). Step is the median of {args.repeats} repetitions of {args.steps} steps, the "
        "slowest process's. All processes share the same cores: the ratios are the overhead "
        "of crossing processes, not a speed-up.",
        "",
        "| layout | compile (s) | step (ms) | compile vs 1 x 8 | step vs 1 x 8 | last loss |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (processes, devices), r in results.items():
        lines.append(
            f"| {processes} x {devices} | {r['compile_s']:.2f} | {r['step_s'] * 1e3:.2f} | "
            f"{r['compile_s'] / base['compile_s']:.2f}x | {r['step_s'] / base['step_s']:.2f}x | "
            f"{r['loss']:.6f} |"
        )
    lines += [
        "",
        "![Multi-process step: time against one process of 8 devices](multi_process.png)",
        "",
        f"When XLA gathers the table (1 x 8 devices, {GATHER_BATCH} x {GATHER_LOOKUPS} = "
        f"{GATHER_BATCH * GATHER_LOOKUPS} lookups, width {GATHER_WIDTH}, rows split over the 8 "
        "devices): the largest array a collective of the compiled step moves.",
        "",
        "| table rows | largest collective | table all-gathered |",
        "|---:|---|---|",
    ]
    for rows, g in base["gathers"].items():
        lines.append(f"| {rows} | `{g['largest']}` | {'yes' if g['table_gathered'] else 'no'} |")
    write_section(args.out / "RESULTS.md", SECTION, "\n".join(lines) + "\n")
    plot(results, args.out / "multi_process.png")
    print(f"wrote {args.out / 'RESULTS.md'} and {args.out / 'multi_process.png'}")


def plot(results: dict[tuple[int, int], dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = results[1, 8]
    names = [f"{p} x {d}" for p, d in results]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    width = 0.38
    xs = range(len(names))
    ax.bar(
        [x - width / 2 for x in xs],
        [r["step_s"] / base["step_s"] for r in results.values()],
        width,
        label="step",
    )
    ax.bar(
        [x + width / 2 for x in xs],
        [r["compile_s"] / base["compile_s"] for r in results.values()],
        width,
        label="compile",
    )
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xticks(list(xs), names)
    ax.set_xlabel("processes x CPU devices per process (8 devices in all)")
    ax.set_ylabel("time / time on 1 x 8")
    ax.set_title("Same sharded step, one machine: cost of crossing processes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    if any(arg.startswith("--process-id") for arg in sys.argv[1:]):
        worker()
    else:
        main()
