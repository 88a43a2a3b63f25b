"""Multi-process training on ``jax.distributed``: real processes on 127.0.0.1, one global mesh.

tests/multiprocess/launcher.py starts the workers (tests/multiprocess/worker.py) as 2
processes x 4 CPU devices, 4 x 2 and the one-process 1 x 8 reference; each trains every config
of the worker (dense params split by rows and by columns, a replicated bias, a row-sharded
embedding table with `SparseRows` gradients, every sparse mode, momentum, centered, Nesterov,
``global_clipnorm``, ``skip_nonfinite``, init under jit and outside it) on an automatic and an
explicit mesh, and saves or restores Orbax checkpoints. The 2 x 4 run saves; the others restore
its checkpoint onto their own topology. Gloo (JAX's CPU collectives) sums in another order than
the in-process all-reduce of 1 x 8, so the reference agrees to round-off, not bit for bit.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.multiprocess import launcher

pytestmark = pytest.mark.slow
WORKER = Path(__file__).parent / "multiprocess" / "worker.py"
EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "multi_process.py"
ROWS, WIDTH, BATCH, LOOKUPS = 256, 8, 32, 3  # the worker's table and batch
FIRST, THEN = 3, 3
MESHES = ("auto", "explicit")
CONFIGS = ("keras", "keras_momentum_centered", "lazy_nesterov_clip", "dense_momentum_centered")
# 4 x 2 (four processes on the machine's cores, the costliest run) trains two of them: init
# outside jit with skip_nonfinite, and the sparse driver's per-row state under jit
FOUR_BY_TWO = ("keras", "dense_momentum_centered")
RTOL, ATOL = 1e-5, 1e-6
TIMEOUT = 600  # a hung run fails here; a healthy 4 x 2 run takes about a minute on 2 cores


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("multiprocess_checkpoints").resolve()  # absolute, shared


@pytest.fixture(scope="module")
def runs(checkpoints: Path) -> dict[str, list[dict[str, Any]]]:
    """Every layout's reports; 2 x 4 first, as the others restore its checkpoint."""
    out = {"2x4": launcher.launch(WORKER, 2, 4, ["--save", str(checkpoints)], timeout=TIMEOUT)}
    four = ["--restore", str(checkpoints), "--configs", ",".join(FOUR_BY_TWO)]
    out["4x2"] = launcher.launch(WORKER, 4, 2, four, timeout=TIMEOUT)
    out["1x8"] = launcher.launch(WORKER, 1, 8, ["--restore", str(checkpoints)], timeout=TIMEOUT)
    return out


def cases(layout: str = "2x4") -> list[tuple[str, str]]:
    """The (mesh, config) pairs that ``layout`` trains."""
    configs = FOUR_BY_TWO if layout == "4x2" else CONFIGS
    return [(mesh, config) for mesh in MESHES for config in configs]


def result(reports: list[dict[str, Any]], mesh: str, config: str) -> dict[str, Any]:
    return reports[0]["meshes"][mesh][config]


def test_layouts_are_real_processes_on_one_global_mesh(runs: dict[str, Any]) -> None:
    for layout, (processes, devices) in {"2x4": (2, 4), "4x2": (4, 2), "1x8": (1, 8)}.items():
        reports = runs[layout]
        assert [r["process_index"] for r in reports] == list(range(processes))
        assert {(r["process_count"], r["local_devices"]) for r in reports} == {(processes, devices)}
        assert {r["collectives_implementation"] for r in reports} == {"gloo"}


@pytest.mark.parametrize("layout", ["2x4", "4x2", "1x8"])
def test_every_process_reports_the_same_results(runs: dict[str, Any], layout: str) -> None:
    reports = runs[layout]
    for report in reports[1:]:
        assert report["meshes"] == reports[0]["meshes"]


def test_every_state_leaf_is_a_global_array(runs: dict[str, Any]) -> None:
    """Counters included, after tx.init outside jit as under it (the defect behind Orbax's
    'Cannot serialize host local jax.Array in multi-host setting')."""
    for layout in ("2x4", "4x2"):
        for mesh, config in cases(layout):
            got = result(runs[layout], mesh, config)
            assert got["init_not_global"] == [], (layout, mesh, config)
            assert got["state_not_global"] == [], (layout, mesh, config)
            assert got["restored_not_global"] == [], (layout, mesh, config)
        # rj.inject_hyperparams(rj.rmsprop): optax's counter and hyperparameters as well
        assert runs[layout][0]["inject_not_global"] == {"auto": [], "explicit": []}
    # and Orbax saved and restored them before the first step
    assert runs["2x4"][0]["inject_restored_equal"] == {"auto": True, "explicit": True}


@pytest.mark.parametrize(("mesh", "config"), cases("4x2"))
def test_two_by_four_equals_four_by_two_bit_for_bit(
    runs: dict[str, Any], mesh: str, config: str
) -> None:
    a, b = result(runs["2x4"], mesh, config), result(runs["4x2"], mesh, config)
    assert len(a["losses"]) == FIRST + THEN
    assert a["losses"] == b["losses"]
    for key in ("mid_digest", "final_digest", "materialized_digest"):
        assert a[key] == b[key], key


@pytest.mark.parametrize(("mesh", "config"), cases())
def test_one_process_reference_agrees_to_round_off(
    runs: dict[str, Any], mesh: str, config: str
) -> None:
    reference = result(runs["1x8"], mesh, config)
    for layout in ("2x4", "4x2") if config in FOUR_BY_TWO else ("2x4",):
        got = result(runs[layout], mesh, config)
        np.testing.assert_allclose(got["losses"], reference["losses"], rtol=RTOL, atol=ATOL)
        for name, value in reference["materialized_params"].items():
            np.testing.assert_allclose(
                got["materialized_params"][name], value, rtol=RTOL, atol=ATOL, err_msg=name
            )
    losses = reference["losses"]
    assert np.all(np.isfinite(losses)) and len(set(losses)) == len(losses)


def test_compiled_step_gathers_no_table_sized_buffer(runs: dict[str, Any]) -> None:
    """The largest array any collective moves is the looked-up rows, [96, 8], never the
    [256, 8] table (the table has more rows than the batch looks up; see docs/multi_device.md)."""
    lookups = BATCH * LOOKUPS * WIDTH
    for layout in ("2x4", "4x2", "1x8"):
        for mesh, config in cases(layout):
            moved = result(runs[layout], mesh, config)["collectives"]
            assert moved, (layout, mesh, config)  # the parser sees the step's collectives
            assert max(c["size"] for c in moved) == lookups, (layout, mesh, config, moved)
            assert all(c["size"] < ROWS * WIDTH for c in moved)


def test_checkpoints_from_every_process_restore_bit_for_bit(runs: dict[str, Any]) -> None:
    """Saved before the first step (init outside jit too) and mid-run, restored on 2 x 4; the
    run continued from the restored state equals the uninterrupted one bit for bit."""
    for mesh, config in cases():
        got = result(runs["2x4"], mesh, config)
        assert got["step0_restored_equal"], (mesh, config)
        assert got["restored_mid_digest"] == got["mid_digest"], (mesh, config)
        assert got["continued_losses"] == got["losses"][FIRST:], (mesh, config)
        assert got["continued_digest"] == got["final_digest"], (mesh, config)


@pytest.mark.parametrize(("mesh", "config"), cases("4x2"))
def test_checkpoint_restores_into_other_topologies(
    runs: dict[str, Any], mesh: str, config: str
) -> None:
    saved = result(runs["2x4"], mesh, config)
    four_by_two, reference = result(runs["4x2"], mesh, config), result(runs["1x8"], mesh, config)
    assert four_by_two["restored_mid_digest"] == saved["mid_digest"]
    assert reference["restored_mid_digest"] == saved["mid_digest"]
    # 4 x 2 continues exactly as 2 x 4 would have; 1 x 8 continues from the very same bits
    assert four_by_two["continued_losses"] == saved["losses"][FIRST:]
    assert four_by_two["continued_digest"] == saved["final_digest"]
    np.testing.assert_allclose(
        reference["continued_losses"], saved["losses"][FIRST:], rtol=RTOL, atol=ATOL
    )
    for name, value in four_by_two["continued_params"].items():
        np.testing.assert_allclose(
            reference["continued_params"][name], value, rtol=RTOL, atol=ATOL, err_msg=name
        )


def test_a_dying_worker_fails_the_run_with_its_error() -> None:
    """Worker 1 raises at step 1 while worker 0 waits in a collective: the launcher ends both
    and reports worker 1's traceback, long before the timeout."""
    start = time.monotonic()
    with pytest.raises(launcher.WorkerFailed, match="worker 1 of 2 exited with code 1") as info:
        launcher.launch(
            WORKER,
            2,
            4,
            ["--die-at", "1", "--meshes", "auto", "--configs", "keras"],
            timeout=TIMEOUT,
        )
    assert "RuntimeError: worker 1 dies on purpose at step 1" in str(info.value)
    assert time.monotonic() - start < TIMEOUT / 2  # failed on the error, not on the timeout


def test_launcher_ends_hung_workers_and_their_children(tmp_path: Path) -> None:
    hang = Path(__file__).parent / "multiprocess" / "hang.py"
    with pytest.raises(launcher.WorkerFailed, match=r"still ran after the 5 s timeout"):
        launcher.launch(hang, 2, 1, timeout=5, env={"RJ_HANG_PIDS": str(tmp_path)})
    pids = [int(p) for f in sorted(tmp_path.glob("*.pids")) for p in f.read_text().split()]
    assert len(pids) == 4  # two workers, each with a child
    assert not [pid for pid in pids if alive(pid)]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a killed child that its new parent has not reaped yet is dead)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_multi_process_example_trains_on_two_processes(tmp_path: Path) -> None:
    """docs/examples/multi_process.py launches itself as 2 x 4, with tx.init outside jit and an
    Orbax checkpoint written from both processes."""
    spec = importlib.util.spec_from_file_location("example_multi_process", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    checkpoint = tmp_path / "checkpoint"
    results = example.main(steps=12, processes=2, devices=4, checkpoint=str(checkpoint))
    assert [r["process"] for r in results] == [0, 1]
    assert all(r["devices"] == [2, 4] for r in results)
    assert results[0]["losses"] == results[1]["losses"]
    assert results[0]["table_sum"] == results[1]["table_sum"]
    losses = results[0]["losses"]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert (checkpoint / "commit_success.txt").exists()
    assert {p.name for p in checkpoint.glob("ocdbt.process_*")} == {
        "ocdbt.process_0",
        "ocdbt.process_1",
    }  # each process wrote its own shards
