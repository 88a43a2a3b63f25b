"""`SparseRows(max_distinct_rows=b)`: b deduplicated slots when they suffice, never a dropped row.

A bounded step must equal the unbounded one bit for bit (signed zeros included) for a batch
under the bound, exactly at it and over it (the k-slot fallback), jitted and eager.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

HERE = Path(__file__).resolve().parent
SHAPE = (12, 16)
BOUND = 4
# Eight indices per batch: 3 distinct rows (under the bound), 4 (at it), 6 and 7 (over it).
BATCHES = [
    [5, 1, 5, 9, 1, 1, 9, 5],
    [0, 11, 0, 3, 7, 3, 7, 11],
    [2, 4, 6, 8, 10, 2, 4, 0],
    [5, 5, 5, 5, 5, 5, 5, 5],
    [0, 1, 2, 3, 4, 5, 6, 6],
]


def _bits(tree: Any) -> list[np.ndarray]:
    """Every leaf's bytes as unsigned integers, so that -0.0 differs from 0.0."""
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, rj.SparseRows))
    leaves = [leaf.todense() if isinstance(leaf, rj.SparseRows) else leaf for leaf in leaves]
    return [np.asarray(leaf).view(f"u{np.asarray(leaf).dtype.itemsize}") for leaf in leaves]


def _run(mode: str, momentum: float, bound: int | None, jit: bool, out_of_range: bool) -> Any:
    tx = rj.rmsprop(
        0.1,
        momentum=momentum,
        sparse_mode=mode,
        sparse_tables={"t": True},  # type: ignore[arg-type]
    )
    rng = np.random.default_rng(0)
    params = {"t": jnp.asarray(rng.standard_normal(SHAPE), jnp.float32).at[0, 0].set(-0.0)}
    state = tx.init(params)

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array) -> Any:
        grad = rj.SparseRows.from_parts(indices, values, SHAPE, max_distinct_rows=bound)
        updates, state = tx.update({"t": grad}, state, params)
        return rj.apply_updates(params, updates), state, updates

    step = jax.jit(step) if jit else step
    seen = []
    for i, batch in enumerate(BATCHES * 2):
        indices = np.array(batch, np.int32)
        if out_of_range and i == 2:
            indices[1] = SHAPE[0] + 3  # dropped under jit; not a distinct row
        values = rng.standard_normal((len(batch), SHAPE[1])).astype(np.float32)
        values[0] = 0.0  # zero gradients: signed zeros must agree too
        params, state, updates = step(params, state, jnp.asarray(indices), jnp.asarray(values))
        seen.append((params, state, updates))
    return seen


MODES = [("keras", 0.9), ("lazy", 0.9), ("dense", 0.9), ("keras", 0.0), ("dense", 0.0)]


def check_bounded_equals_unbounded(mode: str, momentum: float, jit: bool, exact: bool) -> None:
    """Bounds between (4, 3), below (1) and above (6) batches' distinct rows, against None."""
    out_of_range = jit  # eager SparseRows refuse out-of-range indices
    unbounded = _run(mode, momentum, None, jit, out_of_range)
    for bound in (BOUND, 1, 3, 6):  # 3: the last turn's window overlaps the one before
        bounded = _run(mode, momentum, bound, jit, out_of_range)
        for want, got in zip(unbounded, bounded, strict=True):
            for a, b in zip(_bits(want), _bits(got), strict=True):
                if exact:
                    np.testing.assert_array_equal(a, b)
                else:  # the floats the bits stand for, to a few units in the last place
                    np.testing.assert_allclose(
                        a.view(np.float32), b.view(np.float32), rtol=1e-6, atol=1e-6
                    )


@pytest.mark.parametrize(("mode", "momentum"), MODES)
def test_bounded_eager_steps_equal_unbounded_bit_for_bit(mode: str, momentum: float) -> None:
    check_bounded_equals_unbounded(mode, momentum, jit=False, exact=True)


@pytest.mark.parametrize(("mode", "momentum"), MODES)
def test_bounded_jitted_steps_equal_unbounded(mode: str, momentum: float) -> None:
    """Bit for bit where XLA contracts no multiply-add (next test); with FMA, to the last bit."""
    check_bounded_equals_unbounded(mode, momentum, jit=True, exact=False)


@pytest.mark.slow  # a subprocess with its own JAX
def test_bounded_jitted_steps_equal_unbounded_bit_for_bit_without_fma() -> None:
    """XLA's CPU backend may contract ``a * b + c`` into an FMA in one compiled program and not
    in another, so two programs agree bit for bit only without FMA instructions."""
    code = (
        "import test_sparse_bound as t\n"
        "for mode, momentum in t.MODES:\n"
        "    t.check_bounded_equals_unbounded(mode, momentum, jit=True, exact=True)\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_value_and_sparse_grad_passes_the_bound_on() -> None:
    table = jnp.arange(12.0).reshape(4, 3)
    _, grad = rj.value_and_sparse_grad(
        lambda rows: jnp.sum(rows**2), table, jnp.array([1, 1, 2]), argnums=0, max_distinct_rows=2
    )
    assert grad.max_distinct_rows == 2
    assert jax.jit(lambda g: g)(grad).max_distinct_rows == 2


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_max_distinct_rows_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="max_distinct_rows") as info:
        rj.SparseRows(jnp.array([0]), jnp.ones((1, SHAPE[1])), SHAPE, max_distinct_rows=bad)
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)


def test_the_bound_survives_arithmetic() -> None:
    g = rj.SparseRows(jnp.array([0, 0]), jnp.ones((2, SHAPE[1])), SHAPE, max_distinct_rows=1)
    for h in (-g, 2 * g, g / 2, g + g, g.with_values(jnp.zeros((2, SHAPE[1])))):
        assert h.max_distinct_rows == 1
