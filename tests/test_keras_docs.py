"""docs/keras.md: the ported tf.keras script runs, line for line, and reaches tf.keras's numbers."""

from __future__ import annotations

import pathlib
import re

import jax

PAGE = pathlib.Path(__file__).parents[1] / "docs" / "keras.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def _script(block: str) -> list[str]:
    """The block's lines after its imports, up to its ``print``: the training script itself."""
    lines = [line for line in block.splitlines() if not line.startswith("import ")]
    return lines[: next(i for i, line in enumerate(lines) if line.startswith("print(")) + 1]


def test_the_ported_script_matches_the_tf_keras_script_line_by_line() -> None:
    (original,) = [b for b in _blocks() if "import tensorflow as tf" in b]
    (ported,) = [b for b in _blocks() if b.startswith("import jax.numpy as jnp")]
    assert len(_script(original)) == len(_script(ported))
    for theirs, ours in zip(_script(original), _script(ported), strict=True):
        # Only the imports, the Variable constructor and the maths namespace differ.
        if theirs.startswith(("w =", "b =", "x =", "y =", "    return", "opt =")):
            continue
        assert theirs.split("#")[0] == ours.split("#")[0], (theirs, ours)


def test_the_ported_script_runs_and_asserts_tf_keras_numbers() -> None:
    (ported,) = [b for b in _blocks() if b.startswith("import jax.numpy as jnp")]
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        exec(compile(ported, str(PAGE), "exec"), {})  # its assertions hold tf.keras's values
