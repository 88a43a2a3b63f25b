"""The README's self-contained examples run and give the numbers they state."""

from __future__ import annotations

import pathlib
import re

import jax
import numpy as np
import optax

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_quickstart_runs() -> None:
    quickstart = BLOCKS[0]
    assert "rj.rmsprop(" in quickstart
    namespace: dict = {}
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        exec(compile(quickstart, "README quickstart", "exec"), namespace)
    # One step from w = 1, b = 0 on x = 1 (4 x 3): every gradient is 2 * 4 * 3 = 24. tf.keras,
    # centered with momentum: ms = (1 - rho) g^2, mg = (1 - rho) g, epsilon inside the root,
    # the learning rate inside the momentum buffer: m = lr g / sqrt(ms - mg^2 + eps), w -= m.
    g, rho, lr, eps = 24.0, 0.9, 1e-2, 1e-7
    ms, mg = (1 - rho) * g**2, (1 - rho) * g
    step = lr * g / np.sqrt(ms - mg**2 + eps)  # 1/30
    params = namespace["params"]
    np.testing.assert_allclose(np.asarray(params["w"]), np.full((3, 2), 1.0 - step), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(params["b"]), np.full(2, -step), rtol=1e-6)
    assert int(optax.tree.get(namespace["state"], "count")) == 1  # one step taken


def test_keras_example_gives_the_documented_number() -> None:
    (block,) = [b for b in BLOCKS if "rj.keras.RMSprop" in b]
    namespace: dict = {}
    exec(compile("import rmsprop_jax as rj\n" + block, "README keras", "exec"), namespace)
    assert namespace["var1"].numpy() == np.float32(9.683772)
    assert namespace["step_count"] == 1
