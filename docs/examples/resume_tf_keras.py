"""Resume a tf.keras training run in JAX and get tf.keras's numbers.

A linear model was trained for 3 steps in tf.keras (legacy RMSprop with momentum, centering and
an ``ExponentialDecay`` schedule); ``tf_keras_checkpoint.json`` next to this file holds what a
tf.keras user saves: the optimizer's ``get_config()``, its ``get_weights()`` and the model's
variables. It also holds, for comparison, the variables tf.keras reached in 10 further steps.

This script continues the run with ``rj.keras.RMSprop``: ``from_config``, ``build`` in Keras's
slot order, ``set_weights``, then ``apply_gradients`` with JAX gradients of the same loss on the
same batches, and checks every step against tf.keras.

The checkpoint was written by ``python docs/examples/resume_tf_keras.py --record`` in an
environment with ``tensorflow`` and ``tf_keras`` (see `record`); resuming needs neither.

Run: ``python docs/examples/resume_tf_keras.py --steps 10``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rmsprop_jax as rj

CHECKPOINT = Path(__file__).with_name("tf_keras_checkpoint.json")
FEATURES, OUTPUTS = 4, 2
STEPS_FIRST, STEPS_MORE = 3, 10


def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch of one step: the same arrays in tf.keras and here."""
    rng = np.random.default_rng(step)
    x = rng.normal(size=(16, FEATURES)).astype(np.float32)
    y = (x @ np.arange(1.0, 1.0 + FEATURES * OUTPUTS).reshape(FEATURES, OUTPUTS) - 1.0) / 8.0
    return x, y.astype(np.float32)


def record(path: Path = CHECKPOINT) -> None:
    """The tf.keras side: train 3 steps, save the checkpoint, record 10 more steps to compare."""
    import tensorflow as tf
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input((FEATURES,)), tf_keras.layers.Dense(OUTPUTS)])
    model.set_weights(
        [np.full((FEATURES, OUTPUTS), 0.1, np.float32), np.zeros(OUTPUTS, np.float32)]
    )
    schedule = tf_keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.8)
    opt = tf_keras.optimizers.legacy.RMSprop(schedule, rho=0.9, momentum=0.9, centered=True)

    def step(i: int) -> float:
        x, y = batch(i)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return float(loss)

    def variables() -> dict[str, list]:
        return {v.name: v.numpy().tolist() for v in model.trainable_variables}

    for i in range(STEPS_FIRST):
        step(i)
    checkpoint = {  # what a tf.keras user saves
        "optimizer_config": opt.get_config(),
        "optimizer_weights": [np.asarray(w).tolist() for w in opt.get_weights()],
        "variables": variables(),
    }
    continued = [
        {"loss": step(i), "variables": variables()}
        for i in range(STEPS_FIRST, STEPS_FIRST + STEPS_MORE)
    ]
    versions = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__}
    data = {"checkpoint": checkpoint, "tf_keras_continued": continued, "versions": versions}
    path.write_text(json.dumps(data, indent=1, default=float) + "\n")


def resume(checkpoint: dict[str, Any]) -> tuple[rj.keras.RMSprop, dict[str, rj.keras.Variable]]:
    """The JAX side: the optimizer and variables of a tf.keras checkpoint, ready to continue."""
    opt = rj.keras.RMSprop.from_config(checkpoint["optimizer_config"])  # read as data only
    variables = {
        name: rj.keras.Variable(np.asarray(value, np.float32), name=name)
        for name, value in checkpoint["variables"].items()
    }
    opt.build(list(variables.values()))  # slots in Keras's order: rms, momentum, mg
    opt.set_weights([np.asarray(w) for w in checkpoint["optimizer_weights"]])
    return opt, variables


def loss_fn(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """The model's loss: mean squared error of ``x @ kernel + bias``."""
    kernel, bias = params["dense/kernel:0"], params["dense/bias:0"]
    return jnp.mean((x @ kernel + bias[None, :] - y) ** 2)


def main(steps: int = STEPS_MORE, checkpoint: Path = CHECKPOINT) -> dict[str, Any]:
    """Resumes the run for ``steps`` steps and compares each step with tf.keras.

    Returns:
      ``{"losses": [...], "variables": [{name: array} after each step], "tf_keras": the
      recorded continuation}``.
    """
    data = json.loads(Path(checkpoint).read_text())
    opt, variables = resume(data["checkpoint"])
    first = int(opt.iterations.numpy())
    grad_fn = jax.jit(jax.value_and_grad(loss_fn))
    losses, trajectory = [], []
    for i in range(first, first + steps):
        x, y = batch(i)
        loss, grads = grad_fn({name: v.value for name, v in variables.items()}, x, y)
        opt.apply_gradients([(grads[name], var) for name, var in variables.items()])
        losses.append(float(loss))
        trajectory.append({name: var.numpy() for name, var in variables.items()})
    recorded = data["tf_keras_continued"][: len(trajectory)]
    worst = max(
        float(np.max(np.abs(ours[name] - np.asarray(theirs["variables"][name]))))
        for ours, theirs in zip(trajectory, recorded, strict=True)
        for name in ours
    )
    print(
        f"resumed at step {first}: loss {losses[0]:.5f} -> {losses[-1]:.5f} in {steps} steps; "
        f"largest difference from tf.keras's variables: {worst:.2e}"
    )
    return {"losses": losses, "variables": trajectory, "tf_keras": recorded}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS_MORE, help=f"at most {STEPS_MORE}")
    parser.add_argument("--record", action="store_true", help="write the checkpoint (tf_keras)")
    args = parser.parse_args()
    if args.record:
        record()
    else:
        main(steps=args.steps)
