"""Keras front end: is a loop of ``rj.keras.RMSprop.apply_gradients`` as fast as a jitted step?

One process, the methods timed in turns, for two models (a few large tensors; many small ones):

- the hand-written step a JAX user writes: ``jax.jit(step, donate_argnums=(0, 1))`` around
  ``rj.rmsprop(...).update`` and ``rj.apply_updates``;
- the Keras-style loop: ``opt.apply_gradients(zip(grads, variables))`` on ``rj.keras.Variable``s;
- with ``--baseline PATH``, the same loop with the ``rmsprop_jax`` package of another checkout
  (e.g. the main branch), loaded under another name into this process, to compare versions.

All run the same maths (momentum 0.9, centered). Reports the median time per step and the
ratios, and writes the "Keras front end" section of ``RESULTS.md``::

    python benchmarks/keras_frontend.py [--repeats 7] [--steps 50] [--baseline PATH]
        [--clock wall|process] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _harness import cpu_model, write_section

import rmsprop_jax as rj

SECTION = "## Keras front end"
MODELS = {"8 x 1024x1024": [(1024, 1024)] * 8, "300 x 32x32": [(32, 32)] * 300}
HYPER = {"learning_rate": 1e-3, "momentum": 0.9, "centered": True}
HAND, LOOP, BASE = "hand-written jitted step", "rj.keras apply_gradients loop", "baseline loop"


def load_baseline(checkout: Path) -> ModuleType:
    """The ``rmsprop_jax`` package of ``checkout``, imported as ``rmsprop_jax_baseline``."""
    init = checkout / "rmsprop_jax" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "rmsprop_jax_baseline", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None, checkout
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _keras_loop(package: Any, shapes: list[tuple[int, int]], grads: list[Any]) -> Any:
    rng = np.random.default_rng(1)
    opt = package.keras.RMSprop(HYPER["learning_rate"], momentum=0.9, centered=True)
    variables = [package.keras.Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]

    def run(n: int) -> None:
        for _ in range(n):
            opt.apply_gradients(zip(grads, variables, strict=True))
        jax.block_until_ready([v.value for v in variables])

    return run


def bench_model(
    shapes: list[tuple[int, int]],
    steps: int,
    repeats: int,
    baseline: ModuleType | None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    grads = [jnp.asarray(rng.normal(size=s).astype(np.float32)) for s in shapes]

    tx = rj.rmsprop(**HYPER)
    params = [jnp.asarray(rng.normal(size=s).astype(np.float32)) for s in shapes]

    def _step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    step = jax.jit(_step, donate_argnums=(0, 1))
    box = {"params": params, "state": tx.init(params)}

    def hand_written(n: int) -> None:
        for _ in range(n):
            box["params"], box["state"] = step(box["params"], box["state"], grads)
        jax.block_until_ready(box["params"])

    methods: dict[str, Callable[[int], None]] = {
        HAND: hand_written,
        LOOP: _keras_loop(rj, shapes, grads),
    }
    if baseline is not None:
        methods[BASE] = _keras_loop(baseline, shapes, grads)
    for run in methods.values():
        run(3)  # warm-up: compile
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):  # in turns, so drifting load on the machine hits every method
        for name, run in methods.items():
            start = clock()
            run(steps)
            times[name].append((clock() - start) / steps)
    return {name: statistics.median(t) * 1e6 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog=f"python benchmarks/{Path(__file__).name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout's root")
    parser.add_argument(
        "--clock",
        choices=["wall", "process"],
        default="wall",
        help="wall time, or this process's CPU time (less sensitive to other work on a busy "
        "machine)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    baseline = None if args.baseline is None else load_baseline(args.baseline)
    results = {
        name: bench_model(shapes, args.steps, args.repeats, baseline, clock)
        for name, shapes in MODELS.items()
    }
    header = f"| model | {HAND} | {LOOP} | ratio |"
    rule = "|---|---:|---:|---:|"
    if baseline is not None:
        header += f" {BASE} (`{args.baseline}`) | loop / baseline |"
        rule += "---:|---:|"
    lines = [
        SECTION,
        "",
        f"Produced by `python benchmarks/keras_frontend.py` on {datetime.date.today()}: "
        f"{cpu_model()}, {jax.device_count()} JAX "
        f"{jax.default_backend()} device(s), jax {jax.__version__}. RMSprop with momentum 0.9, "
        f"centered; median of {args.repeats} repetitions of {args.steps} steps, taken in turns "
        f"across the methods, microseconds per step ({args.clock} clock).",
        "",
        header,
        rule,
    ]
    for name, times in results.items():
        hand, loop = times[HAND], times[LOOP]
        row = f"| {name} | {hand:,.1f} | {loop:,.1f} | {loop / hand:.2f}x |"
        report = f"{name:>16}: hand-written {hand:,.1f} us, loop {loop:,.1f} us "
        report += f"({loop / hand:.2f}x)"
        if baseline is not None:
            base = times[BASE]
            row += f" {base:,.1f} | {loop / base:.2f}x |"
            report += f", baseline loop {base:,.1f} us (loop / baseline {loop / base:.2f}x)"
        lines.append(row)
        print(report)
    section = "\n".join(lines) + "\n"
    write_section(args.out / "RESULTS.md", SECTION, section)


if __name__ == "__main__":
    main()
