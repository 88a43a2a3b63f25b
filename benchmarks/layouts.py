"""Many small leaves, whole training step: separate leaves against stacked leaves (scan).

The dense suite times the optimizer step alone. A user deciding how to store 2000 same-shape
layers also pays for the forward and backward passes, so this script times a whole jitted
training step (loss, gradient, RMSprop update, apply) of one model in two layouts:

- ``leaves``: 2000 separate ``[1000]`` params, the layers applied by a Python loop;
- ``stacked``: one ``[2000, 1000]`` param, the layers applied by ``lax.scan`` (what
  ``nnx.vmap`` / ``nn.scan`` build for a stack of identical layers).

Both compute the same function of the same numbers. Each layout runs with ``rj.rmsprop`` and
``optax.rmsprop`` (momentum 0.9), params and state donated; the script reports compile time
(``lower`` + ``compile``) and the median step time, and writes the "Many small leaves: whole
training step" section of ``RESULTS.md``::

    python benchmarks/layouts.py [--layers 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from _harness import cpu_model, write_section

import rmsprop_jax as rj

SECTION = "## Many small leaves: whole training step"
WIDTH, BATCH = 1000, 8


def layer(h: jax.Array, w: jax.Array) -> jax.Array:
    """One residual elementwise layer: ``h + 0.01 * tanh(h * w)``."""
    return h + 0.01 * jnp.tanh(h * w)


def loss_leaves(params: list[jax.Array], x: jax.Array) -> jax.Array:
    """The model on separate leaves: a Python loop over the layers."""
    h = x
    for w in params:
        h = layer(h, w)
    return jnp.mean(h * h)


def loss_stacked(params: jax.Array, x: jax.Array) -> jax.Array:
    """The same model on one stacked leaf: ``lax.scan`` over its first axis."""
    h, _ = jax.lax.scan(lambda h, w: (layer(h, w), None), x, params)
    return jnp.mean(h * h)


def make_step(loss: Callable[..., jax.Array], tx: optax.GradientTransformation) -> Callable:
    """A jitted training step with params and state donated."""

    def step(params: Any, state: Any, x: jax.Array) -> tuple[Any, Any, jax.Array]:
        value, grads = jax.value_and_grad(loss)(params, x)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    return jax.jit(step, donate_argnums=(0, 1))


def measure(layers: int, layout: str, name: str, repeats: int) -> dict[str, Any]:
    """Compile time, step time and final loss of one layout with one optimizer."""
    key_w, key_x = jax.random.split(jax.random.key(0))
    stacked = 1.0 + 0.1 * jax.random.normal(key_w, (layers, WIDTH))
    x = jax.random.normal(key_x, (BATCH, WIDTH))
    params: Any = stacked if layout == "stacked" else list(stacked)
    tx = (
        rj.rmsprop(1e-3, momentum=0.9)
        if name == "rj.rmsprop"
        else optax.rmsprop(1e-3, momentum=0.9, eps=1e-7)
    )
    state = tx.init(params)
    loss = loss_stacked if layout == "stacked" else loss_leaves
    start = time.perf_counter()
    compiled = make_step(loss, tx).lower(params, state, x).compile()
    compile_s = time.perf_counter() - start
    for _ in range(2):
        params, state, value = compiled(params, state, x)
    jax.block_until_ready(value)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            params, state, value = compiled(params, state, x)
        jax.block_until_ready(value)
        samples.append((time.perf_counter() - start) / 10)
    return {"compile_s": compile_s, "step_s": statistics.median(samples), "loss": float(value)}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog=f"python benchmarks/{Path(__file__).name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--layers", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    results = {}
    for layout in ("leaves", "stacked"):
        for name in ("optax.rmsprop", "rj.rmsprop"):
            r = measure(args.layers, layout, name, args.repeats)
            results[layout, name] = r
            print(
                f"{layout:>8} {name:<14} compile {r['compile_s']:7.2f} s   "
                f"step {r['step_s'] * 1e3:8.2f} ms   loss after 12 steps {r['loss']:.6f}",
                flush=True,
            )
    base = results["leaves", "optax.rmsprop"]
    lines = [
        SECTION,
        "",
        f"Produced by `python benchmarks/layouts.py` on {datetime.date.today()}: {cpu_model()}, "
        f"JAX {jax.__version__} on `{jax.default_backend()}`. A whole jitted training step "
        f"(loss, gradient, RMSprop with momentum 0.9, apply; params and state donated) of a "
        f"{args.layers}-layer model, each layer `h + 0.01 * tanh(h * w)` with a [{WIDTH}] "
        f"param, batch {BATCH}: `leaves` keeps {args.layers} separate params and loops over "
        f"them in Python; `stacked` keeps one [{args.layers}, {WIDTH}] param and runs "
        "`lax.scan`. Compile is `lower` + `compile`; step is the median of "
        f"{args.repeats} repetitions of 10 steps. Speed-ups are against optax on separate "
        "leaves.",
        "",
        "| layout | optimizer | compile (s) | step (ms) | compile speed-up | step speed-up "
        "| loss after 12 steps |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (layout, name), r in results.items():
        lines.append(
            f"| {layout} | {name} | {r['compile_s']:,.2f} | {r['step_s'] * 1e3:,.2f} "
            f"| {base['compile_s'] / r['compile_s']:,.1f}x | {base['step_s'] / r['step_s']:,.1f}x "
            f"| {r['loss']:.6f} |"
        )
    write_section(args.out / "RESULTS.md", SECTION, "\n".join(lines) + "\n")
    print(f"wrote {args.out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
