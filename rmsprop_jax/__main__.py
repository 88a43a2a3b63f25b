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
    demo = commands.add_parser(
        "demo",
        help="train a small embedding model with rj.rmsprop on synthetic data",
        description="Trains a model with an embedding table and two dense layers on a synthetic "
        "dataset made on the spot, once on the sparse path (rj.SparseRows gradients for the "
        "table) and once on the dense path, from the same start on the same batches. Prints the "
        "loss falling and the two paths' step times, and saves a PNG of the loss curves. The "
        'progress bar needs tqdm and the plot matplotlib (pip install -e ".[demo]"); without '
        "them the demo runs and says what it skipped.",
    )
    demo.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    demo.add_argument("--learning-rate", type=float, default=3e-3, help="default 3e-3")
    demo.add_argument("--seed", type=int, default=0, help="data and init seed (default 0)")
    demo.add_argument("--vocab", type=int, default=100_000, help="table rows (default 100000)")
    demo.add_argument("--dim", type=int, default=32, help="table width (default 32)")
    demo.add_argument("--batch", type=int, default=256, help="samples per step (default 256)")
    demo.add_argument(
        "--plot",
        default="rmsprop_jax_demo.png",
        metavar="PATH",
        help="where to save the loss curves (default rmsprop_jax_demo.png)",
    )
    demo.add_argument("--no-plot", action="store_true", help="do not save a plot")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
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
        from ._demo import check_arguments, run_demo

        try:
            check_arguments(steps=args.steps, vocab=args.vocab, dim=args.dim, batch=args.batch)
        except ValueError as error:
            demo.error(str(error))
        run_demo(
            steps=args.steps,
            learning_rate=args.learning_rate,
            seed=args.seed,
            vocab=args.vocab,
            dim=args.dim,
            batch=args.batch,
            plot=None if args.no_plot else args.plot,
            progress=not args.no_progress,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
