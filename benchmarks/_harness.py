"""The benchmark harness: what every suite shares, so that each suite keeps only its cases and
its peers' adapters.

- `Method`: one way of taking a step (ours, a peer framework, a floor), with what it measured;
- `donated_runner`: a jitted JAX step with params and state donated, compiled (and timed) once;
- `measure`: warm-up, then rounds that time a case's methods in turns, each round starting from
  another method (or each method in turns with a floor, when they do not fit in memory
  together); the median over rounds, and each method's ratios to the floor round by round;
- `machine` and `versions`: the machine and versions a run's figures belong to;
- `save` / `load`: a run's figures as JSON next to RESULTS.md, so a section can be rendered
  again (`--render`) without timing anything;
- `Column`, `table`, `section` and `write_section`: Markdown tables as data (a header and a
  function of the row per column) and the short renderer that writes them;
- `bar_grid` and `loglog`: the plots;
- `parser` and `finish`: the command-line options every suite has, and the end of a run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import importlib
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jaxlib
import numpy as np

# A runner takes a number of steps, runs them, and returns once they are done.
Runner = Callable[[int], None]
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# Methods and runners


@dataclass
class Method:
    """One way of taking a step, and what it measured per case (keyed by the case's key)."""

    name: str
    label: str
    make: Callable[[Any], tuple[Runner, dict[str, Any]]] | None  # case -> runner, facts
    group: str = "peer"  # "ours", "peer" or "floor"
    times: dict[str, float] = field(default_factory=dict)  # seconds per step: median of samples
    samples: dict[str, list[float]] = field(default_factory=dict)  # one per round
    ratios: dict[str, list[float]] = field(default_factory=dict)  # over the floor, per round
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # compiled-step facts
    skipped: dict[str, str] = field(default_factory=dict)  # why it did not run


def by_name(methods: Iterable[Method], name: str) -> Method | None:
    """The method called ``name``, or None."""
    return next((m for m in methods if m.name == name), None)


def temp_bytes(compiled: Any) -> int | None:
    """``memory_analysis()``'s temporary bytes of a compiled step, where XLA reports them."""
    memory = compiled.memory_analysis()
    return getattr(memory, "temp_size_in_bytes", None) if memory is not None else None


def count_ops(compiled: Any, pattern: str) -> int:
    """How many times ``pattern`` occurs in the compiled HLO text."""
    return len(re.findall(pattern, compiled.as_text()))


def donated_runner(
    init: Callable[[Any], Any],
    step: Callable[..., Any],
    params: Any,
    batches: Sequence[tuple[Any, ...]],
    facts: Callable[[Any, Any], dict[str, Any]] | None = None,
) -> tuple[Runner, dict[str, Any]]:
    """Compiles ``step(params, state, *batch)`` with params and state donated; a runner over it.

    The runner cycles through ``batches`` (one batch: the same inputs every step). The facts
    are ``compile_s`` (wall time of ``lower(...).compile()``) and ``facts(compiled, state)``.
    """
    state = init(params)
    jax.block_until_ready(state)
    start = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, *batches[0]).compile()
    found = {"compile_s": time.perf_counter() - start}
    if facts is not None:
        found |= facts(compiled, state)
    carry = [params, state]
    position = [0]

    def run(steps: int) -> None:
        params, state = carry
        for _ in range(steps):
            batch = batches[position[0] % len(batches)]
            position[0] += 1
            params, state = compiled(params, state, *batch)
        jax.block_until_ready((params, state))
        carry[:] = [params, state]

    return run, found


# ---------------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class Timing:
    """How a suite times its methods."""

    repeats: int  # rounds
    min_sample_seconds: float = 0.2  # a sample runs at least this long (at most 200 steps)
    slow_step_seconds: float = 2.0  # a method whose warm step takes longer is not in the rounds:
    slow_repeats: int = 0  # it takes this many samples of one step (0: its warm step's time)


def _build(method: Method, case: Any, timing: Timing) -> tuple[Runner, int] | None:
    """Makes and warms up a method's runner, and the steps of one sample; None for a slow method,
    which is sampled at once."""
    assert method.make is not None, f"{method.name} has no runner (loaded from JSON)"
    start = time.perf_counter()
    run, method.notes[case.key] = method.make(case)
    steps, single = _warm(run, timing)
    print(f"  {case.key:<24} {method.label:<41} set up in {time.perf_counter() - start:,.1f} s")
    if single <= timing.slow_step_seconds:
        return run, steps
    method.samples[case.key] = [_sample(run, 1) for _ in range(timing.slow_repeats)] or [single]
    return None


def _warm(run: Runner, timing: Timing) -> tuple[int, float]:
    """Warms ``run`` up; returns the steps one sample takes, and one step's time."""
    run(2)  # first execution, caches, allocator
    start = time.perf_counter()
    run(1)
    single = time.perf_counter() - start
    return max(1, min(200, int(timing.min_sample_seconds / max(single, 1e-9)))), single


def _sample(run: Runner, steps: int) -> float:
    start = time.perf_counter()
    run(steps)
    return (time.perf_counter() - start) / steps


def measure(
    methods: Sequence[Method],
    cases: Sequence[Any],
    timing: Timing,
    skip: Callable[[Method, Any], str | None] = lambda method, case: None,
    floor: str | None = None,
    fits: Callable[[Any, int], bool] = lambda case, count: True,
) -> dict[str, str]:
    """Fills each method's ``times``, ``samples``, ``ratios``, ``notes`` and ``skipped`` per case.

    A case's methods are built and warmed up, then timed in ``timing.repeats`` rounds: a round
    takes one sample (the mean step time over a few steps) of each method, starting from the
    next method each round, so a change in the machine's load hits all of them alike. The time
    is the median over rounds. With a ``floor`` (a method's name), each other method's
    ``ratios`` are its sample over the floor's of the same round. When ``fits(case, count)``
    says that the methods do not fit in memory together, each is built and timed in rounds with
    the floor alone (built once per case, its time the median of all its samples).

    Returns how each case was timed: "together" or "in pairs".
    """
    how = {}
    for case in cases:
        todo = []
        for method in methods:
            if reason := skip(method, case):
                method.skipped[case.key] = reason
            else:
                todo.append(method)
        base = by_name(todo, floor) if floor else None
        together = base is None or fits(case, len(todo))
        how[case.key] = "together" if together else "in pairs"
        live: dict[str, tuple[Runner, int]] = {}
        for group in [todo] if together else [[base, m] for m in todo if m is not base]:
            for method in group:
                if method.name not in live and (built := _build(method, case, timing)):
                    live[method.name] = built
            timed = [m for m in group if m.name in live]
            for r in range(timing.repeats if timed else 0):
                turn = timed[r % len(timed) :] + timed[: r % len(timed)]
                taken = {m.name: _sample(*live[m.name]) for m in turn}
                for m in timed:
                    m.samples.setdefault(case.key, []).append(taken[m.name])
                    if base is not None and m is not base and base.name in taken:
                        m.ratios.setdefault(case.key, []).append(taken[m.name] / taken[base.name])
            for method in group:
                if method is not base:
                    live.pop(method.name, None)
            gc.collect()
        live.clear()
        gc.collect()
        for method in todo:
            _done(case, method)
    return how


def spread(values: Sequence[float], spec: str = ",.2f", suffix: str = "x") -> str:
    """The median of ``values`` and, for more than one, their range: the figure and its noise."""
    text = f"{statistics.median(values):{spec}}{suffix}"
    return text + (f" ({min(values):{spec}}–{max(values):{spec}})" if len(values) > 1 else "")


def _done(case: Any, method: Method) -> None:
    samples = method.samples[case.key]
    method.times[case.key] = statistics.median(samples)
    ratio = method.ratios.get(case.key)
    print(
        f"  {case.key:<24} {method.label:<41}{spread([t * 1e3 for t in samples], ',.3f', ' ms')}"
        + (f", {spread(ratio)} the floor" if ratio else "")
        + f"   (load {os.getloadavg()[0]:.2f})",
        flush=True,
    )


def free_memory() -> int:
    """Bytes free for new arrays: the device's where JAX says, else the host's MemAvailable."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    with open("/proc/meminfo") as info:
        return next(int(line.split()[1]) * 1024 for line in info if "MemAvailable" in line)


# ---------------------------------------------------------------------------------------------
# The machine


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def available(*modules: str) -> bool:
    """Whether every one of ``modules`` can be imported."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def versions(peers: Mapping[str, str]) -> dict[str, str]:
    """Name -> version of each peer (name -> module) that imports; the others are left out."""
    found = {}
    for name, module in peers.items():
        if available(module):
            found[name] = str(importlib.import_module(module).__version__)
    return found


def machine(peer_versions: Mapping[str, str]) -> dict[str, str]:
    """The machine and versions a run's figures belong to (the peers' after the JAX stack)."""
    stack = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        **versions({"optax": "optax", "rmsprop_jax": "rmsprop_jax"}),  # a TF child may lack them
        "numpy": np.__version__,
        **peer_versions,
    }
    try:
        with open("/proc/meminfo") as info:
            memory = f"{int(info.readline().split()[1]) / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = "unknown RAM"
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
        "versions": ", ".join(f"{name} {version}" for name, version in stack.items()),
        "date": datetime.date.today().isoformat(),
        "load": f"{os.getloadavg()[0]:.2f}",
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
    }


def produced_by(command: str, info: Mapping[str, str], provisional: bool) -> str:
    """The sentence that opens a section: the command, the date, the machine, the versions."""
    text = (
        f"Produced by `{command}` on {info['date']}: {info['cpu']}, {info['cores']} cores, "
        f"{info['memory']}, JAX backend `{info['backend']}`"
        + (f" on one {info['device']}" if info["backend"] != "cpu" and "device" in info else "")
        + f", Python {info['python']}; "
        f"{info['versions']}. Load average when it started: {info['load']} (other work on the "
        "machine inflates the times)."
    )
    if provisional:
        text += " **Provisional: a reduced smoke run, not figures to quote.**"
    return text


# ---------------------------------------------------------------------------------------------
# A run's figures as data


def run_record(
    script: str,
    argv: Sequence[str] | None,
    info: Mapping[str, str],
    repeats: int,
    provisional: bool,
    cases: Iterable[Any],
) -> dict[str, Any]:
    """What a run saves beside its figures: the command as typed (less ``--out``), the machine,
    the repetitions, whether it is a reduced (provisional) run, and each case's record."""
    given = " ".join(sys.argv[1:] if argv is None else argv)
    given = re.sub(r"\s*--out(=|\s+)\S+", "", given)  # where it wrote is not how it ran
    return {
        "command": f"python benchmarks/{script} {given}".strip(),
        "machine": dict(info),
        "repeats": repeats,
        "provisional": bool(provisional),
        "cases": [case.record() for case in cases],
    }


def save(path: Path, run: Mapping[str, Any], methods: Sequence[Method]) -> None:
    """Writes a run's figures as JSON: ``run`` (the suite's own record) and the methods'."""
    records = [{k: v for k, v in dataclasses.asdict(m).items() if k != "make"} for m in methods]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**run, "methods": records}, indent=1) + "\n")
    print(f"wrote {path}")


def load(path: Path) -> tuple[dict[str, Any], list[Method]]:
    """A run saved by `save`: the suite's record and its methods (no runners: to render)."""
    run = json.loads(path.read_text())
    return run, [Method(make=None, **record) for record in run.pop("methods")]


# ---------------------------------------------------------------------------------------------
# Markdown: tables as data, and the renderer


@dataclass(frozen=True)
class Column:
    """A table column: its header and the cell it shows for a row."""

    header: str
    cell: Callable[[Any], str]
    left: bool = False  # text columns are left-aligned, numbers right-aligned


def table(columns: Sequence[Column], rows: Iterable[Any]) -> str:
    """A Markdown table, one line per row."""
    lines = [
        "| " + " | ".join(c.header for c in columns) + " |",
        "|" + "".join("---|" if c.left else "---:|" for c in columns),
    ]
    lines += ["| " + " | ".join(c.cell(row) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def text_table(columns: Sequence[Column], rows: Iterable[Any]) -> str:
    """The same table as plain text for the terminal."""
    grid = [[c.header for c in columns]] + [[c.cell(row) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if c.left else cell.rjust(w)
            for cell, w, c in zip(line, widths, columns, strict=True)
        )
        for line in grid
    )


def section(header: str, *blocks: str | None) -> str:
    """A RESULTS.md section: the header, then the blocks that are not None, blank-line apart."""
    return "\n\n".join([header, *(b for b in blocks if b)]) + "\n"


def image(alt: str, path: str) -> str:
    """A Markdown image."""
    return f"![{alt}]({path})"


def fmt(value: float | None, spec: str = ",.2f", suffix: str = "x") -> str:
    """A number with its unit, or ``n/a``."""
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def write_section(path: Path, header: str, text: str) -> None:
    """Replaces the section that starts with ``header`` in ``path`` (or appends it).

    A section runs from its ``## `` header to the next ``## `` header, so the other sections,
    hand-written notes included, are kept.
    """
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(header)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = text.rstrip("\n") + "\n"
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")


# ---------------------------------------------------------------------------------------------
# Plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_grid(
    groups: Mapping[str, Sequence[Any]],
    series: Sequence[tuple[str, Callable[[Any], float | None], bool]],
    *,
    xlabel: Callable[[Any], str],
    ylabel: str,
    titles: Mapping[str, str],
    title: str,
    path: Path,
    log: bool,
) -> None:
    """One bar chart per group (one row each), one bar per series and row.

    Args:
      groups: panel name -> its rows (the x axis).
      series: (label, value of a row or None, hatched) per bar.
      xlabel: the x tick label of a row.
      ylabel, title: the axis label and the figure's title.
      titles: panel name -> panel title.
      path: where to save the PNG.
      log: logarithmic y axis.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.4 * len(groups)), squeeze=False)
    width = 0.8 / len(series)
    for ax, (group, rows) in zip(axes[:, 0], groups.items(), strict=True):
        x = np.arange(len(rows))
        for i, (label, value, hatched) in enumerate(series):
            heights = [value(row) for row in rows]
            ax.bar(
                x + (i - (len(series) - 1) / 2) * width,
                [h if h is not None else 0.0 for h in heights],
                width,
                label=label,
                hatch="//" if hatched else None,
            )
        ax.set_xticks(x, [xlabel(row) for row in rows], fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(titles[group], fontsize=10)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def loglog(
    lines: Sequence[tuple[str, Sequence[float], Sequence[float], str]],
    *,
    xticks: Sequence[float],
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
) -> None:
    """One log-log line per (label, xs, ys, matplotlib style)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, xs, ys, style in lines:
        ax.loglog(xs, ys, style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xticks(list(xticks), [f"{x:,}" for x in xticks])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def can_plot() -> bool:
    """Whether matplotlib is installed (else the run says so and writes no plot)."""
    if available("matplotlib"):
        return True
    print("matplotlib is not installed: no plots written (pip install matplotlib)")
    return False


# ---------------------------------------------------------------------------------------------
# Command line


def parser(script: str, doc: str, repeats: int) -> argparse.ArgumentParser:
    """The options every suite has; ``script`` is its file name in ``benchmarks/``."""
    cli = argparse.ArgumentParser(
        prog=f"python benchmarks/{script}",
        description=doc.splitlines()[0],
        epilog=f"Writes its section of OUT/RESULTS.md, its figures as OUT/results/"
        f"{Path(script).stem}.json and its plots in OUT.",
    )
    cli.add_argument("--repeats", type=int, default=repeats, help=f"default {repeats}")
    cli.add_argument("--out", type=Path, default=HERE, help="default: benchmarks/")
    cli.add_argument(
        "--render",
        action="store_true",
        help="time nothing: render the section and plots again from OUT/results/*.json",
    )
    return cli


def data_path(out: Path, script: str) -> Path:
    """Where a suite's figures are saved as JSON."""
    return out / "results" / f"{Path(script).stem}.json"


def finish(out: Path, header: str, text: str, plot: Callable[[], None]) -> None:
    """Writes the section into OUT/RESULTS.md and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    write_section(out / "RESULTS.md", header, text)
    print(f"\nwrote {out / 'RESULTS.md'}")
    if can_plot():
        plot()
