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

Writes the "Dense step suite" section of ``RESULTS.md`` and the plots ``suite_time.png`` and
``suite_bandwidth.png`` in ``--out``::

    python benchmarks/suite.py [--quick] [--repeats 5] [--trees big resnet many] [--no-torch]
"""

from __future__ import annotations

import argparse
import gc
import os
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

LEARNING_RATE, RHO, EPSILON = 1e-3, 0.9, 1e-7
SECTION = "## Dense step suite"
NOISE_NOTE = (
    "On the many-leaf tree a step is a few XLA:CPU kernels per leaf (see the fusion counts "
    "below), so its time is dispatch, not bytes, and swings by up to 2x between runs on a "
    "2-core machine (the floor itself is slower than the optimizers in some rows): read its "
    "rj / optax ratios as equal unless they hold across runs."
)
SLOW_STEP_SECONDS = 2.0  # a peer whose warm step takes longer is timed on a single repetition

# A runner takes a number of steps, runs them, and returns once they are done.
Runner = Callable[[int], None]


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

    name: str
    momentum: float
    centered: bool

    @property
    def state_buffers(self) -> int:
        """Per-parameter float32 state buffers a perfect update keeps: ms, mg, momentum."""
        return 1 + int(self.centered) + int(self.momentum > 0)


SETTINGS = {
    "plain": Setting("plain", 0.0, False),
    "momentum": Setting("momentum 0.9", 0.9, False),
    "centered": Setting("centered + momentum 0.9", 0.9, True),
}
DTYPES = ("float32", "bfloat16")


@dataclass
class Case:
    """One tree, one setting, one param dtype, with the host-side inputs every peer copies."""

    tree: str
    shapes: list[tuple[int, ...]]
    setting: Setting
    dtype: str
    params: list[np.ndarray]  # float32 master copies; each peer casts its own
    grads: list[np.ndarray]

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
    def key(self) -> tuple[str, str, str]:
        return (self.tree, self.setting.name, self.dtype)


def host_inputs(shapes: Sequence[tuple[int, ...]], seed: int = 0) -> tuple[list, list]:
    """Float32 params (scale 0.05) and gradients (scale 0.01) on the host."""
    rng = np.random.default_rng(seed)
    params = [(0.05 * rng.standard_normal(s, dtype=np.float32)) for s in shapes]
    grads = [(0.01 * rng.standard_normal(s, dtype=np.float32)) for s in shapes]
    return params, grads


# ---------------------------------------------------------------------------------------------
# Methods


@dataclass
class Method:
    """One way of taking a dense RMSprop step."""

    name: str
    label: str
    make: Callable[[Case], tuple[Runner, dict[str, Any]]]
    times: dict[tuple[str, str, str], float] = field(default_factory=dict)  # case -> s per step
    notes: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    skipped: dict[tuple[str, str, str], str] = field(default_factory=dict)  # case -> why


def _jax_inputs(case: Case) -> tuple[list[jax.Array], list[jax.Array]]:
    dtype = jnp.dtype(case.dtype)
    params = [jnp.array(p, dtype=dtype, copy=True) for p in case.params]
    grads = [jnp.array(g, dtype=dtype, copy=True) for g in case.grads]
    return params, grads


def _hlo_facts(compiled: Any, compile_seconds: float, state: Any, size: int) -> dict[str, Any]:
    """Compile time, temporary bytes, state bytes per parameter and op counts of a step."""
    text = compiled.as_text()
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None
    state_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(state))
    return {
        "compile_s": compile_seconds,
        "temp_bytes": temp,
        "state_bytes_per_param": state_bytes / size,
        "fusions": len(re.findall(r" fusion\(", text)),
        "copies": len(re.findall(r" copy(?:-start)?\(", text)),
    }


def _jax_runner(
    init: Callable[[Any], Any], step: Callable[..., Any], case: Case
) -> tuple[Runner, dict[str, Any]]:
    """Compiles ``step`` with params and state donated (timed) and returns a runner."""
    params, grads = _jax_inputs(case)
    state = init(params)
    jax.block_until_ready(state)
    start = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    facts = _hlo_facts(compiled, time.perf_counter() - start, state, case.size)
    carry = [params, state]

    def run(steps: int) -> None:
        params, state = carry
        for _ in range(steps):
            params, state = compiled(params, state, grads)
        jax.block_until_ready((params, state))
        carry[:] = [params, state]

    return run, facts


def ours(case: Case) -> tuple[Runner, dict[str, Any]]:
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


def optax_peer(case: Case) -> tuple[Runner, dict[str, Any]]:
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


def floor(case: Case) -> tuple[Runner, dict[str, Any]]:
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


def torch_available() -> bool:
    """Whether torch can be imported."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def tf_keras_available() -> bool:
    """Whether TensorFlow and tf_keras can be imported."""
    try:
        import tensorflow  # noqa: F401
        import tf_keras  # noqa: F401
    except ImportError:
        return False
    return True


def torch_peer(foreach: bool) -> Callable[[Case], tuple[Runner, dict[str, Any]]]:
    """``torch.optim.RMSprop`` on CPU tensors; ``.grad`` set once to the fixed gradients."""

    def make(case: Case) -> tuple[Runner, dict[str, Any]]:
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


def tf_keras_peer(case: Case) -> tuple[Runner, dict[str, Any]]:
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


def keras_frontend(case: Case) -> tuple[Runner, dict[str, Any]]:
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


def all_methods(with_torch: bool, with_tf: bool) -> list[Method]:
    """The methods compared: the floor, ours, optax, then the other frameworks."""
    methods = [
        Method("floor", "floor (fused read/write pass)", floor),
        Method("ours", "rj.rmsprop", ours),
        Method("optax", "optax.rmsprop", optax_peer),
        Method("keras", "rj.keras apply_gradients", keras_frontend),
    ]
    if with_torch:
        methods += [
            Method("torch_foreach", "torch RMSprop foreach", torch_peer(True)),
            Method("torch_loop", "torch RMSprop for-loop", torch_peer(False)),
        ]
    if with_tf:
        methods.append(Method("tf_keras", "tf_keras legacy RMSprop", tf_keras_peer))
    return methods


# ---------------------------------------------------------------------------------------------
# Timing


def steps_per_sample(run: Runner, min_rep_seconds: float = 0.2) -> tuple[int, float]:
    """Warms ``run`` up; returns the steps one timed sample takes, and one step's time."""
    run(2)  # warm-up: first execution, caches, allocator
    start = time.perf_counter()
    run(1)
    single = time.perf_counter() - start
    return max(1, min(200, int(min_rep_seconds / max(single, 1e-9)))), single


def skip_reason(method: Method, case: Case, args: argparse.Namespace) -> str | None:
    """Why ``method`` does not run on ``case``, or None."""
    other = method.name.startswith(("torch", "tf_keras"))
    if other and case.dtype == "bfloat16" and args.skip_bf16_peers:
        return "torch and tf_keras on bfloat16 skipped (--skip-bf16-peers)"
    if method.name == "tf_keras" and len(case.shapes) > args.tf_max_leaves:
        return f"tf_keras skipped above {args.tf_max_leaves} leaves (--tf-max-leaves)"
    return None


def measure(methods: list[Method], cases: list[Case], args: argparse.Namespace) -> None:
    """Fills each method's ``times``, ``notes`` and ``skipped``.

    All methods of a case are built first, then timed in turns: each repetition takes one sample
    of every method, so a change in the machine's load during the case hits all of them alike.
    A method whose warm step takes over ``SLOW_STEP_SECONDS`` is timed on that single step.
    """
    for case in cases:
        runners: dict[str, tuple[Method, Runner, int]] = {}
        setups: dict[str, float] = {}
        for method in methods:
            reason = skip_reason(method, case, args)
            if reason:
                method.skipped[case.key] = reason
                continue
            start = time.perf_counter()
            run, facts = method.make(case)
            setups[method.name] = time.perf_counter() - start
            method.notes[case.key] = facts
            steps, single = steps_per_sample(run)
            if single > SLOW_STEP_SECONDS:
                method.times[case.key] = single
            else:
                runners[method.name] = (method, run, steps)
        samples: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.repeats):
            for name, (_, run, steps) in runners.items():
                start = time.perf_counter()
                run(steps)
                samples[name].append((time.perf_counter() - start) / steps)
        for name, (method, _, _) in runners.items():
            method.times[case.key] = statistics.median(samples[name])
        del runners
        gc.collect()
        for method in methods:
            if case.key not in method.times:
                continue
            t = method.times[case.key]
            print(
                f"  {case.tree:<7} {case.setting.name:<24} {case.dtype:<9} {method.label:<30}"
                f"{t * 1e3:>10,.2f} ms {case.floor_bytes / t / 1e9:>8,.2f} GB/s"
                f"   (set-up {setups[method.name]:,.1f} s, load {os.getloadavg()[0]:.2f})",
                flush=True,
            )


# ---------------------------------------------------------------------------------------------
# Report


def peer_versions() -> dict[str, str]:
    """Versions of the installed peers: torch, TensorFlow and tf_keras."""
    versions = {}
    if torch_available():
        import torch

        versions["torch"] = torch.__version__
    if tf_keras_available():
        import tensorflow as tf
        import tf_keras

        versions["tensorflow"] = tf.__version__
        versions["tf_keras"] = tf_keras.__version__
    return versions


def _get(methods: list[Method], name: str) -> Method | None:
    return next((m for m in methods if m.name == name), None)


def _ms(method: Method | None, key: tuple[str, str, str]) -> str:
    if method is None:
        return "n/a"
    if key in method.times:
        return f"{method.times[key] * 1e3:,.2f}"
    return "skipped" if key in method.skipped else "n/a"


def _ratio(num: Method | None, den: Method | None, key: tuple[str, str, str]) -> float | None:
    if num is None or den is None or key not in num.times or key not in den.times:
        return None
    return num.times[key] / den.times[key]


def _fmt(value: float | None, spec: str = ",.2f", suffix: str = "x") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def per_leaf_overhead(methods: list[Method], cases: list[Case]) -> list[dict[str, Any]]:
    """Per method and setting on the many-leaf tree: time per leaf, and its excess over bandwidth.

    The excess is ``(t_many - bytes_many / bandwidth_big) / leaves``, the bandwidth taken from
    the same method on the one-leaf tree: what each extra leaf costs beyond its bytes.
    """
    by_key = {case.key: case for case in cases}
    rows = []
    for case in cases:
        if case.tree != "many":
            continue
        big = by_key.get(("big", case.setting.name, case.dtype))
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


def layout_rows(methods: list[Method], cases: list[Case]) -> list[str]:
    """Markdown rows: the many-leaf tree as 2000 leaves against the same numbers stacked.

    Same parameters, same per-element maths: only the layout differs, so the ratios are what
    stacking same-shape leaves (scan over layers) buys over optax on separate leaves.
    """
    floor_m, ours_m, optax_m = (_get(methods, n) for n in ("floor", "ours", "optax"))
    if ours_m is None or optax_m is None:
        return []
    rows = []
    for case in cases:
        if case.tree != "many":
            continue
        stacked = ("stacked", *case.key[1:])
        many = case.key
        if stacked not in ours_m.times or many not in optax_m.times:
            continue
        compile_optax = optax_m.notes[many]["compile_s"]
        compile_ours = ours_m.notes[stacked]["compile_s"]
        rows.append(
            f"| {case.setting.name} | {case.dtype} | {_ms(optax_m, many)} | {_ms(ours_m, many)} "
            f"| {_ms(floor_m, many)} | {_ms(ours_m, stacked)} "
            f"| {_fmt(optax_m.times[many] / ours_m.times[stacked], ',.1f')} "
            f"| {compile_optax:,.2f} | {compile_ours:,.2f} "
            f"| {_fmt(compile_optax / compile_ours, ',.0f')} |"
        )
    return rows


def markdown(
    methods: list[Method],
    cases: list[Case],
    info: dict[str, str],
    args: argparse.Namespace,
) -> str:
    """The "Dense step suite" section of RESULTS.md."""
    floor_m, ours_m, optax_m = (_get(methods, n) for n in ("floor", "ours", "optax"))
    peers = [m for m in methods if m.name not in ("floor", "ours", "optax")]
    tree_sizes = {}
    for case in cases:
        tree_sizes[case.tree] = (len(case.shapes), case.size)
    tree_text = "; ".join(
        f"{TREE_LABELS[t]} (`{t}`): {leaves:,} leaf(s), {size / 1e6:,.2f}M parameters"
        for t, (leaves, size) in tree_sizes.items()
    )
    quick = " --quick" if args.quick else ""
    lines = [
        SECTION,
        "",
        f"Produced by `python benchmarks/suite.py{quick}` on {info['date']}: {info['cpu']}, "
        f"{info['cores']} cores, {info['memory']}, JAX backend `{info['backend']}`, Python "
        f"{info['python']}; {info['versions']}. Load average when it started: {info['load']} "
        "(other work on the machine inflates the times)."
        + (" **Quick smoke run: small trees, not figures to quote.**" if args.quick else ""),
        "",
        f"One dense RMSprop training step (lr {LEARNING_RATE}, rho {RHO}, epsilon {EPSILON}) on "
        f"each tree: {tree_text}. JAX steps (`update` + `apply_updates`) are jitted with params "
        "and state donated, the gradients fixed arrays passed in; ours keeps float32 state "
        "(`state_dtype=jnp.float32`), **optax, torch and tf_keras keep their state in the param "
        "dtype**, so with bfloat16 params they move fewer bytes than ours. The floor is a fused, "
        "donated elementwise pass reading and writing the bytes a perfect update with float32 "
        "state must move (params read and written, each state buffer read and written, grads "
        f"read). Median of {args.repeats} repetitions after warm-up, taken in turns across the "
        "methods of a case (peers whose warm step "
        f"took over {SLOW_STEP_SECONDS:.0f} s: one step), milliseconds per step; lower is "
        "better. Ratios are what to quote: absolute times belong to this machine.",
        "",
        "| tree | setting | params | floor | rj | optax | "
        + " | ".join(m.label for m in peers)
        + " | rj / optax | floor / rj |",
        "|---|---|---|" + "---:|" * (len(peers) + 5),
    ]
    for case in cases:
        key = case.key
        cells = [_ms(floor_m, key), _ms(ours_m, key), _ms(optax_m, key)]
        cells += [_ms(m, key) for m in peers]
        cells += [_fmt(_ratio(ours_m, optax_m, key)), _fmt(_ratio(floor_m, ours_m, key))]
        lines.append(f"| {case.tree} | {case.setting.name} | {case.dtype} | " + " | ".join(cells))
        lines[-1] += " |"
    skipped = sorted({reason for m in methods for reason in m.skipped.values()})
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    lines += ["", NOISE_NOTE]

    lines += [
        "",
        "Achieved bandwidth: the floor's byte count (what a perfect update with float32 state "
        "moves) over each method's time, GB/s; the last column is ours as a fraction of the "
        "floor's bandwidth.",
        "",
        "| tree | setting | params | bytes / step | floor | rj | optax | "
        + " | ".join(m.label for m in peers)
        + " | rj / floor |",
        "|---|---|---|" + "---:|" * (len(peers) + 5),
    ]
    for case in cases:
        key = case.key

        def gbs(method: Method | None, case: Case = case) -> str:
            if method is None or case.key not in method.times:
                return "-"
            return f"{case.floor_bytes / method.times[case.key] / 1e9:,.2f}"

        cells = [f"{case.floor_bytes / 1e6:,.0f} MB", gbs(floor_m), gbs(ours_m), gbs(optax_m)]
        cells += [gbs(m) for m in peers]
        frac = _ratio(floor_m, ours_m, key)
        cells.append(_fmt(None if frac is None else 100 * frac, ".0f", "%"))
        lines.append(
            f"| {case.tree} | {case.setting.name} | {case.dtype} | " + " | ".join(cells) + " |"
        )

    lines += [
        "",
        "Compiled JAX steps: wall time of `jax.jit(step, donate_argnums=(0, 1)).lower(...)"
        ".compile()`, `memory_analysis()` temporary bytes, state bytes per parameter, and the "
        "fusions in the compiled HLO.",
        "",
        "| tree | setting | params | compile rj (s) | compile optax (s) | rj / optax "
        "| temp bytes rj | temp bytes optax | state B/param rj | state B/param optax "
        "| fusions rj | fusions optax |",
        "|---|---|---|" + "---:|" * 9,
    ]
    for case in cases:
        key = case.key
        a = ours_m.notes.get(key, {}) if ours_m else {}
        b = optax_m.notes.get(key, {}) if optax_m else {}
        if not a and not b:
            continue

        def cell(facts: dict[str, Any], name: str, spec: str) -> str:
            value = facts.get(name)
            return "n/a" if value is None else f"{value:{spec}}"

        ratio = a["compile_s"] / b["compile_s"] if a and b else None
        lines.append(
            f"| {case.tree} | {case.setting.name} | {case.dtype} "
            f"| {cell(a, 'compile_s', ',.2f')} | {cell(b, 'compile_s', ',.2f')} "
            f"| {_fmt(ratio)} | {cell(a, 'temp_bytes', ',')} | {cell(b, 'temp_bytes', ',')} "
            f"| {cell(a, 'state_bytes_per_param', '.2f')} "
            f"| {cell(b, 'state_bytes_per_param', '.2f')} "
            f"| {cell(a, 'fusions', ',')} | {cell(b, 'fusions', ',')} |"
        )

    overhead = per_leaf_overhead(methods, cases)
    if overhead:
        lines += [
            "",
            "Per-leaf cost on the many-leaf tree: time per step over leaves, and the excess over "
            "what the same method's one-leaf bandwidth would give for those bytes "
            "(`(t - bytes / GB/s on one leaf) / leaves`), microseconds per leaf.",
            "",
            "| setting | params | method | time / leaf (us) | excess / leaf (us) |",
            "|---|---|---|---:|---:|",
        ]
        for row in overhead:
            lines.append(
                f"| {row['setting']} | {row['dtype']} | {row['label']} "
                f"| {row['per_leaf_us']:,.2f} | {_fmt(row['excess_us'], ',.2f', '')} |"
            )
    layouts = layout_rows(methods, cases)
    if layouts:
        lines += [
            "",
            "The many-leaf model, two layouts: 2000 separate leaves against the same 2M "
            "parameters stacked into one `[2000, 1000]` leaf, as `nnx.vmap`/`nn.scan` "
            "(scan over layers) store same-shape layers. The floor on 2000 leaves shows what "
            "any optimizer pays for that layout; the ratios are optax on 2000 leaves over ours "
            "on the stacked leaf (higher is better for the stacked layout). Milliseconds per "
            "step; compile in seconds.",
            "",
            "| setting | params | optax, 2000 leaves | rj, 2000 leaves | floor, 2000 leaves "
            "| rj, stacked | step speed-up | compile optax, 2000 leaves | compile rj, stacked "
            "| compile speed-up |",
            "|---|---|" + "---:|" * 8,
            *layouts,
        ]
    lines += [
        "",
        "![Dense step suite: time per step by tree and peer](suite_time.png)",
        "",
        "![Dense step suite: achieved bandwidth against the floor](suite_bandwidth.png)",
        "",
    ]
    return "\n".join(lines)


def _plot_grid(
    methods: list[Method],
    cases: list[Case],
    value: Callable[[Method, Case], float | None],
    ylabel: str,
    title: str,
    path: Path,
    log: bool,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tree_names = list(dict.fromkeys(case.tree for case in cases))
    fig, axes = plt.subplots(len(tree_names), 1, figsize=(11, 3.4 * len(tree_names)), squeeze=False)
    width = 0.8 / len(methods)
    for ax, tree in zip(axes[:, 0], tree_names, strict=True):
        tree_cases = [case for case in cases if case.tree == tree]
        x = np.arange(len(tree_cases))
        for i, method in enumerate(methods):
            heights = [value(method, case) for case in tree_cases]
            ax.bar(
                x + (i - (len(methods) - 1) / 2) * width,
                [h if h is not None else 0.0 for h in heights],
                width,
                label=method.label,
                hatch="//" if method.name == "floor" else None,
            )
        ax.set_xticks(x, [f"{c.setting.name}\n{c.dtype}" for c in tree_cases], fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        leaves, size = len(tree_cases[0].shapes), tree_cases[0].size
        ax.set_title(
            f"{TREE_LABELS[tree]}: {leaves:,} leaf(s), {size / 1e6:,.2f}M params", fontsize=10
        )
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(methods: list[Method], cases: list[Case], out: Path) -> None:
    """``suite_time.png`` (ms per step) and ``suite_bandwidth.png`` (achieved GB/s)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no plots written (pip install matplotlib)")
        return
    print(f"writing {out / 'suite_time.png'} and {out / 'suite_bandwidth.png'}")

    def ms(method: Method, case: Case) -> float | None:
        t = method.times.get(case.key)
        return None if t is None else t * 1e3

    def gbs(method: Method, case: Case) -> float | None:
        t = method.times.get(case.key)
        return None if t is None else case.floor_bytes / t / 1e9

    _plot_grid(
        methods,
        cases,
        ms,
        "ms per step (log)",
        "Dense RMSprop step: time per step",
        out / "suite_time.png",
        log=True,
    )
    _plot_grid(
        methods,
        cases,
        gbs,
        "GB/s (floor bytes / time)",
        "Dense RMSprop step: achieved bandwidth (hatched: the floor)",
        out / "suite_bandwidth.png",
        log=False,
    )


def print_table(methods: list[Method], cases: list[Case]) -> None:
    """The results as a plain-text table on stdout (ms per step)."""
    ours_m, optax_m, floor_m = (_get(methods, n) for n in ("ours", "optax", "floor"))
    header = f"{'tree / setting / params':<48}" + "".join(f"{m.name:>14}" for m in methods)
    header += f"{'rj/optax':>10}{'floor/rj':>10}"
    print(header)
    print("-" * len(header))
    for case in cases:
        row = f"{case.tree + ' / ' + case.setting.name + ' / ' + case.dtype:<48}"
        row += "".join(f"{_ms(m, case.key):>14}" for m in methods)
        row += f"{_fmt(_ratio(ours_m, optax_m, case.key)):>10}"
        row += f"{_fmt(_ratio(floor_m, ours_m, case.key)):>10}"
        print(row)
    print("\ncompile s (rj / optax), fusions (rj / optax):")
    for case in cases:
        a = ours_m.notes.get(case.key) if ours_m else None
        b = optax_m.notes.get(case.key) if optax_m else None
        if a and b:
            print(
                f"  {case.tree:<7} {case.setting.name:<24} {case.dtype:<9} "
                f"{a['compile_s']:>7.2f} / {b['compile_s']:<7.2f} "
                f"fusions {a['fusions']:>5} / {b['fusions']:<5} "
                f"temp {a['temp_bytes']:,} / {b['temp_bytes']:,}"
            )
    for row in per_leaf_overhead(methods, cases):
        print(
            f"  per leaf: {row['setting']:<24} {row['dtype']:<9} {row['label']:<30} "
            f"{row['per_leaf_us']:>8.2f} us, excess {_fmt(row['excess_us'], '.2f', ' us')}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the suite and writes the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small trees: a smoke run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trees", nargs="+", choices=list(TREE_LABELS))
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS))
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--no-torch", action="store_true", help="skip torch even if installed")
    parser.add_argument("--no-tf", action="store_true", help="skip tf_keras even if installed")
    parser.add_argument(
        "--skip-bf16-peers", action="store_true", help="time torch and tf_keras on float32 only"
    )
    parser.add_argument(
        "--tf-max-leaves", type=int, default=2000, help="skip tf_keras on trees with more leaves"
    )
    args = parser.parse_args(argv)

    info = machine(peer_versions())
    print(f"{info['cpu']}, {info['cores']} cores, load {info['load']}; {info['versions']}")
    methods = all_methods(
        with_torch=torch_available() and not args.no_torch,
        with_tf=tf_keras_available() and not args.no_tf,
    )
    all_trees = trees(args.quick)
    cases_by_tree = []
    for tree in args.trees or list(all_trees):
        shapes = all_trees[tree]
        params, grads = host_inputs(shapes)
        tree_cases = [
            Case(tree, shapes, SETTINGS[s], dtype, params, grads)
            for s in args.settings or list(SETTINGS)
            for dtype in args.dtypes or list(DTYPES)
        ]
        measure(methods, tree_cases, args)
        cases_by_tree += tree_cases
        del params, grads
        for case in tree_cases:
            case.params, case.grads = [], []
        gc.collect()
    cases = cases_by_tree
    print()
    print_table(methods, cases)

    args.out.mkdir(parents=True, exist_ok=True)
    write_section(args.out / "RESULTS.md", SECTION, markdown(methods, cases, info, args))
    print(f"\nwrote {args.out / 'RESULTS.md'}")
    plot(methods, cases, args.out)


if __name__ == "__main__":
    main()
