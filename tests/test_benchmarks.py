"""The benchmark harness renders what it measured: tables from data, the same after a JSON round
trip, and each script names itself as typed. No timing is asserted (speed lives in benchmarks/).
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import types
from typing import Any

import jax
import pytest

ROOT = pathlib.Path(__file__).parents[1]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The harness and the two suites, imported as their scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _harness
    import sparse
    import suite

    return _harness, suite, sparse


def test_table_is_columns_as_data(bench: Any) -> None:
    h, _, _ = bench
    columns = [h.Column("name", lambda r: r[0], left=True), h.Column("x", lambda r: f"{r[1]:.1f}")]
    assert h.table(columns, [("a", 1.0), ("b", 2.25)]) == (
        "| name | x |\n|---|---:|\n| a | 1.0 |\n| b | 2.2 |"
    )
    assert h.text_table(columns, [("a", 10.0)]) == "name     x\na     10.0"


def dense_run(h: Any, suite: Any) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """Two cases of the dense suite with given (not measured) times, one peer skipped."""
    cases = [
        suite.Case("big", [(1000, 2000)], suite.SETTINGS["plain"], "float32"),
        suite.Case("many", [(1000,)] * 200, suite.SETTINGS["plain"], "float32"),
    ]
    methods = suite.all_methods(with_torch=False, with_tf=False)
    times = {
        "floor": (2e-3, 1e-3),
        "ours": (4e-3, 2e-3),
        "optax": (5e-3, 3e-3),
        "keras": (8e-3, 9e-3),
    }
    for method in methods:
        for case, t in zip(cases, times[method.name], strict=True):
            method.times[case.key] = t
            if method.name in ("ours", "optax"):
                method.notes[case.key] = {
                    "compile_s": 0.5 if method.name == "ours" else 0.25,
                    "temp_bytes": 1024,
                    "state_bytes_per_param": 4.0,
                    "fusions": 3,
                    "copies": 0,
                }
    del methods[3].times[cases[1].key]
    methods[3].skipped[cases[1].key] = "keras skipped (a test)"
    info = h.machine({})
    run = {"command": "python benchmarks/suite.py", "machine": info, "repeats": 3}
    return methods, cases, run | {"provisional": True, "cases": [c.record() for c in cases]}


def test_dense_section_shows_the_figures_and_their_ratios(
    bench: Any, tmp_path: pathlib.Path
) -> None:
    h, suite, _ = bench
    methods, cases, run = dense_run(h, suite)
    text = suite.markdown(methods, cases, run)
    # big: 2M float32 params, one state buffer: 2e6 * (3 * 4 + 2 * 4) bytes = 40 MB
    assert "| big | plain | float32 | 2.00 | 4.00 | 5.00 | 8.00 | 0.80x | 0.50x |" in text
    assert "| many | plain | float32 | 1.00 | 2.00 | 3.00 | skipped | 0.67x | 0.50x |" in text
    assert "| big | plain | float32 | 40 MB | 20.00 | 10.00 | 8.00 | 5.00 | 50% |" in text
    assert (
        "| big | plain | float32 | 0.50 | 0.25 | 2.00x | 1,024 | 1,024 | 4.00 | 4.00 | 3 | 3 |"
        in text
    )
    assert "Skipped: keras skipped (a test)." in text
    assert "**Provisional" in text and text.startswith("## Dense step suite\n\nProduced by")
    # the same section from the saved figures
    h.save(tmp_path / "suite.json", run, methods)
    loaded, again = h.load(tmp_path / "suite.json")
    again_cases = [suite.Case.from_record(r) for r in loaded["cases"]]
    assert suite.markdown(again, again_cases, loaded) == text


def test_sparse_section_checks_the_targets(bench: Any) -> None:
    h, _, sparse = bench
    cases = [sparse.Case(1000, 64, 0.5), sparse.Case(4000, 64, 0.25)]
    small, large = (c.key for c in cases)
    methods = sparse.all_methods(with_tf=False)
    for method in methods:
        slow = 100.0 if method.name == "optax_dense" else 1.0
        method.times = {small: 1e-4 * slow, large: 1.2e-4 * slow**1.5}
        method.notes = {large: {"table_copies": 0, "temp_bytes": 2048}}
    run = {"command": "python benchmarks/sparse.py", "machine": h.machine({}), "repeats": 9}
    text = sparse.markdown(methods, cases, run | {"provisional": False})
    assert "| rj keras (momentum 0.9) | 100.0 | 120.0 |" in text
    # 1.2x <= 1.3x: met; optax dense at 4000 rows: 1.2e-4 * 1000 over 1.2e-4: 1000x >= 100x
    assert "| rj keras (momentum 0.9) | 1.20x (met) | 1,000.00x (met) | n/a |" in text
    assert "| optax.rmsprop on densified gradient | 0 | 2,048 |" in text
    assert "distinct rows per step: 32 at N=1,000, 16 at N=4,000" in text
    assert "Provisional" not in text


@pytest.mark.parametrize("together", [True, False])
def test_measure_times_in_rounds_each_starting_from_the_next_method(
    bench: Any, together: bool
) -> None:
    h, _, _ = bench
    log: list[str] = []

    def method(name: str) -> Any:
        return h.Method(name, name, lambda case: ((lambda steps: log.append(name * steps)), {}))

    a, b, f = methods = [method("a"), method("b"), method("f")]
    timing = h.Timing(3, min_sample_seconds=0.0)  # samples of one step
    how = h.measure(
        methods, [types.SimpleNamespace(key="c")], timing, floor="f", fits=lambda *_: together
    )
    # each is built and warmed up (three steps), then sampled in rounds, each from the next
    if together:
        assert how == {"c": "together"} and "".join(log) == "aaabbbfff" + "abfbfafab"
    else:  # the floor is built once, then each method takes turns with it alone
        assert how == {"c": "in pairs"}
        assert "".join(log) == "fffaaa" + "faaffa" + "bbb" + "fbbffb"
    assert len(a.samples["c"]) == len(b.samples["c"]) == len(a.ratios["c"]) == 3
    assert len(f.samples["c"]) == (3 if together else 6) and not f.ratios
    assert a.times["c"] == statistics.median(a.samples["c"])


@pytest.mark.slow  # a benchmark smoke run: compiles every method of every case
def test_sparse_smoke_run_writes_its_section_and_renders_it_again(
    bench: Any, tmp_path: pathlib.Path
) -> None:
    _, _, sparse = bench
    args = "--sizes 1000 --k 64 --repeats 2 --no-tf"
    sparse.main([*args.split(), "--out", str(tmp_path)])
    written = (tmp_path / "RESULTS.md").read_text()
    assert f"`python benchmarks/sparse.py {args}`" in written and "**Provisional" in written
    assert "Timed in 2 rounds after warm-up" in written and "Load average (1, 5 and 15" in written
    assert "TensorFlow was skipped (`--no-tf`): no TF row" in written
    assert "| rj keras (momentum 0.9) | " in written.split("paired: ")[1]  # its paired ratio
    (tmp_path / "RESULTS.md").unlink()
    sparse.main(["--render", "--out", str(tmp_path)])
    assert (tmp_path / "RESULTS.md").read_text() == written


@pytest.mark.fast_share(4)
@pytest.mark.parametrize("script", ["suite.py", "sparse.py", "keras_frontend.py", "layouts.py"])
def test_benchmark_scripts_name_themselves_as_typed(script: str) -> None:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: python benchmarks/{script} [-h]")


@pytest.mark.slow  # a benchmark smoke run: compiles every method of every case
def test_dense_suite_smoke_run_writes_its_section_and_renders_it_again(
    bench: Any, tmp_path: pathlib.Path
) -> None:
    _, suite, _ = bench
    args = "--quick --no-torch --no-tf --trees many --settings plain --dtypes float32 --repeats 1"
    # The suite runs optax's own code, which is not clean under strict dtype promotion.
    with jax.numpy_dtype_promotion("standard"):
        suite.main([*args.split(), "--out", str(tmp_path)])
    written = (tmp_path / "RESULTS.md").read_text()
    assert "## Dense step suite" in written and "| many | plain | float32 |" in written
    assert f"`python benchmarks/suite.py {args}`" in written
    assert (tmp_path / "results" / "suite.json").is_file()
    pytest.importorskip("matplotlib")
    assert (tmp_path / "suite_time.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "RESULTS.md").unlink()
    suite.main(["--render", "--out", str(tmp_path)])
    assert (tmp_path / "RESULTS.md").read_text() == written


def _rendered(bench: Any, name: str, saved: str) -> tuple[dict[str, Any], str]:
    """The figures saved in ``results/<saved>.json`` and the section the harness renders."""
    h, suite, sparse = bench
    run, methods = h.load(BENCHMARKS / "results" / f"{saved}.json")
    module = suite if name == "suite" else sparse
    read = suite.Case.from_record if module is suite else lambda r: sparse.Case(**r)
    return run, module.markdown(methods, [read(r) for r in run["cases"]], run)


def test_results_md_is_what_the_harness_renders_from_the_saved_figures(bench: Any) -> None:
    results = (BENCHMARKS / "RESULTS.md").read_text()
    for name in ("suite", "sparse"):
        assert _rendered(bench, name, name)[1] in results


def test_gpu_sections_are_what_the_harness_renders_from_the_saved_figures(bench: Any) -> None:
    # The GPU run's sections: the same rendering under their own header, without the plots.
    _, suite, sparse = bench
    results = (BENCHMARKS / "RESULTS.md").read_text()
    for name, header in (("sparse", sparse.SECTION), ("suite", suite.SECTION)):
        run, text = _rendered(bench, name, f"h200_{name}")
        assert run["machine"]["backend"] == "gpu" and run["machine"]["device"] == "NVIDIA H200"
        text = text.replace(header, header + " on one NVIDIA H200 GPU", 1)
        section = "\n".join(line for line in text.split("\n") if not line.startswith("![")).rstrip()
        assert "JAX backend `gpu` on one NVIDIA H200" in section
        assert section in results
