"""The demo trains: its loss falls."""

from __future__ import annotations

import pytest

from rmsprop_jax.__main__ import main
from rmsprop_jax._demo import run_demo


def test_demo_loss_falls(capsys: pytest.CaptureFixture[str]) -> None:
    losses = run_demo(steps=60)
    assert losses[-1] < 0.2 * losses[0]
    assert "loss fell from" in capsys.readouterr().out


def test_command_line_runs_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--steps", "20"]) == 0
    assert "step    19" in capsys.readouterr().out


def test_command_line_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        main([])
