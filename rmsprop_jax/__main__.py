"""rmsprop_jax: RMSprop for JAX with the numbers of tf.keras, Keras 3, TF1, PyTorch and Optax."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _run_suite(suite_args: list[str]) -> int:
    """Runs ``benchmarks/suite.py`` from the source checkout this package lives in."""
    import runpy
    from pathlib import Path

    suite = Path(__file__).resolve().parents[1] / "benchmarks" / "suite.py"
    if not suite.is_file():
        print(
            f"The benchmark suite is not installed with the package: {suite} does not exist. "
            "Run `python -m rmsprop_jax bench` from a source checkout (pip install -e .)."
        )
        return 2
    sys.path.insert(0, str(suite.parent))  # the suite imports its sibling helpers
    try:
        runpy.run_path(str(suite), run_name="rmsprop_jax_bench")["main"](suite_args)
    finally:
        sys.path.remove(str(suite.parent))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the command line and runs the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m rmsprop_jax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a small model with rj.rmsprop on synthetic data")
    demo.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    demo.add_argument("--learning-rate", type=float, default=1e-2, help="default 1e-2")
    demo.add_argument("--seed", type=int, default=0, help="data and init seed (default 0)")
    bench = commands.add_parser(
        "bench",
        help="the dense benchmark suite (benchmarks/suite.py of a source checkout)",
        description="Runs benchmarks/suite.py; the arguments after `bench` are passed to it "
        "(see `python -m rmsprop_jax bench --help`).",
        add_help=False,
    )
    del bench  # its arguments belong to the suite's own parser
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _run_suite(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(steps=args.steps, learning_rate=args.learning_rate, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
