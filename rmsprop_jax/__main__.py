"""rmsprop_jax: RMSprop for JAX with the numbers of tf.keras, Keras 3, TF1, PyTorch and Optax."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

CONSOLE_SCRIPT = "rmsprop-jax"  # [project.scripts] in pyproject.toml
EPILOG = (
    "The benchmarks are not part of the installed package; from a source checkout run "
    "`python benchmarks/suite.py` (dense step) or `python benchmarks/sparse.py` (sparse step)."
)


def main(argv: Sequence[str] | None = None, *, prog: str = CONSOLE_SCRIPT) -> int:
    """Parses the command line and runs the chosen command.

    Args:
      argv: the arguments after the program's name (default ``sys.argv[1:]``).
      prog: the program's name as the user typed it, shown in usage and error messages:
        ``rmsprop-jax`` for the console script, ``python -m rmsprop_jax`` for the module.
    """
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EPILOG)
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the command of 0.1.0, which ran a file the wheel lacks
        parser.error(f"there is no `bench` command. {EPILOG}")
    args = parser.parse_args(argv)
    if args.command == "demo":
        for name, low in (("steps", 2), ("vocab", 1), ("dim", 1), ("batch", 1)):
            if getattr(args, name) < low:
                demo.error(
                    f"`{name}` must be at least {low}. Received: {name}={getattr(args, name)}"
                )
        if not 0 < args.learning_rate < math.inf:
            demo.error(
                f"`learning_rate` must be a positive number. Received: "
                f"learning_rate={args.learning_rate}"
            )
        from ._demo import run_demo  # imports JAX: only once the arguments are known to be good

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
    raise SystemExit(main(prog="python -m rmsprop_jax"))
