"""Dense step suite: time, bandwidth, compile time and memory of one RMSprop training step.

One process, one machine, side by side, for three parameter trees:

- one 50M-parameter leaf (a bandwidth test);
- a ResNet-50-like tree (161 leaves, 25.6M parameters: conv kernels, batch-norm scales and
  biases, the classifier);
- 2000 leaves of 1000 parameters (a many-small-tensors model: per-leaf overhead);

in three settings (plain; momentum 0.9; centered with momentum 0.9), with float32 and bfloat16
params, for these peers:

- this library, ``rj.rmsprop(1e-3, momentum=..., centered=..., state_dtype=jnp.float32)``;
- ``optax.rmsprop`` with the matching options (it keeps its state in the param dtype);
- ``torch.optim.RMSprop`` with ``foreach=True`` and ``foreach=False``, when torch is installed;
- ``tf_keras.optimizers.legacy.RMSprop.apply_gradients`` in a ``tf.function``, when TensorFlow
  and tf_keras are installed;
- the hardware floor: a jitted, donated, fused elementwise pass that reads and writes the bytes a
  perfect update must move (params read and written, each float32 state buffer read and written,
  grads read) and does nothing else.

A JAX step is ``updates, state = tx.update(grads, state, params)`` and ``apply_updates``, jitted
with params and state donated, the gradients fixed arrays passed in. The reported time is the
median over repetitions, after warm-up, of the mean step time within a repetition; the
repetitions of a case's methods are taken in turns, so load changes hit them alike. Every method's
achieved bandwidth is the floor's byte count divided by its time. For ours and optax the suite
also records the wall time of ``jit(...).lower(...).compile()``, ``memory_analysis()``'s
temporary bytes, state bytes per parameter and the fusions in the compiled HLO.

Writes the "Dense step suite" section of ``RESULTS.md``, the figures as ``results/suite.json``
and the plots ``suite_time.png`` and ``suite_bandwidth.png`` in ``--out`` (the harness,
``_harness.py``, times, saves and renders; this file holds the cases, the peers and the tables)::

    python benchmarks/suite.py [--quick] [--repeats 5] [--trees big resnet many] [--no-torch]
    python benchmarks/suite.py --render  # the section and plots again, from results/suite.json
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import _harness as h
import jax
import jax.numpy as jnp
import numpy as np
import optax

import rmsprop_jax as rj

LEARNING_RATE, RHO, EPSILON = 1e-3, 0.9, 1e-7
SECTION = "## Dense step suite"
NOISE_NOTE = (
    "On the many-leaf tree a step is a few XLA:CPU kernels per leaf (see the fusion counts "
    "below), so its time is dispatch, not bytes, and swings by up to 2x between runs on a "
    "2-core machine (the floor itself is slower than the optimizers in some rows): read its "
    "rj / optax ratios as equal unless they hold across runs."
)
SLOW_STEP_SECONDS = 2.0  # a peer whose warm step takes longer is timed on a single repetition
PEERS = {"torch": "torch", "tensorflow": "tensorflow", "tf_keras": "tf_keras"}  # name -> module


# ---------------------------------------------------------------------------------------------
# Trees, settings, cases


def resnet50_shapes(width_scale: int = 1) -> list[tuple[int, ...]]:
    """Leaf shapes of ResNet-50 (v1.5, batch norm scale and bias, no running statistics).

    ``width_scale`` divides every channel count (the quick run's smaller tree).
    """

    def c(channels: int) -> int:
        return max(1, channels // width_scale)

    shapes: list[tuple[int, ...]] = []

    def conv_bn(kernel: int, cin: int, cout: int) -> None:
        shapes.extend([(kernel, kernel, cin, cout), (cout,), (cout,)])

    conv_bn(7, 3, c(64))
    cin = c(64)
    for blocks, width in ((3, 64), (4, 128), (6, 256), (3, 512)):
        for block in range(blocks):
            conv_bn(1, cin, c(width))
            conv_bn(3, c(width), c(width))
            conv_bn(1, c(width), c(4 * width))
            if block == 0:
                conv_bn(1, cin, c(4 * width))  # projection shortcut
            cin = c(4 * width)
    shapes.extend([(cin, 1000), (1000,)])
    return shapes


def trees(quick: bool) -> dict[str, list[tuple[int, ...]]]:
    """Tree name -> leaf shapes. ``quick`` shrinks every tree for a smoke run."""
    if quick:
        return {
            "big": [(1000, 2000)],
            "resnet": resnet50_shapes(width_scale=4),
            "many": [(1000,)] * 200,
            "stacked": [(200, 1000)],
        }
    return {
        "big": [(10_000, 5_000)],
        "resnet": resnet50_shapes(),
        "many": [(1000,)] * 2000,
        "stacked": [(2000, 1000)],
    }


TREE_LABELS = {
    "big": "one leaf",
    "resnet": "ResNet-50-like",
    "many": "many small leaves",
    "stacked": "the same small leaves stacked (scan-over-layers layout)",
}


@dataclass(frozen=True)
class Setting:
    """RMSprop options shared by every peer."""

    key: str
    name: str
    momentum: float
    centered: bool

    @property
    def state_buffers(self) -> int:
        """Per-parameter float32 state buffers a perfect update keeps: ms, mg, momentum."""
        return 1 + int(self.centered) + int(self.momentum > 0)


SETTINGS = {
    "plain": Setting("plain", "plain", 0.0, False),
    "momentum": Setting("momentum", "momentum 0.9", 0.9, False),
    "centered": Setting("centered", "centered + momentum 0.9", 0.9, True),
}
DTYPES = ("float32", "bfloat16")


@dataclass
class Case:
    """One tree, one setting, one param dtype, with the host-side inputs every peer copies."""

    tree: str
    shapes: list[tuple[int, ...]]
    setting: Setting
    dtype: str
    params: list[np.ndarray] = field(default_factory=list, repr=False)  # float32 masters
    grads: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def size(self) -> int:
        """Parameters in the tree."""
        return sum(int(np.prod(s)) for s in self.shapes)

    @property
    def floor_bytes(self) -> int:
        """Bytes a perfect update moves: params read+written, grads read, f32 state read+written."""
        itemsize = jnp.dtype(self.dtype).itemsize
        return self.size * (3 * itemsize + 2 * 4 * self.setting.state_buffers)

    @property
    def key(self) -> str:
        return f"{self.tree}/{self.setting.key}/{self.dtype}"

    def record(self) -> dict[str, Any]:
        """What the JSON keeps of the case (not its arrays)."""
        return {
            "tree": self.tree,
            "shapes": self.shapes,
            "setting": self.setting.key,
            "dtype": self.dtype,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Case:
        shapes = [tuple(s) for s in record["shapes"]]
        return cls(record["tree"], shapes, SETTINGS[record["setting"]], record["dtype"])


def host_inputs(shapes: Sequence[tuple[int, ...]], seed: int = 0) -> tuple[list, list]:
    """Float32 params (scale 0.05) and gradients (scale 0.01) on the host."""
    rng = np.random.default_rng(seed)
    params = [(0.05 * rng.standard_normal(s, dtype=np.float32)) for s in shapes]
    grads = [(0.01 * rng.standard_normal(s, dtype=np.float32)) for s in shapes]
    return params, grads


# ---------------------------------------------------------------------------------------------
# Peers: each makes a runner for a case


def _jax_runner(
    init: Callable[[Any], Any], step: Callable[..., Any], case: Case
) -> tuple[h.Runner, dict[str, Any]]:
    """The harness's donated runner on the case's inputs, with the compiled step's facts."""
    dtype = jnp.dtype(case.dtype)
    params = [jnp.array(p, dtype=dtype, copy=True) for p in case.params]
    grads = [jnp.array(g, dtype=dtype, copy=True) for g in case.grads]

    def facts(compiled: Any, state: Any) -> dict[str, Any]:
        state_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(state))
        return {
            "temp_bytes": h.temp_bytes(compiled),
            "state_bytes_per_param": state_bytes / case.size,
            "fusions": h.count_ops(compiled, r" fusion\("),
            "copies": h.count_ops(compiled, r" copy(?:-start)?\("),
        }

    return h.donated_runner(init, step, params, [(grads,)], facts)


def ours(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """``rj.rmsprop`` (tf.keras numerics) with float32 state, stepped by ``rj.apply_updates``."""
    tx = rj.rmsprop(
        LEARNING_RATE,
        rho=RHO,
        momentum=case.setting.momentum,
        epsilon=EPSILON,
        centered=case.setting.centered,
        state_dtype=jnp.float32,
    )

    def step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    return _jax_runner(tx.init, step, case)


def optax_peer(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """``optax.rmsprop`` with the same options; its state is in the param dtype."""
    tx = optax.rmsprop(
        LEARNING_RATE,
        decay=RHO,
        eps=EPSILON,
        momentum=case.setting.momentum or None,
        centered=case.setting.centered,
    )

    def step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return _jax_runner(tx.init, step, case)


def floor(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """Not an optimizer: ``p + c*g`` and ``s*c + g`` for each float32 state buffer, fused."""
    buffers = case.setting.state_buffers

    def init(params: Any) -> Any:
        return tuple([jnp.zeros(p.shape, jnp.float32) for p in params] for _ in range(buffers))

    def step(params: Any, state: Any, grads: Any) -> Any:
        params = [
            p + jnp.asarray(-LEARNING_RATE, p.dtype) * g for p, g in zip(params, grads, strict=True)
        ]
        state = tuple(
            [s * jnp.float32(RHO) + g.astype(jnp.float32) for s, g in zip(buf, grads, strict=True)]
            for buf in state
        )
        return params, state

    return _jax_runner(init, step, case)


def torch_peer(foreach: bool) -> Callable[[Case], tuple[h.Runner, dict[str, Any]]]:
    """``torch.optim.RMSprop`` on CPU tensors; ``.grad`` set once to the fixed gradients."""

    def make(case: Case) -> tuple[h.Runner, dict[str, Any]]:
        import torch

        dtype = getattr(torch, case.dtype)
        params = []
        for p, g in zip(case.params, case.grads, strict=True):
            param = torch.nn.Parameter(torch.tensor(p).to(dtype))
            param.grad = torch.tensor(g).to(dtype)
            params.append(param)
        opt = torch.optim.RMSprop(
            params,
            lr=LEARNING_RATE,
            alpha=RHO,
            eps=EPSILON,
            momentum=case.setting.momentum,
            centered=case.setting.centered,
            foreach=foreach,
        )

        def run(steps: int) -> None:
            for _ in range(steps):
                opt.step()

        return run, {}

    return make


def tf_keras_peer(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """``tf_keras.optimizers.legacy.RMSprop.apply_gradients`` inside a ``tf.function``."""
    import tensorflow as tf
    import tf_keras

    dtype = getattr(tf, case.dtype)
    variables = [tf.Variable(tf.cast(tf.constant(p), dtype)) for p in case.params]
    grads = [tf.cast(tf.constant(g), dtype) for g in case.grads]
    opt = tf_keras.optimizers.legacy.RMSprop(
        learning_rate=LEARNING_RATE,
        rho=RHO,
        momentum=case.setting.momentum,
        epsilon=EPSILON,
        centered=case.setting.centered,
    )

    @tf.function
    def step() -> None:
        opt.apply_gradients(zip(grads, variables, strict=True))

    start = time.perf_counter()
    step()  # traces, creates the slots, runs once
    facts = {"trace_s": time.perf_counter() - start}

    def run(steps: int) -> None:
        for _ in range(steps):
            step()
        opt.iterations.numpy()

    return run, facts


def keras_frontend(case: Case) -> tuple[h.Runner, dict[str, Any]]:
    """``rj.keras.RMSprop.apply_gradients`` on ``rj.keras.Variable``s (state in the param dtype)."""
    dtype = jnp.dtype(case.dtype)
    variables = [rj.keras.Variable(jnp.asarray(p, dtype)) for p in case.params]
    grads = [jnp.asarray(g, dtype) for g in case.grads]
    opt = rj.keras.RMSprop(
        LEARNING_RATE,
        rho=RHO,
        momentum=case.setting.momentum,
        epsilon=EPSILON,
        centered=case.setting.centered,
    )

    def run(steps: int) -> None:
        for _ in range(steps):
            opt.apply_gradients(zip(grads, variables, strict=True))
        jax.block_until_ready([v.value for v in variables])

    return run, {}


def all_methods(with_torch: bool, with_tf: bool) -> list[h.Method]:
    """The methods compared: the floor, ours, optax, then the other frameworks."""
    methods = [
        h.Method("floor", "floor (fused read/write pass)", floor, "floor"),
        h.Method("ours", "rj.rmsprop", ours, "ours"),
        h.Method("optax", "optax.rmsprop", optax_peer),
        h.Method("keras", "rj.keras apply_gradients", keras_frontend),
    ]
    if with_torch:
        methods += [
            h.Method("torch_foreach", "torch RMSprop foreach", torch_peer(True)),
            h.Method("torch_loop", "torch RMSprop for-loop", torch_peer(False)),
        ]
    if with_tf:
        methods.append(h.Method("tf_keras", "tf_keras legacy RMSprop", tf_keras_peer))
    return methods


def skip_reason(args: argparse.Namespace) -> Callable[[h.Method, Case], str | None]:
    """Why a method does not run on a case, or None."""

    def reason(method: h.Method, case: Case) -> str | None:
        other = method.name.startswith(("torch", "tf_keras"))
        if other and case.dtype == "bfloat16" and args.skip_bf16_peers:
            return "torch and tf_keras on bfloat16 skipped (--skip-bf16-peers)"
        if method.name == "tf_keras" and len(case.shapes) > args.tf_max_leaves:
            return f"tf_keras skipped above {args.tf_max_leaves} leaves (--tf-max-leaves)"
        return None

    return reason


# ---------------------------------------------------------------------------------------------
# The tables, as data


def _ms(method: h.Method | None, case: Case) -> str:
    if method is None:
        return "n/a"
    if case.key in method.times:
        return f"{method.times[case.key] * 1e3:,.2f}"
    return "skipped" if case.key in method.skipped else "n/a"


def _ratio(num: h.Method | None, den: h.Method | None, case: Case) -> float | None:
    if num is None or den is None or case.key not in num.times or case.key not in den.times:
        return None
    return num.times[case.key] / den.times[case.key]


def _gbs(method: h.Method | None, case: Case) -> str:
    if method is None or case.key not in method.times:
        return "-"
    return f"{case.floor_bytes / method.times[case.key] / 1e9:,.2f}"


def _fact(method: h.Method | None, case: Case, name: str, spec: str) -> str:
    value = method.notes.get(case.key, {}).get(name) if method else None
    return "n/a" if value is None else f"{value:{spec}}"


def _compile_ratio(a: h.Method | None, b: h.Method | None, case: Case) -> str:
    if a is None or b is None or case.key not in a.notes or case.key not in b.notes:
        return "n/a"
    return h.fmt(a.notes[case.key]["compile_s"] / b.notes[case.key]["compile_s"])


CASE_COLUMNS = [
    h.Column("tree", lambda c: c.tree, left=True),
    h.Column("setting", lambda c: c.setting.name, left=True),
    h.Column("params", lambda c: c.dtype, left=True),
]


def tables(methods: list[h.Method], cases: list[Case]) -> dict[str, tuple[list[h.Column], list]]:
    """Each table of the section: its columns and its rows."""
    get = {name: h.by_name(methods, name) for name in ("floor", "ours", "optax")}
    fl, rj_, ox = get["floor"], get["ours"], get["optax"]
    peers = [m for m in methods if m.name not in get]

    def time_of(m: h.Method | None) -> Callable[[Case], str]:
        return lambda c: _ms(m, c)

    def gbs_of(m: h.Method | None) -> Callable[[Case], str]:
        return lambda c: _gbs(m, c)

    def fact(m: h.Method | None, name: str, spec: str) -> Callable[[Case], str]:
        return lambda c: _fact(m, c, name, spec)

    def rj_of_floor(c: Case) -> str:
        frac = _ratio(fl, rj_, c)
        return h.fmt(None if frac is None else 100 * frac, ".0f", "%")

    times = [
        *CASE_COLUMNS,
        h.Column("floor", time_of(fl)),
        h.Column("rj", time_of(rj_)),
        h.Column("optax", time_of(ox)),
        *(h.Column(m.label, time_of(m)) for m in peers),
        h.Column("rj / optax", lambda c: h.fmt(_ratio(rj_, ox, c))),
        h.Column("floor / rj", lambda c: h.fmt(_ratio(fl, rj_, c))),
    ]
    bandwidth = [
        *CASE_COLUMNS,
        h.Column("bytes / step", lambda c: f"{c.floor_bytes / 1e6:,.0f} MB"),
        h.Column("floor", gbs_of(fl)),
        h.Column("rj", gbs_of(rj_)),
        h.Column("optax", gbs_of(ox)),
        *(h.Column(m.label, gbs_of(m)) for m in peers),
        h.Column("rj / floor", rj_of_floor),
    ]
    compiled = [
        *CASE_COLUMNS,
        h.Column("compile rj (s)", fact(rj_, "compile_s", ",.2f")),
        h.Column("compile optax (s)", fact(ox, "compile_s", ",.2f")),
        h.Column("rj / optax", lambda c: _compile_ratio(rj_, ox, c)),
        h.Column("temp bytes rj", fact(rj_, "temp_bytes", ",")),
        h.Column("temp bytes optax", fact(ox, "temp_bytes", ",")),
        h.Column("state B/param rj", fact(rj_, "state_bytes_per_param", ".2f")),
        h.Column("state B/param optax", fact(ox, "state_bytes_per_param", ".2f")),
        h.Column("fusions rj", fact(rj_, "fusions", ",")),
        h.Column("fusions optax", fact(ox, "fusions", ",")),
    ]
    compiled_rows = [c for c in cases if any(m and c.key in m.notes for m in (rj_, ox))]
    per_leaf = [
        h.Column("setting", lambda r: r["setting"], left=True),
        h.Column("params", lambda r: r["dtype"], left=True),
        h.Column("method", lambda r: r["label"], left=True),
        h.Column("time / leaf (us)", lambda r: f"{r['per_leaf_us']:,.2f}"),
        h.Column("excess / leaf (us)", lambda r: h.fmt(r["excess_us"], ",.2f", "")),
    ]
    layouts = [
        h.Column("setting", lambda c: c.setting.name, left=True),
        h.Column("params", lambda c: c.dtype, left=True),
        h.Column("optax, 2000 leaves", time_of(ox)),
        h.Column("rj, 2000 leaves", time_of(rj_)),
        h.Column("floor, 2000 leaves", time_of(fl)),
        h.Column("rj, stacked", lambda c: _ms(rj_, _stacked(c))),
        h.Column("step speed-up", lambda c: _layout_speedup(ox, rj_, c)),
        h.Column("compile optax, 2000 leaves", fact(ox, "compile_s", ",.2f")),
        h.Column("compile rj, stacked", lambda c: _fact(rj_, _stacked(c), "compile_s", ",.2f")),
        h.Column("compile speed-up", lambda c: _layout_compile(ox, rj_, c)),
    ]
    layout_rows = [
        c
        for c in cases
        if c.tree == "many"
        and rj_ is not None
        and ox is not None
        and _stacked(c).key in rj_.times
        and c.key in ox.times
    ]
    return {
        "times": (times, cases),
        "bandwidth": (bandwidth, cases),
        "compiled": (compiled, compiled_rows),
        "per_leaf": (per_leaf, per_leaf_overhead(methods, cases)),
        "layouts": (layouts, layout_rows),
    }


def _stacked(case: Case) -> Case:
    return Case("stacked", [], case.setting, case.dtype)


def _layout_speedup(optax_m: h.Method | None, ours_m: h.Method | None, case: Case) -> str:
    assert optax_m is not None and ours_m is not None
    return h.fmt(optax_m.times[case.key] / ours_m.times[_stacked(case).key], ",.1f")


def _layout_compile(optax_m: h.Method | None, ours_m: h.Method | None, case: Case) -> str:
    assert optax_m is not None and ours_m is not None
    compile_optax = optax_m.notes[case.key]["compile_s"]
    return h.fmt(compile_optax / ours_m.notes[_stacked(case).key]["compile_s"], ",.0f")


def per_leaf_overhead(methods: list[h.Method], cases: list[Case]) -> list[dict[str, Any]]:
    """Per method and setting on the many-leaf tree: time per leaf, and its excess over bandwidth.

    The excess is ``(t_many - bytes_many / bandwidth_big) / leaves``, the bandwidth taken from
    the same method on the one-leaf tree: what each extra leaf costs beyond its bytes.
    """
    by_key = {case.key: case for case in cases}
    rows = []
    for case in cases:
        if case.tree != "many":
            continue
        big = by_key.get(f"big/{case.setting.key}/{case.dtype}")
        leaves = len(case.shapes)
        for method in methods:
            if method.name == "floor" or case.key not in method.times:
                continue
            t = method.times[case.key]
            excess = None
            if big is not None and big.key in method.times:
                bandwidth = big.floor_bytes / method.times[big.key]
                excess = (t - case.floor_bytes / bandwidth) / leaves
            rows.append(
                {
                    "setting": case.setting.name,
                    "dtype": case.dtype,
                    "label": method.label,
                    "per_leaf_us": t / leaves * 1e6,
                    "excess_us": None if excess is None else excess * 1e6,
                }
            )
    return rows


TEXT = {
    "bandwidth": "Achieved bandwidth: the floor's byte count (what a perfect update with float32 "
    "state moves) over each method's time, GB/s; the last column is ours as a fraction of the "
    "floor's bandwidth.",
    "compiled": "Compiled JAX steps: wall time of `jax.jit(step, donate_argnums=(0, 1)).lower(...)"
    ".compile()`, `memory_analysis()` temporary bytes, state bytes per parameter, and the "
    "fusions in the compiled HLO.",
    "per_leaf": "Per-leaf cost on the many-leaf tree: time per step over leaves, and the excess "
    "over what the same method's one-leaf bandwidth would give for those bytes "
    "(`(t - bytes / GB/s on one leaf) / leaves`), microseconds per leaf.",
    "layouts": "The many-leaf model, two layouts: 2000 separate leaves against the same 2M "
    "parameters stacked into one `[2000, 1000]` leaf, as `nnx.vmap`/`nn.scan` (scan over "
    "layers) store same-shape layers. The floor on 2000 leaves shows what any optimizer pays "
    "for that layout; the ratios are optax on 2000 leaves over ours on the stacked leaf (higher "
    "is better for the stacked layout). Milliseconds per step; compile in seconds.",
}


def _missing_peers(methods: list[h.Method]) -> str | None:
    """Which peers' columns are missing because they were not installed (or left out)."""
    names = {m.name for m in methods}
    missing = [
        label
        for label, present in (
            ("torch", "torch_foreach" in names),
            ("TensorFlow with tf_keras", "tf_keras" in names),
        )
        if not present
    ]
    if not missing:
        return None
    return f"Not installed for this run (or left out): {' and '.join(missing)}, so no column."


def markdown(methods: list[h.Method], cases: list[Case], run: dict[str, Any]) -> str:
    """The "Dense step suite" section of RESULTS.md."""
    sizes = {case.tree: (len(case.shapes), case.size) for case in cases}
    tree_text = "; ".join(
        f"{TREE_LABELS[t]} (`{t}`): {leaves:,} leaf(s), {size / 1e6:,.2f}M parameters"
        for t, (leaves, size) in sizes.items()
    )
    method_text = (
        f"One dense RMSprop training step (lr {LEARNING_RATE}, rho {RHO}, epsilon {EPSILON}) on "
        f"each tree: {tree_text}. JAX steps (`update` + `apply_updates`) are jitted with params "
        "and state donated, the gradients fixed arrays passed in; ours keeps float32 state "
        "(`state_dtype=jnp.float32`), **optax, torch and tf_keras keep their state in the param "
        "dtype**, so with bfloat16 params they move fewer bytes than ours. The floor is a fused, "
        "donated elementwise pass reading and writing the bytes a perfect update with float32 "
        "state must move (params read and written, each state buffer read and written, grads "
        f"read). Median of {run['repeats']} repetitions after warm-up, taken in turns across the "
        f"methods of a case (peers whose warm step took over {SLOW_STEP_SECONDS:.0f} s: one "
        "step), milliseconds per step; lower is better. Ratios are what to quote: absolute "
        "times belong to this machine."
    )
    skipped = sorted({reason for m in methods for reason in m.skipped.values()})
    parts = tables(methods, cases)

    def part(name: str) -> str | None:
        columns, rows = parts[name]
        return h.table(columns, rows) if rows else None

    return h.section(
        SECTION,
        h.produced_by(run["command"], run["machine"], run["provisional"]),
        method_text,
        part("times"),
        _missing_peers(methods),
        "Skipped: " + "; ".join(skipped) + "." if skipped else None,
        NOISE_NOTE,
        TEXT["bandwidth"],
        part("bandwidth"),
        TEXT["compiled"],
        part("compiled"),
        TEXT["per_leaf"] if parts["per_leaf"][1] else None,
        part("per_leaf"),
        TEXT["layouts"] if parts["layouts"][1] else None,
        part("layouts"),
        h.image("Dense step suite: time per step by tree and peer", "suite_time.png"),
        h.image("Dense step suite: achieved bandwidth against the floor", "suite_bandwidth.png"),
    )


def plot(methods: list[h.Method], cases: list[Case], out: Any) -> None:
    """``suite_time.png`` (ms per step) and ``suite_bandwidth.png`` (achieved GB/s)."""
    groups = {
        tree: [c for c in cases if c.tree == tree] for tree in dict.fromkeys(c.tree for c in cases)
    }
    titles = {
        tree: f"{TREE_LABELS[tree]}: {len(rows[0].shapes):,} leaf(s), "
        f"{rows[0].size / 1e6:,.2f}M params"
        for tree, rows in groups.items()
    }

    def series(value: Callable[[h.Method, Case, float], float]) -> list:
        def of(m: h.Method) -> Callable[[Case], float | None]:
            return lambda c: value(m, c, m.times[c.key]) if c.key in m.times else None

        return [(m.label, of(m), m.name == "floor") for m in methods]

    common = {"xlabel": lambda c: f"{c.setting.name}\n{c.dtype}", "titles": titles}
    h.bar_grid(
        groups,
        series(lambda m, c, t: t * 1e3),
        ylabel="ms per step (log)",
        title="Dense RMSprop step: time per step",
        path=out / "suite_time.png",
        log=True,
        **common,
    )
    h.bar_grid(
        groups,
        series(lambda m, c, t: c.floor_bytes / t / 1e9),
        ylabel="GB/s (floor bytes / time)",
        title="Dense RMSprop step: achieved bandwidth (hatched: the floor)",
        path=out / "suite_bandwidth.png",
        log=False,
        **common,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the suite (or renders a saved run) and writes the report."""
    cli = h.parser("suite.py", __doc__ or "", repeats=5)
    cli.add_argument("--quick", action="store_true", help="small trees: a smoke run")
    cli.add_argument("--trees", nargs="+", choices=list(TREE_LABELS))
    cli.add_argument("--settings", nargs="+", choices=list(SETTINGS))
    cli.add_argument("--dtypes", nargs="+", choices=list(DTYPES))
    cli.add_argument("--no-torch", action="store_true", help="skip torch even if installed")
    cli.add_argument("--no-tf", action="store_true", help="skip tf_keras even if installed")
    cli.add_argument(
        "--skip-bf16-peers", action="store_true", help="time torch and tf_keras on float32 only"
    )
    cli.add_argument(
        "--tf-max-leaves", type=int, default=2000, help="skip tf_keras on trees with more leaves"
    )
    args = cli.parse_args(argv)
    data = h.data_path(args.out, "suite.py")
    if args.render:
        run, methods = h.load(data)
        cases = [Case.from_record(r) for r in run["cases"]]
    else:
        info = h.machine(h.versions(PEERS))
        print(f"{info['cpu']}, {info['cores']} cores, load {info['load']}; {info['versions']}")
        methods = all_methods(
            with_torch=h.available("torch") and not args.no_torch,
            with_tf=h.available("tensorflow", "tf_keras") and not args.no_tf,
        )
        timing = h.Timing(args.repeats, slow_step_seconds=SLOW_STEP_SECONDS)
        all_trees, cases = trees(args.quick), []
        for tree in args.trees or list(all_trees):
            shapes = all_trees[tree]
            params, grads = host_inputs(shapes)
            tree_cases = [
                Case(tree, shapes, SETTINGS[s], dtype, params, grads)
                for s in args.settings or list(SETTINGS)
                for dtype in args.dtypes or list(DTYPES)
            ]
            h.measure(methods, tree_cases, timing, skip_reason(args))
            for case in tree_cases:
                case.params, case.grads = [], []
            del params, grads
            gc.collect()
            cases += tree_cases
        reduced = args.quick or args.trees or args.settings or args.dtypes or args.repeats < 5
        peers_missing = args.no_torch or args.no_tf or args.skip_bf16_peers
        run = h.run_record(
            "suite.py", argv, info, args.repeats, bool(reduced) or peers_missing, cases
        )
        h.save(data, run, methods)
    columns, rows = tables(methods, cases)["times"]
    print("\n" + h.text_table(columns, rows))
    h.finish(
        args.out, SECTION, markdown(methods, cases, run), lambda: plot(methods, cases, args.out)
    )


if __name__ == "__main__":
    main()
