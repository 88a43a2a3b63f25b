"""The README's self-contained examples run and give the numbers they state."""

from __future__ import annotations

import pathlib
import re

import jax
import numpy as np

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_quickstart_runs() -> None:
    quickstart = BLOCKS[0]
    assert "rj.rmsprop(" in quickstart
    namespace: dict = {}
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        exec(compile(quickstart, "README quickstart", "exec"), namespace)
    assert np.all(np.isfinite(np.asarray(namespace["params"]["w"])))
    assert int(namespace["state"][1].count) == 1  # one step taken


def test_keras_example_gives_the_documented_number() -> None:
    (block,) = [b for b in BLOCKS if "rj.keras.RMSprop" in b]
    namespace: dict = {}
    exec(compile("import rmsprop_jax as rj\n" + block, "README keras", "exec"), namespace)
    assert namespace["var1"].numpy() == np.float32(9.683772)
    assert namespace["step_count"] == 1
