"""The demo trains: its loss falls on both paths, it times them and it plots the curves.

The first losses are checked against a float64 NumPy restatement of the demo's data and model
(written from its docstring: a teacher of the same shape makes the targets, the student starts
from a 0.05-scaled table); the plot is read back and must show both curves.
"""

from __future__ import annotations

import builtins
import pathlib
from typing import Any

import numpy as np
import pytest

from rmsprop_jax.__main__ import main
from rmsprop_jax._demo import run_demo

SMALL = {"vocab": 2_000, "dim": 8, "batch": 64}
TOKENS, FEATURES, HIDDEN = 8, 8, 64
PNG = b"\x89PNG\r\n\x1a\n"
CURVES = {"dense": (0x1F, 0x77, 0xB4), "sparse": (0xFF, 0x7F, 0x0E)}  # matplotlib's C0, C1


def first_loss(*, seed: int, vocab: int, dim: int, batch: int) -> float:
    """The loss before any update, in float64: the 0.05-scaled student against the teacher."""
    rng = np.random.default_rng(seed)

    def init(scale: float) -> dict[str, np.ndarray]:
        def normal(*shape: int) -> np.ndarray:  # drawn in float32, as the demo draws them
            return rng.normal(size=shape).astype(np.float32).astype(np.float64)

        return {
            "table": scale * normal(vocab, dim),
            "w1": normal(dim + FEATURES, HIDDEN) / np.sqrt(dim + FEATURES),
            "b1": np.zeros(HIDDEN),
            "w2": normal(HIDDEN, 1) / np.sqrt(HIDDEN),
            "b2": np.zeros(1),
        }

    def forward(p: dict[str, np.ndarray], tokens: np.ndarray, features: np.ndarray) -> np.ndarray:
        x = np.concatenate([p["table"][tokens].mean(axis=1), features], axis=-1)
        return (np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])[:, 0]

    teacher, student = init(1.0), init(0.05)
    data = np.random.default_rng((seed, 0))  # the batch of step 0
    tokens = (data.zipf(1.2, size=(batch, TOKENS)) - 1) % vocab
    features = data.normal(size=(batch, FEATURES)).astype(np.float32).astype(np.float64)
    return float(
        np.mean((forward(student, tokens, features) - forward(teacher, tokens, features)) ** 2)
    )


def assert_png_of_two_curves(path: pathlib.Path) -> None:
    """The file is a 770 x 440 PNG (7 x 4 inches at 110 dpi) drawing both loss curves."""
    raw = path.read_bytes()
    assert raw[:8] == PNG
    assert int.from_bytes(raw[16:20], "big") == 770 and int.from_bytes(raw[20:24], "big") == 440
    import matplotlib.pyplot as plt

    rgb = np.round(plt.imread(path)[..., :3] * 255).astype(int)
    for name, colour in CURVES.items():
        pixels = int(np.sum(np.all(np.abs(rgb - np.array(colour)) <= 8, axis=-1)))
        assert pixels > 40, f"the {name} curve is not drawn ({pixels} pixels of its colour)"


@pytest.mark.slow  # a whole training run; CI runs it
def test_demo_loss_falls_on_both_paths_and_times_them(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_demo(steps=60, plot=tmp_path / "loss.png", progress=False, **SMALL)
    for losses in (result.sparse_losses, result.dense_losses):
        assert len(losses) == 60 and np.all(np.isfinite(losses))
        assert np.mean(losses[-10:]) < 0.25 * losses[0]
    # same start, same batches: the loss before any update is the float64 restatement's, and
    # the second too is the same on both paths (no row has momentum yet that a batch missed)
    want = first_loss(seed=0, **SMALL)
    np.testing.assert_allclose(result.sparse_losses[0], want, rtol=1e-5)
    np.testing.assert_allclose(result.dense_losses[0], want, rtol=1e-5)
    np.testing.assert_allclose(result.sparse_losses[1], result.dense_losses[1], rtol=1e-5)
    assert result.sparse_losses[1] < result.sparse_losses[0]
    assert result.sparse_ms > 0 and result.dense_ms > 0
    out = capsys.readouterr().out
    assert f"loss fell from {result.sparse_losses[0]:.5f} at step 0" in out
    assert f"sparse {result.sparse_ms:.2f} ms, dense {result.dense_ms:.2f} ms" in out


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
    pytest.importorskip("matplotlib")  # the demo extra; the README's test install has it
    plot = tmp_path / "plots" / "demo.png"  # the folder is made too
    args = ["demo", "--steps", "20", "--vocab", "500", "--dim", "4", "--batch", "16"]
    assert main([*args, "--plot", str(plot), "--no-progress"]) == 0
    out = capsys.readouterr().out
    want = first_loss(seed=0, vocab=500, dim=4, batch=16)
    assert f"loss fell from {want:.5f} at step 0" in out
    assert "step    19" in out and "the sparse path is" in out
    assert f"plot of the loss curves saved to {plot}" in out
    assert_png_of_two_curves(plot)


def test_command_line_rejects_bad_sizes_naming_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--steps", "1"])
    assert exit_info.value.code == 2
    assert "`steps` must be at least 2. Received: steps=1" in capsys.readouterr().err


def test_command_line_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        main([])
