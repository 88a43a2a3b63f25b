"""The demo: a small model with an embedding table, trained with `rmsprop` on synthetic data.

The same model is trained twice from the same start on the same batches: once on the sparse path
(the table's gradient as `SparseRows`, so a step touches only the looked-up rows) and once on the
dense path (the whole table's gradient, as ``optax`` would see it). The demo prints both losses
falling, compares the two paths' step times and saves a plot of the loss curves. ``tqdm`` (the
progress bar) and ``matplotlib`` (the plot) are optional: ``pip install -e ".[demo]"``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._alias import rmsprop
from ._embedding import value_and_sparse_grad
from ._tree import apply_updates

__all__ = ["DemoResult", "check_arguments", "run_demo"]

TOKENS, FEATURES, HIDDEN = 8, 8, 64  # tokens per sample, dense features, hidden units
MISSING = 'not installed; `pip install -e ".[demo]"` adds it'


class DemoResult(NamedTuple):
    """What the demo measured."""

    sparse_losses: list[float]  # loss at every step, sparse path
    dense_losses: list[float]  # loss at every step, dense path
    sparse_ms: float  # median step time after compilation, milliseconds
    dense_ms: float
    plot: Path | None  # the PNG written, or None


@dataclasses.dataclass(frozen=True)
class _Data:
    """A synthetic click-rating task: a teacher model of the same shape makes the targets."""

    teacher: dict[str, np.ndarray]
    vocab: int
    batch: int
    seed: int

    def batch_at(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids (Zipf-popular), dense features and targets of one step."""
        rng = np.random.default_rng((self.seed, step))
        tokens = ((rng.zipf(1.2, size=(self.batch, TOKENS)) - 1) % self.vocab).astype(np.int32)
        features = rng.normal(size=(self.batch, FEATURES)).astype(np.float32)
        rows = self.teacher["table"][tokens]
        y = _forward_np(self.teacher, rows, features)
        return tokens, features, y


@dataclasses.dataclass
class _Run:
    """One path's training run: its jitted step, params and state, and what it measured."""

    step: Callable[..., Any]
    params: Any
    state: Any
    losses: list[float] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)

    def advance(self, batch: tuple[np.ndarray, ...]) -> float:
        """Takes one step, timing it (``float(loss)`` waits for the device)."""
        start = time.perf_counter()
        self.params, self.state, loss = self.step(self.params, self.state, *batch)
        self.losses.append(float(loss))
        self.seconds.append(time.perf_counter() - start)
        return self.losses[-1]

    def median_ms(self) -> float:
        """Median step time after the first (compiling) step, in milliseconds."""
        return 1e3 * statistics.median(self.seconds[1:])


def _forward_np(p: dict[str, np.ndarray], rows: np.ndarray, features: np.ndarray) -> np.ndarray:
    hidden = np.tanh(np.concatenate([rows.mean(1), features], -1) @ p["w1"] + p["b1"])
    return (hidden @ p["w2"] + p["b2"])[:, 0].astype(np.float32)


def _forward(dense: dict[str, jax.Array], rows: jax.Array, features: jax.Array) -> jax.Array:
    """The model: mean of the token embeddings, with the dense features, through two layers."""
    x = jnp.concatenate([rows.mean(axis=1), features], axis=-1)
    hidden = jnp.tanh(x @ dense["w1"] + dense["b1"][None, :])
    return (hidden @ dense["w2"] + dense["b2"][None, :])[:, 0]


def _init(rng: np.random.Generator, vocab: int, dim: int, scale: float) -> dict[str, np.ndarray]:
    def normal(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    return {
        "table": scale * normal(vocab, dim),
        "w1": normal(dim + FEATURES, HIDDEN) / np.float32(np.sqrt(dim + FEATURES)),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": normal(HIDDEN, 1) / np.float32(np.sqrt(HIDDEN)),
        "b2": np.zeros(1, np.float32),
    }


def _steps(learning_rate: float) -> tuple[Callable[..., Any], Callable[..., Any], Any]:
    """The jitted sparse and dense training steps, and the optimizer."""
    tx = rmsprop(learning_rate, rho=0.9, momentum=0.9)

    def mse(dense: dict[str, jax.Array], rows: jax.Array, features: jax.Array, y: jax.Array):
        return jnp.mean((_forward(dense, rows, features) - y) ** 2)

    def sparse_step(params: Any, state: Any, tokens: jax.Array, features: jax.Array, y: Any):
        dense = {k: v for k, v in params.items() if k != "table"}
        loss, (table_grad, dense_grad) = value_and_sparse_grad(
            lambda rows, dense: mse(dense, rows, features, y), params["table"], tokens, dense
        )
        updates, state = tx.update({"table": table_grad, **dense_grad}, state, params)
        return apply_updates(params, updates), state, loss

    def dense_step(params: Any, state: Any, tokens: jax.Array, features: jax.Array, y: Any):
        def loss_fn(params: Any) -> jax.Array:
            dense = {k: v for k, v in params.items() if k != "table"}
            return mse(dense, params["table"][tokens], features, y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state, loss

    # Params and state are donated: XLA updates them in place (the sparse step only its rows).
    return (
        jax.jit(sparse_step, donate_argnums=(0, 1)),
        jax.jit(dense_step, donate_argnums=(0, 1)),
        tx,
    )


def _progress(steps: int, enabled: bool) -> tuple[Iterable[int], Callable[[str], None], Any]:
    """A tqdm bar over the steps when tqdm is installed and wanted; else a plain range."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            print(f"(no progress bar: tqdm is {MISSING})")
        else:
            bar = tqdm(range(steps), desc="training", unit="step", leave=False, disable=None)
            return bar, tqdm.write, bar  # disable=None: no bar when not on a terminal
    return range(steps), print, None


def _plot(result: DemoResult, path: Path, title: str) -> Path | None:
    """Saves the two loss curves as a PNG; None (with a message) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no plot: matplotlib is {MISSING})")
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.dense_losses, label=f"dense path ({result.dense_ms:.2f} ms/step)", lw=2.5)
    ax.plot(result.sparse_losses, label=f"sparse path ({result.sparse_ms:.2f} ms/step)", lw=1.2)
    ax.set(xlabel="step", ylabel="training loss (MSE)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def check_arguments(*, steps: int, vocab: int, dim: int, batch: int) -> None:
    """Raises a ValueError naming the first size out of range."""
    for name, value, low in (
        ("steps", steps, 2),
        ("vocab", vocab, 1),
        ("dim", dim, 1),
        ("batch", batch, 1),
    ):
        if value < low:
            raise ValueError(f"`{name}` must be at least {low}. Received: {name}={value}")


def speed_phrase(dense_ms: float, sparse_ms: float) -> str:
    """How the sparse path compares, in words: "2.5x faster" or "2.5x slower", never "0.4x"."""
    if sparse_ms <= dense_ms:
        return f"the sparse path is {dense_ms / sparse_ms:.1f}x faster"
    return f"the sparse path is {sparse_ms / dense_ms:.1f}x slower"


def run_demo(
    steps: int = 300,
    learning_rate: float = 3e-3,
    seed: int = 0,
    *,
    vocab: int = 100_000,
    dim: int = 32,
    batch: int = 256,
    plot: str | Path | None = "rmsprop_jax_demo.png",
    progress: bool = True,
) -> DemoResult:
    """Trains an embedding model on the sparse and the dense path and compares them.

    Args:
      steps: training steps of each path.
      learning_rate: the RMSprop learning rate (momentum 0.9, tf.keras numerics).
      seed: seed of the synthetic data and the initial weights.
      vocab: rows of the embedding table.
      dim: width of the embedding table.
      batch: samples per step (each looks up 8 tokens).
      plot: where to save the PNG of the loss curves; None for no plot.
      progress: show a tqdm progress bar (when tqdm is installed).

    Returns:
      A `DemoResult`: both paths' losses, their median step times and the plot's path.
    """
    check_arguments(steps=steps, vocab=vocab, dim=dim, batch=batch)
    rng = np.random.default_rng(seed)
    data = _Data(_init(rng, vocab, dim, scale=1.0), vocab, batch, seed)
    params0 = _init(rng, vocab, dim, scale=0.05)
    sparse_step, dense_step, tx = _steps(learning_rate)
    sparse = _Run(sparse_step, *_fresh(params0, tx))
    dense = _Run(dense_step, *_fresh(params0, tx))
    print(
        f"rmsprop_jax demo: embedding table {vocab:,} x {dim} + 2 dense layers, {batch} samples "
        f"of {TOKENS} tokens per step, {steps} steps, rj.rmsprop(lr={learning_rate}, "
        "momentum=0.9); sparse path (rj.SparseRows) and dense path, same batches\n"
        f"(loss: mean over the steps since the previous line)"
    )
    steps_iter, write, bar = _progress(steps, progress)
    every = max(1, steps // 10)
    for i in steps_iter:
        batch_arrays = data.batch_at(i)
        sparse_loss, dense_loss = sparse.advance(batch_arrays), dense.advance(batch_arrays)
        if bar is not None:
            bar.set_postfix(sparse=f"{sparse_loss:.4f}", dense=f"{dense_loss:.4f}")
        if i % every == 0 or i == steps - 1:
            window = slice(max(1, i - every + 1) if i else 0, i + 1)
            write(
                f"step {i:5d}  loss sparse {np.mean(sparse.losses[window]):.5f}  "
                f"dense {np.mean(dense.losses[window]):.5f}"
            )
    if bar is not None:
        bar.close()
    sparse_ms, dense_ms = sparse.median_ms(), dense.median_ms()
    print(
        f"loss fell from {sparse.losses[0]:.5f} at step 0 to {np.mean(sparse.losses[-every:]):.5f} "
        f"on the sparse path and {np.mean(dense.losses[-every:]):.5f} on the dense path (mean of "
        f"the last {every} steps; with momentum, the dense path keeps "
        "moving rows no batch looked up; sparse_mode='dense' would follow it)"
    )
    print(
        f"step time (median after compilation): sparse {sparse_ms:.2f} ms, dense {dense_ms:.2f} "
        f"ms: {speed_phrase(dense_ms, sparse_ms)}"
    )
    result = DemoResult(sparse.losses, dense.losses, sparse_ms, dense_ms, None)
    if plot is not None:
        title = f"rj.rmsprop on a {vocab:,} x {dim} embedding model"
        written = _plot(result, Path(plot), title)
        if written is not None:
            print(f"plot of the loss curves saved to {written}")
        result = result._replace(plot=written)
    return result


def _fresh(params0: dict[str, np.ndarray], tx: Any) -> tuple[Any, Any]:
    """Device copies of the initial params (each path donates its own) and their state."""
    params = {k: jnp.array(v) for k, v in params0.items()}
    return params, tx.init(params)
