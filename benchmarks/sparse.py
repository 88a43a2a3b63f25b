"""Sparse step: time per RMSprop step on an embedding table when only k rows get a gradient.

One process, one machine, side by side, for tables of N rows x 64 float32:

- this library, ``rj.rmsprop(1e-3, momentum=0.9, sparse_mode=m)`` for m in keras, lazy and
  dense, plus keras mode without momentum (which defers the decay of ``ms`` with per-row
  bookkeeping), fed ``rj.SparseRows`` gradients; and lazy mode with ``max_distinct_rows`` set
  to 1.25x the most distinct rows of the case's batches (`BOUND_MARGIN`);
- ``optax.rmsprop`` fed the densified gradient (``zeros_like(table).at[indices].add(values)``),
  what JAX users do today;
- when TensorFlow is importable, TF's ``ResourceSparseApplyRMSProp`` kernel on resource
  variables, after deduplicating the indices with ``tf.unique`` and
  ``tf.math.unsorted_segment_sum`` as tf.keras's OptimizerV2 does, in a ``tf.function``.

Each JAX step is jitted with params and optimizer state donated, so a sparse step can update the
table in place. Every step touches k rows drawn, with duplicates, from a Zipf-like distribution
whose hot rows are spread over the table; a few such batches are cycled so that consecutive steps
touch different rows. For each (N, k), the methods are built and warmed up, then timed in
rounds: a round times each method for a few steps, starting from the next method each round. A
method's time is its median over rounds; its ratio to the deduplicating floor is taken round by
round (paired), then the median, with the range of both. Where the methods do not fit in memory
together (a 4M-row table and its state take 3 GB per method), each alternates with the floor.

With ``--tf-python PY``, TF is timed by PY (a virtualenv with TensorFlow) running this script
on the same cases in a separate process, before the JAX methods.

Writes the "Sparse step" section of ``RESULTS.md``, the figures as ``results/sparse.json`` and
the plot ``sparse.png`` in ``--out`` (the harness, ``_harness.py``, times, saves and renders;
this file holds the cases, the peers and the tables)::

    python benchmarks/sparse.py [--sizes 100000 1000000 4000000] [--k 4096 65536] [--repeats 9]
    python benchmarks/sparse.py --render  # the section and plot again, from results/sparse.json
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _harness as h
import jax
import jax.numpy as jnp
import numpy as np

# optax and rmsprop_jax are imported where used: a --tf-only child's virtualenv may lack them.

DIM = 64
LEARNING_RATE, RHO, MOMENTUM, EPSILON = 1e-3, 0.9, 0.9, 1e-7
NUM_BATCHES = 8  # distinct index batches cycled through the steps
ZIPF_EXPONENT = 1.1
SPREAD = 2_654_435_761  # Knuth's multiplicative hash: scatters the hot rows over the table
TARGET_SCALING = 1.3  # time at the largest N over time at the smallest, at most
TARGET_VS_DENSE = 100.0  # optax dense over ours at the largest N, at least
TARGET_VS_TF = 1.0  # TF over ours at every N, at least
TARGET_VS_FLOOR = 1.2  # ours over the deduplicating floor at the largest N, at most (issue 19)
SECTION = "## Sparse step"
DEFAULT_SIZES = [100_000, 1_000_000, 4_000_000]
DEFAULT_K = [4096, 65536]
BOUND_MARGIN = 1.25  # max_distinct_rows of the bounded method: 1.25x the most distinct rows seen
TIMING = {"min_sample_seconds": 0.1, "slow_step_seconds": 5.0, "slow_repeats": 3}

Batches = list[tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    """A table of ``n`` rows and the index batches its steps cycle through."""

    n: int
    k: int
    unique: float = 0.0  # mean fraction of distinct rows among a batch's k indices
    batches: Batches = field(default_factory=list, repr=False)

    @property
    def key(self) -> str:
        return f"n={self.n},k={self.k}"

    def record(self) -> dict[str, Any]:
        """What the JSON keeps of the case (not its batches)."""
        return {"n": self.n, "k": self.k, "unique": self.unique}


def make_case(n: int, k: int, seed: int = 0) -> Case:
    """``NUM_BATCHES`` (indices, values) pairs: k Zipf-distributed rows each, duplicates kept."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(NUM_BATCHES):
        ranks = rng.zipf(ZIPF_EXPONENT, size=k).astype(np.uint64) % np.uint64(n)
        indices = ((ranks * np.uint64(SPREAD)) % np.uint64(n)).astype(np.int32)
        values = rng.standard_normal((k, DIM), dtype=np.float32)
        batches.append((indices, values))
    unique = float(np.mean([np.unique(idx).size / idx.size for idx, _ in batches]))
    return Case(n, k, unique, batches)


def fit_together(case: Case, count: int) -> bool:
    """Whether ``count`` methods fit in half the free memory, at four N x DIM float32 buffers
    each (the table, ms, mom, and optax's densified gradient)."""
    return count * 4 * case.n * DIM * 4 < h.free_memory() / 2


@functools.partial(jax.jit, static_argnums=0)
def _init_table(n: int) -> jax.Array:
    return jax.random.uniform(jax.random.key(0), (n, DIM), jnp.float32, -0.05, 0.05)


# ---------------------------------------------------------------------------------------------
# Peers: each makes a runner for a case


def _jax_runner(
    init: Callable[[Any], Any], step: Callable[..., Any], case: Case, batches: Batches
) -> tuple[h.Runner, dict[str, Any]]:
    """The harness's donated runner over ``batches``, with the compiled step's N-row copies."""
    rows = rf"[a-z]+[0-9]+\[{case.n}(?:,[0-9]+)*\]"  # any array with a slot per table row

    def facts(compiled: Any, state: Any) -> dict[str, Any]:
        copies = h.count_ops(compiled, rf"= {rows}(?:\{{[^}}]*\}})? copy(?:-start)?\(")
        return {"table_copies": copies, "temp_bytes": h.temp_bytes(compiled)}

    device_batches = [(jnp.asarray(idx), jnp.asarray(val)) for idx, val in batches]
    return h.donated_runner(init, step, {"table": _init_table(case.n)}, device_batches, facts)


def ours(
    sparse_mode: str, momentum: float, bounded: bool = False
) -> Callable[[Case], tuple[h.Runner, dict[str, Any]]]:
    """This library's step: SparseRows gradients, `rj.apply_updates` scatters the update rows.

    ``bounded``: the gradients carry ``max_distinct_rows``, `BOUND_MARGIN` times the most
    distinct rows of the case's batches (as a user would set it from their data), capped at k.
    """

    def make(case: Case) -> tuple[h.Runner, dict[str, Any]]:
        import rmsprop_jax as rj

        most = max(np.unique(indices).size for indices, _ in case.batches)
        bound = min(case.k, math.ceil(BOUND_MARGIN * most)) if bounded else None

        tx = rj.rmsprop(
            LEARNING_RATE,
            rho=RHO,
            momentum=momentum,
            epsilon=EPSILON,
            sparse_mode=sparse_mode,  # type: ignore[arg-type]
            sparse_tables={"table": True},
        )

        def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
            grad = rj.SparseRows(indices, values, (case.n, DIM), max_distinct_rows=bound)
            updates, state = tx.update({"table": grad}, state, params)
            return rj.apply_updates(params, updates), state

        return _jax_runner(tx.init, step, case, case.batches)

    return make


def optax_dense(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """``optax.rmsprop`` on the densified gradient, built inside the jitted step."""
    import optax

    tx = optax.rmsprop(LEARNING_RATE, decay=RHO, eps=EPSILON, momentum=MOMENTUM)

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
        table = params["table"]
        grads = {"table": jnp.zeros_like(table).at[indices].add(values)}
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return _jax_runner(tx.init, step, case, case.batches)


def touch_rows(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """A floor, not an optimizer: read the touched rows of ms and mom, write them and the params.

    Indices are deduplicated on the host (padded with the out-of-range row ``n``), so this is only
    the memory traffic every sparse step pays, whatever its maths. It shows how much of the
    growth with N comes from cache and TLB misses on rows scattered over a bigger table.
    """
    flags = {"unique_indices": True, "indices_are_sorted": True}
    padded = []
    for indices, values in case.batches:
        unique = np.unique(indices)
        fill = np.full(indices.size - unique.size, case.n, np.int32)
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

    return _jax_runner(init, step, case, padded)


def touch_rows_deduplicated(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """The floor of a sparse step, deduplication included, for every buffer of the state.

    On the device: sum duplicate indices (the same sort + segment-sum the library uses), then
    gather and scatter the touched rows of ms, mom and the int32 per-row bookkeeping, and
    scatter-add the params' rows. No optimizer maths beyond one multiply-add per buffer.
    """
    import rmsprop_jax as rj
    from rmsprop_jax._rows import deduplicate

    flags = {"unique_indices": True, "indices_are_sorted": True}

    def init(params: Any) -> Any:
        table = params["table"]
        return jnp.zeros_like(table), jnp.zeros_like(table), jnp.zeros((case.n,), jnp.int32)

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
        ms, mom, steps = state
        rows = deduplicate(rj.SparseRows(indices, values, (case.n, DIM)))
        index, g = rows.indices, rows.values
        ms_rows = ms.at[index].get(mode="fill", fill_value=0, **flags)
        mom_rows = mom.at[index].get(mode="fill", fill_value=0, **flags)
        steps = steps.at[index].add(1, mode="drop", **flags)
        ms = ms.at[index].set(RHO * ms_rows + g * g, mode="drop", **flags)
        mom = mom.at[index].set(MOMENTUM * mom_rows + g, mode="drop", **flags)
        table = params["table"].at[index].add(-LEARNING_RATE * mom_rows, mode="drop", **flags)
        return {"table": table}, (ms, mom, steps)

    return _jax_runner(init, step, case, case.batches)


def tf_sparse(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """TF's ``ResourceSparseApplyRMSProp`` after OptimizerV2's deduplication, in a tf.function."""
    import tensorflow as tf

    n = case.n
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

    tf_batches = [(tf.constant(idx), tf.constant(val)) for idx, val in case.batches]
    first_row = tf.constant([0])
    position = [0]

    def run(steps: int) -> None:
        for _ in range(steps):
            step(*tf_batches[position[0] % len(tf_batches)])
            position[0] += 1
        # A gather, ordered after the updates, waits for them. A dense read (var[0, 0]) would
        # copy the whole table: sparse kernels put the variable in copy-on-read mode.
        var.sparse_read(first_row).numpy()

    return run, {}


def all_methods(with_tf: bool) -> list[h.Method]:
    """The methods compared, ours first."""
    methods = [
        h.Method("keras", "rj keras (momentum 0.9)", ours("keras", MOMENTUM), "ours"),
        h.Method("lazy", "rj lazy (momentum 0.9)", ours("lazy", MOMENTUM), "ours"),
        h.Method("dense", "rj dense (momentum 0.9)", ours("dense", MOMENTUM), "ours"),
        h.Method(
            "lazy_bounded",
            "rj lazy (momentum 0.9), bounded",
            ours("lazy", MOMENTUM, bounded=True),
            "ours",
        ),
        h.Method(
            "keras_nomom", "rj keras (momentum 0, deferred decay)", ours("keras", 0.0), "ours"
        ),
        h.Method("optax_dense", "optax.rmsprop on densified gradient", optax_dense),
        h.Method("floor", "floor: touched rows' gather/scatter only", touch_rows, "floor"),
        h.Method(
            "floor_dedup",
            "floor with deduplication, every buffer",
            touch_rows_deduplicated,
            "floor",
        ),
    ]
    if with_tf:
        methods.append(h.Method("tf_sparse", "TF ResourceSparseApplyRMSProp", tf_sparse))
    return methods


# ---------------------------------------------------------------------------------------------
# The tables, as data


def _target(value: float | None, target: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    met = value >= target if at_least else value <= target
    return f"{value:,.2f}x {'(met)' if met else '(**missed**)'}"


def _k(k: int, cases: list[Case]) -> str:
    """What names k beside N or a method, when the run has several."""
    return f", k = {k:,}" if len({c.k for c in cases}) > 1 else ""


def _name(case: Case, cases: list[Case]) -> str:
    """A case's column header."""
    return f"N = {case.n:,}{_k(case.k, cases)}"


def ratios(methods: list[h.Method], cases: list[Case]) -> list[dict[str, Any]]:
    """Per method of ours and k: scaling from smallest to largest N, speed-up vs optax and TF,
    and the paired ratio to the deduplicating floor (of medians, for a run without rounds)."""
    dense, tf = h.by_name(methods, "optax_dense"), h.by_name(methods, "tf_sparse")
    floor = h.by_name(methods, "floor_dedup")
    rows = []
    for k in sorted({c.k for c in cases}):
        of_k = [c for c in cases if c.k == k]
        small, large = of_k[0].key, of_k[-1].key
        for method in (m for m in methods if m.group == "ours"):
            t, paired = method.times, method.ratios.get(large)
            rows.append(
                {
                    "label": method.label + _k(k, cases),
                    "scaling": t[large] / t[small] if len(of_k) > 1 else None,
                    "vs_dense": dense.times[large] / t[large] if dense else None,
                    "vs_tf": min(tf.times[c.key] / t[c.key] for c in of_k) if tf else None,
                    "vs_floor": statistics.median(paired)
                    if paired
                    else (t[large] / floor.times[large] if floor else None),
                }
            )
    return rows


def tables(methods: list[h.Method], cases: list[Case]) -> dict[str, tuple[list[h.Column], list]]:
    """Each table of the section: its columns and its rows."""
    small, large = cases[0], cases[-1]
    label = h.Column("method", lambda m: m.label, left=True)

    def us(case: Case) -> Callable[[h.Method], str]:
        return lambda m: h.spread(
            [t * 1e6 for t in m.samples.get(case.key) or [m.times[case.key]]], ",.1f", ""
        )

    def paired(case: Case) -> Callable[[h.Method], str]:
        return lambda m: h.spread(m.ratios[case.key]) if case.key in m.ratios else "n/a"

    def temp(m: h.Method) -> str:
        value = m.notes[large.key].get("temp_bytes")
        return "n/a" if value is None else f"{value:,}"

    return {
        "times": ([label, *(h.Column(_name(c, cases), us(c)) for c in cases)], methods),
        "paired": (
            [label, *(h.Column(_name(c, cases), paired(c)) for c in cases)],
            [m for m in methods if m.ratios],
        ),
        "targets": (
            [
                h.Column("method", lambda r: r["label"], left=True),
                h.Column(
                    f"N={large.n:,} / N={small.n:,}",
                    lambda r: _target(r["scaling"], TARGET_SCALING, False),
                ),
                h.Column(
                    f"optax dense / ours at N={large.n:,}",
                    lambda r: _target(r["vs_dense"], TARGET_VS_DENSE, True),
                ),
                h.Column("TF / ours, worst N", lambda r: _target(r["vs_tf"], TARGET_VS_TF, True)),
                h.Column(
                    f"ours / dedup floor at N={large.n:,}",
                    lambda r: _target(r["vs_floor"], TARGET_VS_FLOOR, False),
                ),
            ],
            ratios(methods, cases),
        ),
        "compiled": (
            [
                label,
                h.Column("N-row copies", lambda m: str(m.notes[large.key]["table_copies"])),
                h.Column("temp bytes", temp),
            ],
            [m for m in methods if m.notes.get(large.key)],
        ),
    }


def _timing(cases: list[Case], run: dict[str, Any]) -> str:
    """How the run timed its methods: in rounds (together or in pairs), or, before rounds, one
    method after the other."""
    if "turns" not in run:
        return (
            f"Median of {run['repeats']} repetitions after warm-up, microseconds per step; the "
            "methods were timed one after the other (a run from before rounds: no spread, no "
            "paired ratios)."
        )
    pairs = ", ".join(_name(c, cases) for c in cases if run["turns"][c.key] == "in pairs")
    return (
        f"Timed in {run['repeats']} rounds after warm-up: a round takes one sample of each method "
        "(its mean step time over a few steps), starting from the next method each round, so a "
        "change in the machine's load hits them alike. "
        + (
            f"At {pairs} the methods do not fit in memory together: each takes turns with the "
            "deduplicating floor alone (built once for the case). "
            if pairs
            else "All methods of a case are built together. "
        )
        + "Median over rounds (min–max), microseconds per step."
    )


def markdown(methods: list[h.Method], cases: list[Case], run: dict[str, Any]) -> str:
    """The "Sparse step" section of RESULTS.md."""
    small, large = cases[0].n, cases[-1].n
    ks = sorted({c.k for c in cases})
    parts = {name: h.table(*part) for name, part in tables(methods, cases).items()}
    load = run.get("load")
    return h.section(
        SECTION,
        h.produced_by(run["command"], run["machine"], run["provisional"]),
        f"Load average (1, 5 and 15 minutes) at the start of the run: {load[0]}; at its end: "
        f"{load[1]}."
        if load
        else None,
        f"One step of RMSprop (lr {LEARNING_RATE}, rho {RHO}, momentum {MOMENTUM}, epsilon "
        f"{EPSILON}) on a table of N x {DIM} float32 with k = {' or '.join(map(str, ks))} "
        f"gradient rows per step, drawn with duplicates from a Zipf({ZIPF_EXPONENT}) distribution "
        "(distinct rows per step: "
        + ("; " if len(ks) > 1 else ", ").join(
            f"{c.unique * c.k:,.0f} at N={c.n:,}{_k(c.k, cases)}" for c in cases
        )
        + "). JAX steps are jitted with params and state donated; TF runs "
        "`ResourceSparseApplyRMSProp` after `tf.unique` + `unsorted_segment_sum` in a "
        "`tf.function`. " + _timing(cases, run),
        parts["times"],
        run.get("tf"),
        "Each method over the deduplicating floor, paired: its sample over the floor's in the "
        "same round, median over rounds (min–max).\n\n" + parts["paired"]
        if any(m.ratios for m in methods)
        else None,
        "`rj keras (momentum 0.9)` and `rj lazy (momentum 0.9)` compile to the same program (with "
        "momentum, tf.keras leaves untouched rows alone), so the gap between their rows is the "
        "run-to-run noise of this machine. The floor row is the memory traffic alone: reading "
        "the touched rows of ms and mom and writing them and the params' rows; its growth with N "
        "is cache and TLB misses on rows scattered over a bigger table.",
        f"`rj lazy (momentum 0.9), bounded` gives its gradients `max_distinct_rows` = "
        f"{BOUND_MARGIN}x the most distinct rows of the case's batches: a step works on that "
        "many deduplicated slots instead of k (a batch over the bound takes more turns)."
        if h.by_name(methods, "lazy_bounded")
        else None,
        f"Targets for this library's modes: time at N={large:,} at most {TARGET_SCALING}x the time "
        f"at N={small:,}; at N={large:,} at least {TARGET_VS_DENSE:.0f}x faster than optax on "
        "the dense gradient; no slower than TF's sparse kernel at any N (the worst N is shown); "
        f"at N={large:,} at most {TARGET_VS_FLOOR}x the deduplicating floor (the paired median, "
        "for a run in rounds).",
        parts["targets"],
        f"Compiled JAX steps at N={large:,}, k={cases[-1].k:,} (from `compile().as_text()` and "
        "`memory_analysis()`): `copy` ops of arrays with a slot per table row (the table, its "
        "state or the per-row bookkeeping) and the temporary buffer size.",
        parts["compiled"],
        h.image("Sparse step: time per step vs N", "sparse.png"),
    )


def plot(methods: list[h.Method], cases: list[Case], out: Any) -> None:
    """``sparse.png``: time per step vs N, log-log, one line per method (and k)."""
    ks = sorted({c.k for c in cases})
    lines = []
    for m in methods:
        style = "-o" if m.group == "ours" else (":" if m.group == "floor" else "--s")
        for k in ks:
            of_k = [c for c in cases if c.k == k and c.key in m.times]
            times = [m.times[c.key] * 1e6 for c in of_k]
            lines.append((m.label + _k(k, cases), [c.n for c in of_k], times, style))
    h.loglog(
        lines,
        xticks=sorted({c.n for c in cases}),
        xlabel=f"table rows N ({DIM} float32 columns)",
        ylabel="time per step (microseconds)",
        title=f"Sparse RMSprop step, k = {' or '.join(map(str, ks))} rows per step",
        path=out / "sparse.png",
    )


def tf_elsewhere(python: str, args: argparse.Namespace) -> tuple[h.Method, str]:
    """TF's method timed by ``python`` (a virtualenv with TensorFlow) running this script with
    ``--tf-only`` on the same cases, and the sentence that says so."""
    with tempfile.TemporaryDirectory() as out:
        sizes, ks = [str(n) for n in args.sizes], [str(k) for k in args.k]
        script = str(Path(__file__).resolve())
        command = [python, script, "--tf-only", "--sizes", *sizes, "--k", *ks]
        subprocess.run([*command, "--repeats", str(args.repeats), "--out", out], check=True)
        run, [method] = h.load(h.data_path(Path(out), "sparse.py"))
    return method, (
        f"TF was timed by `{python}` ({run['machine']['versions']}) in a separate process, "
        "before the JAX methods: its samples are not interleaved with theirs, so it has no "
        "paired ratio, and the TF target compares medians."
    )


def tf_sentence(
    args: argparse.Namespace, with_tf: bool, elsewhere: tuple[h.Method, str] | None
) -> str | None:
    """What the section says of TF: nothing when it ran in the rounds, else where or why not."""
    if elsewhere:
        return elsewhere[1]
    if with_tf:
        return None
    why = "was skipped (`--no-tf`)" if args.no_tf else "was not installed for this run"
    return f"TensorFlow {why}: no TF row, and the TF target is n/a."


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark (or renders a saved run) and writes the report."""
    cli = h.parser("sparse.py", __doc__ or "", repeats=9)
    cli.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    cli.add_argument("--k", type=int, nargs="+", default=DEFAULT_K)
    cli.add_argument("--no-tf", action="store_true", help="skip TensorFlow even if installed")
    cli.add_argument("--tf-python", help="time TF with this Python (a virtualenv with TF)")
    cli.add_argument("--tf-only", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    data = h.data_path(args.out, "sparse.py")
    if args.render:
        run, methods = h.load(data)
        cases = [Case(**record) for record in run["cases"]]
    else:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        info = h.machine(h.versions({"tensorflow": "tensorflow"}))
        print(f"{info['cpu']}, {info['cores']} cores, load {load}; {info['versions']}")
        cases = [make_case(n, k) for k in sorted(args.k) for n in sorted(args.sizes)]
        # First, so that a failure there costs no JAX timing.
        elsewhere = (
            tf_elsewhere(args.tf_python, args) if args.tf_python and not args.no_tf else None
        )
        with_tf = args.tf_only or (h.available("tensorflow") and not args.no_tf and not elsewhere)
        methods = [m for m in all_methods(with_tf) if m.name == "tf_sparse" or not args.tf_only]
        timing = h.Timing(args.repeats, **TIMING)
        turns = h.measure(methods, cases, timing, floor="floor_dedup", fits=fit_together)
        if elsewhere:
            methods.append(elsewhere[0])
        reduced = sorted(args.sizes) != DEFAULT_SIZES or sorted(args.k) != DEFAULT_K
        run = h.run_record(
            "sparse.py", argv, info, args.repeats, reduced or args.repeats < 9 or args.no_tf, cases
        )
        end = " ".join(f"{x:.2f}" for x in os.getloadavg())
        run |= {"turns": turns, "tf": tf_sentence(args, with_tf, elsewhere), "load": [load, end]}
        h.save(data, run, methods)
        if args.tf_only:
            return
    columns, rows = tables(methods, cases)["times"]
    print("\n" + h.text_table(columns, rows))
    h.finish(
        args.out, SECTION, markdown(methods, cases, run), lambda: plot(methods, cases, args.out)
    )


if __name__ == "__main__":
    main()
