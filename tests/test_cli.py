"""The command line: `python -m rmsprop_jax bench` runs the benchmark suite of a checkout."""

from __future__ import annotations

import pathlib

import jax
import pytest

from rmsprop_jax.__main__ import main


def test_bench_runs_the_suite_and_writes_its_section(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The suite runs optax's own code, which is not clean under strict dtype promotion.
    with jax.numpy_dtype_promotion("standard"):
        code = main(
            [
                "bench",
                "--quick",
                "--no-torch",
                "--no-tf",
                "--trees",
                "many",
                "--settings",
                "plain",
                "--dtypes",
                "float32",
                "--repeats",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    assert code == 0
    results = (tmp_path / "RESULTS.md").read_text()
    assert "## Dense step suite" in results and "optax" in results
    assert "rj" in capsys.readouterr().out
