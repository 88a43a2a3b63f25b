"""The command line names itself as typed: ``python -m rmsprop_jax`` or ``rmsprop-jax``."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from rmsprop_jax.__main__ import main

ROOT = pathlib.Path(__file__).parents[1]


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "rmsprop_jax", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"]])
def test_python_dash_m_names_itself_as_typed(args: list[str]) -> None:
    done = run_module(*args)
    assert done.returncode == 0, done.stderr
    command = " ".join(["python -m rmsprop_jax", *args[:-1]])
    assert done.stdout.startswith(f"usage: {command} [-h]"), done.stdout[:200]
    assert "__main__" not in done.stdout


def test_console_script_names_itself_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: rmsprop-jax demo [-h]")


def test_bench_says_where_the_benchmarks_are() -> None:
    done = run_module("bench", "--help")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m rmsprop_jax [-h]")
    assert "there is no `bench` command" in done.stderr
    assert "python benchmarks/suite.py" in done.stderr
    assert (ROOT / "benchmarks" / "suite.py").is_file()
