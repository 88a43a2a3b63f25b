"""rmsprop_jax: RMSprop for JAX with the numbers of tf.keras, Keras 3, TF1, PyTorch and Optax."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the command line and runs the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m rmsprop_jax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a small model with rj.rmsprop on synthetic data")
    demo.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    demo.add_argument("--learning-rate", type=float, default=1e-2, help="default 1e-2")
    demo.add_argument("--seed", type=int, default=0, help="data and init seed (default 0)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(steps=args.steps, learning_rate=args.learning_rate, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
