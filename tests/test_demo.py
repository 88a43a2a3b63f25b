"""The demo trains: its loss falls on both paths, it times them and it plots the curves."""

from __future__ import annotations

import builtins
import pathlib
from typing import Any

import numpy as np
import pytest

from rmsprop_jax.__main__ import main
from rmsprop_jax._demo import run_demo

SMALL = {"vocab": 2_000, "dim": 8, "batch": 64}


def test_demo_loss_falls_on_both_paths_and_times_them(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_demo(steps=60, plot=tmp_path / "loss.png", progress=False, **SMALL)
    for losses in (result.sparse_losses, result.dense_losses):
        assert len(losses) == 60 and np.all(np.isfinite(losses))
        assert np.mean(losses[-10:]) < 0.25 * losses[0]
    # same start, same batches: the first step's loss is the same on both paths
    assert result.sparse_losses[0] == pytest.approx(result.dense_losses[0], rel=1e-6)
    assert result.sparse_ms > 0 and result.dense_ms > 0
    out = capsys.readouterr().out
    assert "loss fell from" in out
    assert f"sparse {result.sparse_ms:.2f} ms, dense {result.dense_ms:.2f} ms" in out


def test_demo_saves_a_png_of_the_loss_curves(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "plots" / "loss.png"
    result = run_demo(steps=5, plot=path, progress=False, **SMALL)
    assert result.plot == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_runs_without_tqdm_and_matplotlib(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_extras(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("tqdm", "matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extras)
    result = run_demo(steps=3, plot=tmp_path / "loss.png", **SMALL)
    assert result.plot is None and not (tmp_path / "loss.png").exists()
    out = capsys.readouterr().out
    assert "no progress bar: tqdm is not installed" in out
    assert "no plot: matplotlib is not installed" in out
    assert 'pip install -e ".[demo]"' in out


def test_command_line_runs_the_demo(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "demo.png"
    args = ["demo", "--steps", "20", "--vocab", "500", "--dim", "4", "--batch", "16"]
    assert main([*args, "--plot", str(plot), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "step    19" in out and "the sparse path is" in out
    assert plot.exists() or "no plot" in out


def test_command_line_rejects_bad_sizes_naming_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--steps", "1"])
    assert exit_info.value.code == 2
    assert "`steps` must be at least 2. Received: steps=1" in capsys.readouterr().err


def test_command_line_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        main([])
