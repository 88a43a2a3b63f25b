"""Keras front end: is a loop of ``rj.keras.RMSprop.apply_gradients`` as fast as a jitted step?

One process, side by side, for two models (a few large tensors; many small ones):

- the hand-written step a JAX user writes: ``jax.jit(step, donate_argnums=(0, 1))`` around
  ``rj.rmsprop(...).update`` and ``rj.apply_updates``;
- the Keras-style loop: ``opt.apply_gradients(zip(grads, variables))`` on ``rj.keras.Variable``s.

Both run the same maths (momentum 0.9, centered). Reports the median time per step and the
ratio, and writes the "Keras front end" section of ``RESULTS.md``::

    python benchmarks/keras_frontend.py [--repeats 7] [--steps 50] [--out benchmarks]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _harness import cpu_model, write_section

import rmsprop_jax as rj

SECTION = "## Keras front end"
MODELS = {"8 x 1024x1024": [(1024, 1024)] * 8, "300 x 32x32": [(32, 32)] * 300}
HYPER = {"learning_rate": 1e-3, "momentum": 0.9, "centered": True}


def _time(run: Any, steps: int, repeats: int) -> float:
    run(3)  # warm-up: compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(steps)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times) * 1e6


def bench_model(shapes: list[tuple[int, int]], steps: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    grads = [jnp.asarray(rng.normal(size=s).astype(np.float32)) for s in shapes]

    tx = rj.rmsprop(**HYPER)
    params = [jnp.asarray(rng.normal(size=s).astype(np.float32)) for s in shapes]
    state = tx.init(params)

    @jax.jit
    def _step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    step = jax.jit(_step.__wrapped__, donate_argnums=(0, 1))  # type: ignore[attr-defined]
    box = {"params": params, "state": state}

    def hand_written(n: int) -> None:
        for _ in range(n):
            box["params"], box["state"] = step(box["params"], box["state"], grads)
        jax.block_until_ready(box["params"])

    opt = rj.keras.RMSprop(HYPER["learning_rate"], momentum=0.9, centered=True)
    variables = [rj.keras.Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]

    def keras_loop(n: int) -> None:
        for _ in range(n):
            opt.apply_gradients(zip(grads, variables, strict=True))
        jax.block_until_ready([v.value for v in variables])

    return {
        "hand-written jitted step": _time(hand_written, steps, repeats),
        "rj.keras apply_gradients loop": _time(keras_loop, steps, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog=f"python benchmarks/{Path(__file__).name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    results = {
        name: bench_model(shapes, args.steps, args.repeats) for name, shapes in MODELS.items()
    }
    lines = [
        SECTION,
        "",
        f"Produced by `python benchmarks/keras_frontend.py` on {datetime.date.today()}: "
        f"{cpu_model()}, {jax.device_count()} JAX "
        f"{jax.default_backend()} device(s), jax {jax.__version__}. RMSprop with momentum 0.9, "
        "centered; median of "
        f"{args.repeats} repetitions of {args.steps} steps, microseconds per step.",
        "",
        "| model | hand-written jitted step | rj.keras apply_gradients loop | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, times in results.items():
        hand, loop = times["hand-written jitted step"], times["rj.keras apply_gradients loop"]
        lines.append(f"| {name} | {hand:,.1f} | {loop:,.1f} | {loop / hand:.2f}x |")
        print(
            f"{name:>16}: hand-written {hand:,.1f} us, apply_gradients {loop:,.1f} us, "
            f"ratio {loop / hand:.2f}x"
        )
    section = "\n".join(lines) + "\n"
    write_section(args.out / "RESULTS.md", SECTION, section)


if __name__ == "__main__":
    main()
