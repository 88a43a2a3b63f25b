"""Sparse step: time per RMSprop step on an embedding table when only k rows get a gradient.

One process, one machine, side by side, for tables of N rows x 64 float32:

- this library, ``rj.rmsprop(1e-3, momentum=0.9, sparse_mode=m)`` for m in keras, lazy and
  dense, plus keras mode without momentum (which defers the decay of ``ms`` with per-row
  bookkeeping), fed ``rj.SparseRows`` gradients;
- ``optax.rmsprop`` fed the densified gradient (``zeros_like(table).at[indices].add(values)``),
  what JAX users do today;
- when TensorFlow is importable, TF's ``ResourceSparseApplyRMSProp`` kernel on resource
  variables, after deduplicating the indices with ``tf.unique`` and
  ``tf.math.unsorted_segment_sum`` as tf.keras's OptimizerV2 does, in a ``tf.function``.

Each JAX step is jitted with params and optimizer state donated, so a sparse step can update the
table in place. Every step touches k rows drawn, with duplicates, from a Zipf-like distribution
whose hot rows are spread over the table; a few such batches are cycled so that consecutive steps
touch different rows. The reported time is the median over repetitions, after warm-up, of the
mean step time within a repetition.

Writes the "Sparse step" section of ``RESULTS.md`` and the plot ``sparse.png`` in ``--out``::

    python benchmarks/sparse.py [--sizes 100000 1000000 4000000] [--k 4096] [--repeats 9]
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _report import machine, write_section

import rmsprop_jax as rj

DIM = 64
LEARNING_RATE, RHO, MOMENTUM, EPSILON = 1e-3, 0.9, 0.9, 1e-7
NUM_BATCHES = 8  # distinct index batches cycled through the steps
ZIPF_EXPONENT = 1.1
SPREAD = 2_654_435_761  # Knuth's multiplicative hash: scatters the hot rows over the table
TARGET_SCALING = 1.3  # time at the largest N over time at the smallest, at most
TARGET_VS_DENSE = 100.0  # optax dense over ours at the largest N, at least
TARGET_VS_TF = 1.0  # TF over ours at every N, at least
SECTION = "## Sparse step"

# A runner takes a number of steps, runs them, and returns once they are done.
Runner = Callable[[int], None]


@dataclass
class Method:
    """One way of taking a sparse RMSprop step."""

    name: str
    label: str
    ours: bool
    make: Callable[[int, list[tuple[np.ndarray, np.ndarray]]], tuple[Runner, dict[str, Any]]]
    times: dict[int, float] = field(default_factory=dict)  # N -> seconds per step
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)  # N -> compiled-step facts


# ---------------------------------------------------------------------------------------------
# Inputs


def make_batches(n: int, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``NUM_BATCHES`` (indices, values) pairs: k Zipf-distributed rows each, duplicates kept."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(NUM_BATCHES):
        ranks = rng.zipf(ZIPF_EXPONENT, size=k).astype(np.uint64) % np.uint64(n)
        indices = ((ranks * np.uint64(SPREAD)) % np.uint64(n)).astype(np.int32)
        values = rng.standard_normal((k, DIM), dtype=np.float32)
        batches.append((indices, values))
    return batches


def unique_fraction(batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """The mean fraction of distinct rows among the k indices of a batch."""
    return float(np.mean([np.unique(idx).size / idx.size for idx, _ in batches]))


@functools.partial(jax.jit, static_argnums=0)
def _init_table(n: int) -> jax.Array:
    return jax.random.uniform(jax.random.key(0), (n, DIM), jnp.float32, -0.05, 0.05)


# ---------------------------------------------------------------------------------------------
# JAX methods


def _compiled_facts(compiled: Any, n: int) -> dict[str, Any]:
    """What the compiled step reveals about full-table work: copies and temporary memory."""
    text = compiled.as_text()
    rows = rf"[a-z]+[0-9]+\[{n}(?:,[0-9]+)*\]"  # any array with a slot per table row
    copies = len(re.findall(rf"= {rows}(?:\{{[^}}]*\}})? copy(?:-start)?\(", text))
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None
    return {"table_copies": copies, "temp_bytes": temp}


def _jax_runner(
    init: Callable[[Any], Any],
    step: Callable[..., Any],
    n: int,
    batches: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[Runner, dict[str, Any]]:
    """Compiles ``step`` with params and state donated and returns a runner over ``batches``."""
    params = {"table": _init_table(n)}
    state = init(params)
    device_batches = [(jnp.asarray(idx), jnp.asarray(val)) for idx, val in batches]
    jitted = jax.jit(step, donate_argnums=(0, 1))
    compiled = jitted.lower(params, state, *device_batches[0]).compile()
    facts = _compiled_facts(compiled, n)
    cycle = itertools.cycle(device_batches)
    carry = [params, state]

    def run(steps: int) -> None:
        params, state = carry
        for _ in range(steps):
            indices, values = next(cycle)
            params, state = compiled(params, state, indices, values)
        jax.block_until_ready((params, state))
        carry[:] = [params, state]

    return run, facts


def ours(sparse_mode: str, momentum: float) -> Callable[..., tuple[Runner, dict[str, Any]]]:
    """This library's step: SparseRows gradients, `rj.apply_updates` scatters the update rows."""

    def make(n: int, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Runner, dict]:
        tx = rj.rmsprop(
            LEARNING_RATE,
            rho=RHO,
            momentum=momentum,
            epsilon=EPSILON,
            sparse_mode=sparse_mode,  # type: ignore[arg-type]
            sparse_tables={"table": True},
        )

        def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
            grads = {"table": rj.SparseRows(indices, values, (n, DIM))}
            updates, state = tx.update(grads, state, params)
            return rj.apply_updates(params, updates), state

        return _jax_runner(tx.init, step, n, batches)

    return make


def optax_dense(n: int, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Runner, dict]:
    """``optax.rmsprop`` on the densified gradient, built inside the jitted step."""
    tx = optax.rmsprop(LEARNING_RATE, decay=RHO, eps=EPSILON, momentum=MOMENTUM)

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
        table = params["table"]
        grads = {"table": jnp.zeros_like(table).at[indices].add(values)}
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return _jax_runner(tx.init, step, n, batches)


def touch_rows(n: int, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Runner, dict]:
    """A floor, not an optimizer: read the touched rows of ms and mom, write them and the params.

    Indices are deduplicated on the host (padded with the out-of-range row ``n``), so this is only
    the memory traffic every sparse step pays, whatever its maths. It shows how much of the
    growth with N comes from cache and TLB misses on rows scattered over a bigger table.
    """
    flags = {"unique_indices": True, "indices_are_sorted": True}
    padded = []
    for indices, values in batches:
        unique = np.unique(indices)
        fill = np.full(indices.size - unique.size, n, np.int32)
        padded.append((np.concatenate([unique, fill]).astype(np.int32), values))

    def init(params: Any) -> Any:
        return tuple(jnp.zeros_like(params["table"]) for _ in range(2))

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
        ms, mom = state
        ms_rows = ms.at[indices].get(mode="fill", fill_value=0, **flags)
        mom_rows = mom.at[indices].get(mode="fill", fill_value=0, **flags)
        ms = ms.at[indices].set(RHO * ms_rows + values * values, mode="drop", **flags)
        mom = mom.at[indices].set(MOMENTUM * mom_rows + values, mode="drop", **flags)
        table = params["table"].at[indices].add(-LEARNING_RATE * mom_rows, mode="drop", **flags)
        return {"table": table}, (ms, mom)

    return _jax_runner(init, step, n, padded)


def touch_rows_deduplicated(
    n: int, batches: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[Runner, dict]:
    """The floor of a sparse step, deduplication included, for every buffer of the state.

    On the device: sum duplicate indices (the same sort + segment-sum the library uses), then
    gather and scatter the touched rows of ms, mom and the int32 per-row bookkeeping, and
    scatter-add the params' rows. No optimizer maths beyond one multiply-add per buffer.
    """
    from rmsprop_jax._sparse_update import deduplicate

    flags = {"unique_indices": True, "indices_are_sorted": True}

    def init(params: Any) -> Any:
        table = params["table"]
        return jnp.zeros_like(table), jnp.zeros_like(table), jnp.zeros((n,), jnp.int32)

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
        ms, mom, steps = state
        rows = deduplicate(rj.SparseRows(indices, values, (n, DIM)))
        index, g = rows.indices, rows.values
        ms_rows = ms.at[index].get(mode="fill", fill_value=0, **flags)
        mom_rows = mom.at[index].get(mode="fill", fill_value=0, **flags)
        steps = steps.at[index].add(1, mode="drop", **flags)
        ms = ms.at[index].set(RHO * ms_rows + g * g, mode="drop", **flags)
        mom = mom.at[index].set(MOMENTUM * mom_rows + g, mode="drop", **flags)
        table = params["table"].at[index].add(-LEARNING_RATE * mom_rows, mode="drop", **flags)
        return {"table": table}, (ms, mom, steps)

    return _jax_runner(init, step, n, batches)


# ---------------------------------------------------------------------------------------------
# TensorFlow


def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def tf_sparse(n: int, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Runner, dict]:
    """TF's ``ResourceSparseApplyRMSProp`` after OptimizerV2's deduplication, in a tf.function."""
    import tensorflow as tf

    var = tf.Variable(tf.random.uniform((n, DIM), -0.05, 0.05, tf.float32, seed=0))
    ms = tf.Variable(tf.zeros((n, DIM), tf.float32))
    mom = tf.Variable(tf.zeros((n, DIM), tf.float32))
    hyper = {
        name: tf.constant(value, tf.float32)
        for name, value in (
            ("lr", LEARNING_RATE),
            ("rho", RHO),
            ("momentum", MOMENTUM),
            ("epsilon", EPSILON),
        )
    }

    @tf.function(jit_compile=False)
    def step(indices: tf.Tensor, values: tf.Tensor) -> None:
        unique, positions = tf.unique(indices)
        summed = tf.math.unsorted_segment_sum(values, positions, tf.shape(unique)[0])
        tf.raw_ops.ResourceSparseApplyRMSProp(
            var=var.handle,
            ms=ms.handle,
            mom=mom.handle,
            grad=summed,
            indices=unique,
            use_locking=False,
            **hyper,
        )

    tf_batches = [(tf.constant(idx), tf.constant(val)) for idx, val in batches]
    first_row = tf.constant([0])
    cycle = itertools.cycle(tf_batches)

    def run(steps: int) -> None:
        for _ in range(steps):
            step(*next(cycle))
        # A gather, ordered after the updates, waits for them. A dense read (var[0, 0]) would
        # copy the whole table: sparse kernels put the variable in copy-on-read mode.
        var.sparse_read(first_row).numpy()

    return run, {}


# ---------------------------------------------------------------------------------------------
# Timing


def time_per_step(run: Runner, repeats: int, min_rep_seconds: float = 0.1) -> float:
    """Median over ``repeats`` repetitions of the mean step time, after warm-up."""
    run(2)  # warm-up: first execution, caches, allocator
    start = time.perf_counter()
    run(1)
    single = time.perf_counter() - start
    steps = max(1, min(200, int(min_rep_seconds / max(single, 1e-9))))
    if single > 0.5:  # the dense path on big tables: a few single steps are enough
        repeats = min(repeats, 3)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(steps)
        samples.append((time.perf_counter() - start) / steps)
    return statistics.median(samples)


def measure(methods: list[Method], sizes: Sequence[int], k: int, repeats: int) -> dict[int, float]:
    """Fills each method's ``times`` (and compiled-step notes); returns the unique-row fractions."""
    uniques = {}
    for n in sizes:
        batches = make_batches(n, k)
        uniques[n] = unique_fraction(batches)
        for method in methods:
            run, facts = method.make(n, batches)
            method.times[n] = time_per_step(run, repeats)
            method.notes[n] = facts
            del run
            gc.collect()
            print(f"  N={n:>9,}  {method.label:<34} {method.times[n] * 1e6:>12,.1f} us", flush=True)
    return uniques


# ---------------------------------------------------------------------------------------------
# Report


def peer_versions() -> dict[str, str]:
    """TensorFlow's version, or that it is not installed."""
    if not tensorflow_available():
        return {"tensorflow": "not installed"}
    import tensorflow as tf

    return {"tensorflow": tf.__version__}


TARGET_VS_FLOOR = 1.3  # issue 13: a step within 1.3x of its floor (dedup + gather/scatter) at 4M


def _fmt_ratio(value: float | None, target: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    met = value >= target if at_least else value <= target
    return f"{value:,.2f}x {'(met)' if met else '(**missed**)'}"


def ratios(methods: list[Method], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Per method of ours: scaling from smallest to largest N, speed-up vs optax and TF."""
    small, large = min(sizes), max(sizes)
    by_name = {method.name: method for method in methods}
    dense, tf = by_name.get("optax_dense"), by_name.get("tf_sparse")
    floor = by_name.get("floor_dedup")
    rows = []
    for method in (m for m in methods if m.ours):
        t = method.times
        rows.append(
            {
                "label": method.label,
                "scaling": t[large] / t[small] if len(sizes) > 1 else None,
                "vs_dense": dense.times[large] / t[large] if dense else None,
                "vs_tf": min(tf.times[n] / t[n] for n in sizes) if tf else None,
                "vs_floor": t[large] / floor.times[large] if floor else None,
            }
        )
    return rows


def markdown(
    methods: list[Method],
    sizes: Sequence[int],
    k: int,
    uniques: dict[int, float],
    info: dict[str, str],
    repeats: int,
) -> str:
    """The "Sparse step" section of RESULTS.md."""
    small, large = min(sizes), max(sizes)
    lines = [
        SECTION,
        "",
        f"Produced by `python benchmarks/sparse.py` on {info['date']}: {info['cpu']}, "
        f"{info['cores']} cores, JAX backend `{info['backend']}`, Python {info['python']}; "
        f"{info['versions']}. Load average when it started: {info['load']} (other work on the "
        "machine inflates the times).",
        "",
        f"One step of RMSprop (lr {LEARNING_RATE}, rho {RHO}, momentum {MOMENTUM}, epsilon "
        f"{EPSILON}) on a table of N x {DIM} float32 with k = {k} gradient rows per step, drawn "
        f"with duplicates from a Zipf({ZIPF_EXPONENT}) distribution (distinct rows per step: "
        + ", ".join(f"{uniques[n] * k:,.0f} at N={n:,}" for n in sizes)
        + "). JAX steps are jitted with params and state donated; TF runs "
        "`ResourceSparseApplyRMSProp` after `tf.unique` + `unsorted_segment_sum` in a "
        f"`tf.function`. Median of {repeats} repetitions after warm-up, microseconds per step.",
        "",
        "| method | " + " | ".join(f"N = {n:,}" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for method in methods:
        cells = " | ".join(f"{method.times[n] * 1e6:,.1f}" for n in sizes)
        lines.append(f"| {method.label} | {cells} |")
    lines += [
        "",
        "`rj keras (momentum 0.9)` and `rj lazy (momentum 0.9)` compile to the same program (with "
        "momentum, tf.keras leaves untouched rows alone), so the gap between their rows is the "
        "run-to-run noise of this machine. The floor row is the memory traffic alone: reading "
        "the touched rows of ms and mom and writing them and the params' rows; its growth with N "
        "is cache and TLB misses on rows scattered over a bigger table.",
        "",
        f"Targets for this library's modes: time at N={large:,} at most {TARGET_SCALING}x the time "
        f"at N={small:,}; at N={large:,} at least {TARGET_VS_DENSE:.0f}x faster than optax on "
        "the dense gradient; no slower than TF's sparse kernel at any N (the worst N is shown).",
        "",
        f"| method | N={large:,} / N={small:,} | optax dense / ours at N={large:,} "
        "| TF / ours, worst N |",
        "|---|---:|---:|---:|",
    ]
    for row in ratios(methods, sizes):
        lines.append(
            f"| {row['label']} | {_fmt_ratio(row['scaling'], TARGET_SCALING, False)} "
            f"| {_fmt_ratio(row['vs_dense'], TARGET_VS_DENSE, True)} "
            f"| {_fmt_ratio(row['vs_tf'], TARGET_VS_TF, True)} |"
        )
    lines += [
        "",
        f"Compiled JAX steps at N={large:,} (from `compile().as_text()` and "
        "`memory_analysis()`): `copy` ops of arrays with a slot per table row (the table, its "
        "state or the per-row bookkeeping) and the temporary buffer size.",
        "",
        "| method | N-row copies | temp bytes |",
        "|---|---:|---:|",
    ]
    for method in methods:
        facts = method.notes.get(large) or {}
        if facts:
            temp = facts.get("temp_bytes")
            temp_text = f"{temp:,}" if temp is not None else "n/a"
            lines.append(f"| {method.label} | {facts['table_copies']} | {temp_text} |")
    lines += ["", "![Sparse step: time per step vs N](sparse.png)", ""]
    return "\n".join(lines)


def plot(methods: list[Method], sizes: Sequence[int], k: int, path: Path) -> None:
    """Time per step vs N, log-log, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in methods:
        ns = sorted(method.times)
        style = "-o" if method.ours else (":" if method.name == "floor" else "--s")
        ax.loglog(ns, [method.times[n] * 1e6 for n in ns], style, label=method.label)
    ax.set_xlabel(f"table rows N ({DIM} float32 columns)")
    ax.set_ylabel("time per step (microseconds)")
    ax.set_title(f"Sparse RMSprop step, k = {k} rows per step")
    ax.set_xticks(list(sizes), [f"{n:,}" for n in sizes])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_table(methods: list[Method], sizes: Sequence[int]) -> None:
    """The results as a plain-text table on stdout."""
    header = f"{'method':<36}" + "".join(f"{f'N={n:,}':>16}" for n in sizes)
    print(header)
    print("-" * len(header))
    for method in methods:
        print(f"{method.label:<36}" + "".join(f"{method.times[n] * 1e6:>14,.1f}us" for n in sizes))
    for row in ratios(methods, sizes):
        print(
            f"{row['label']:<36} scaling {_fmt_ratio(row['scaling'], TARGET_SCALING, False)}, "
            f"vs optax dense {_fmt_ratio(row['vs_dense'], TARGET_VS_DENSE, True)}, "
            f"vs TF (worst N) {_fmt_ratio(row['vs_tf'], TARGET_VS_TF, True)}, "
            f"vs its floor (largest N) {_fmt_ratio(row['vs_floor'], TARGET_VS_FLOOR, False)}"
        )


def all_methods(with_tf: bool) -> list[Method]:
    """The methods compared, ours first."""
    methods = [
        Method("keras", "rj keras (momentum 0.9)", True, ours("keras", MOMENTUM)),
        Method("lazy", "rj lazy (momentum 0.9)", True, ours("lazy", MOMENTUM)),
        Method("dense", "rj dense (momentum 0.9)", True, ours("dense", MOMENTUM)),
        Method("keras_nomom", "rj keras (momentum 0, deferred decay)", True, ours("keras", 0.0)),
        Method("optax_dense", "optax.rmsprop on densified gradient", False, optax_dense),
        Method("floor", "floor: touched rows' gather/scatter only", False, touch_rows),
        Method(
            "floor_dedup",
            "floor with deduplication, every buffer",
            False,
            touch_rows_deduplicated,
        ),
    ]
    if with_tf:
        methods.append(Method("tf_sparse", "TF ResourceSparseApplyRMSProp", False, tf_sparse))
    return methods


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark and writes the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 4_000_000])
    parser.add_argument("--k", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--no-tf", action="store_true", help="skip TensorFlow even if installed")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)

    info = machine(peer_versions())
    print(f"{info['cpu']}, {info['cores']} cores, load {info['load']}; {info['versions']}")
    methods = all_methods(with_tf=tensorflow_available() and not args.no_tf)
    uniques = measure(methods, sizes, args.k, args.repeats)
    print()
    print_table(methods, sizes)

    args.out.mkdir(parents=True, exist_ok=True)
    write_section(
        args.out / "RESULTS.md",
        SECTION,
        markdown(methods, sizes, args.k, uniques, info, args.repeats),
    )
    plot(methods, sizes, args.k, args.out / "sparse.png")
    print(f"\nwrote {args.out / 'RESULTS.md'} and {args.out / 'sparse.png'}")


if __name__ == "__main__":
    main()
