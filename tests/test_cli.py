"""The command line names itself as typed: ``python -m rmsprop_jax`` or ``rmsprop-jax``."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from rmsprop_jax.__main__ import main

ROOT = pathlib.Path(__file__).parents[1]


def run_module(*args: str, python_args: tuple[str, ...] = ("-m", "rmsprop_jax")) -> Any:
    """``python -m rmsprop_jax *args`` (or ``python *python_args *args``) on this checkout."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, *python_args, *args],
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


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"], ["demo", "--steps", "0"]])
def test_the_cli_answers_without_importing_jax(args: list[str]) -> None:
    # Importing JAX is what made `--help` take seconds: the help and the argument errors
    # must come before it (the package's public names load on first use).
    probe = (
        "import sys, rmsprop_jax.__main__ as m\n"
        "try:\n    m.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('JAX IMPORTED' if 'jax' in sys.modules else 'NO JAX', file=sys.stderr)\n"
    )
    done = run_module(*args, python_args=("-c", probe))
    assert done.stderr.strip().endswith("NO JAX"), done.stderr[-500:]


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--learning-rate", "-1"],
            "`learning_rate` must be a positive number. Received: learning_rate=-1.0",
        ),
        (
            ["--learning-rate", "nan"],
            "`learning_rate` must be a positive number. Received: learning_rate=nan",
        ),
        (["--steps", "1"], "`steps` must be at least 2. Received: steps=1"),
        (["--batch", "0"], "`batch` must be at least 1. Received: batch=0"),
    ],
)
def test_a_bad_demo_option_is_a_one_line_error(args: list[str], message: str) -> None:
    done = run_module("demo", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"python -m rmsprop_jax demo: error: {message}"


def test_the_speed_line_says_slower_when_slower() -> None:
    from rmsprop_jax._demo import speed_phrase

    assert speed_phrase(dense_ms=1.0, sparse_ms=2.5) == "the sparse path is 2.5x slower"
    assert speed_phrase(dense_ms=2.5, sparse_ms=1.0) == "the sparse path is 2.5x faster"
