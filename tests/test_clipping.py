"""The clipping stages, against hand-computed numbers."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)


def clip(tx, updates, maybe_jit):
    out, _ = maybe_jit(tx.update)(updates, tx.init(updates))
    return out


def test_clip_by_value(maybe_jit):
    out = clip(rj.clip_by_value(0.5), jnp.array([-2.0, 0.1, 3.0, -0.5, 0.0]), maybe_jit)
    np.testing.assert_array_equal(out, np.float32([-0.5, 0.1, 0.5, -0.5, 0.0]))


def test_clip_by_value_tree_and_dtype(maybe_jit):
    updates = {"a": jnp.array([[4.0, -4.0]], jnp.bfloat16), "b": jnp.array(0.25)}
    out = clip(rj.clip_by_value(1.0), updates, maybe_jit)
    assert out["a"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(out["a"].astype(jnp.float32), [[1.0, -1.0]])
    assert float(out["b"]) == 0.25


def test_clip_by_norm_rescales_a_long_tensor(maybe_jit):
    # ||(3, 4)|| = 5 > 1: (3, 4) * 1 / 5.
    out = clip(rj.clip_by_norm(1.0), jnp.array([3.0, 4.0]), maybe_jit)
    np.testing.assert_allclose(out, [0.6, 0.8], rtol=1e-7)


def test_clip_by_norm_is_per_tensor(maybe_jit):
    # a: norm 5 -> scaled by 2/5; b: norm 0.5 < 2, unchanged; c: zero, stays zero (no NaN).
    updates = {
        "a": jnp.array([[3.0], [4.0]]),
        "b": jnp.array([0.3, -0.4]),
        "c": jnp.zeros(3),
    }
    out = clip(rj.clip_by_norm(2.0), updates, maybe_jit)
    np.testing.assert_allclose(out["a"], [[1.2], [1.6]], rtol=1e-6)
    np.testing.assert_array_equal(out["b"], np.float32([0.3, -0.4]))
    np.testing.assert_array_equal(out["c"], [0.0, 0.0, 0.0])


def test_clip_by_norm_at_the_boundary(maybe_jit):
    # norm exactly c: g * c / max(c, c) = g.
    out = clip(rj.clip_by_norm(5.0), jnp.array([3.0, 4.0]), maybe_jit)
    np.testing.assert_allclose(out, [3.0, 4.0], rtol=1e-7)


def test_clip_by_global_norm_hand_numbers(maybe_jit):
    # Global norm of a = (1, 2), b = [[2]]: sqrt(1 + 4 + 4) = 3 > 1.5, so everything halves.
    updates = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([[2.0]])}
    out = clip(rj.clip_by_global_norm(1.5, formula="tf"), updates, maybe_jit)
    np.testing.assert_allclose(out["a"], [0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [[1.0]], rtol=1e-6)


def test_clip_by_global_norm_docstring_example(maybe_jit):
    out = clip(
        rj.clip_by_global_norm(1.0, formula="tf"),
        {"a": jnp.array([3.0]), "b": jnp.array([4.0])},
        maybe_jit,
    )
    np.testing.assert_allclose(out["a"], [0.6], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [0.8], rtol=1e-6)


def test_clip_by_global_norm_leaves_a_short_tree_alone(maybe_jit):
    # n = 0.5 < 10: scale = 10 * min(1/0.5, 1/10) = 1 (up to float32 rounding of 10 * 0.1).
    updates = {"a": jnp.array([0.3]), "b": jnp.array([0.4])}
    out = clip(rj.clip_by_global_norm(10.0, formula="tf"), updates, maybe_jit)
    np.testing.assert_allclose(out["a"], [0.3], rtol=1e-7)
    np.testing.assert_allclose(out["b"], [0.4], rtol=1e-7)


def test_clip_by_global_norm_zero_tree_stays_zero(maybe_jit):
    out = clip(
        rj.clip_by_global_norm(1.0, formula="tf"),
        {"a": jnp.zeros(2), "b": jnp.zeros(())},
        maybe_jit,
    )
    np.testing.assert_array_equal(out["a"], [0.0, 0.0])
    assert float(out["b"]) == 0.0


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_clip_by_global_norm_non_finite_norm_gives_nan_everywhere(maybe_jit, bad):
    # TF's rule: a non-finite global norm makes every update NaN, finite leaves included.
    updates = {"a": jnp.array([1.0, bad]), "b": jnp.array([0.5])}
    out = clip(rj.clip_by_global_norm(1.0, formula="tf"), updates, maybe_jit)
    assert np.all(np.isnan(out["a"]))
    assert np.all(np.isnan(out["b"]))


def test_clip_by_global_norm_empty_tree(maybe_jit):
    out = clip(rj.clip_by_global_norm(1.0), {}, maybe_jit)
    assert out == {}
