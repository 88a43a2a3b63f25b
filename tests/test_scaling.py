"""`scale_by_rms`: closed forms in float64, and float32 rounding orders replayed in NumPy."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
from tests.helpers import run_stage as run

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)

f32 = np.float32


GRADS = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0], [-4.0, 0.0, 2.0]])


@pytest.mark.parametrize("eps_in_sqrt", [False, True])
@pytest.mark.parametrize("initial_scale", [0.0, 1.0])
def test_closed_form_over_three_steps(maybe_jit, eps_in_sqrt, initial_scale):
    rho, eps = 0.75, 0.01  # float32-exact, so 1 - rho is exact too
    tx = rj.scale_by_rms(
        rho, eps, eps_in_sqrt=eps_in_sqrt, initial_scale=initial_scale, rho_complement="rounded"
    )
    updates, states = run(tx, [jnp.asarray(g, jnp.float32) for g in GRADS], jnp.zeros(3), maybe_jit)
    for t in range(3):
        # ms_t = rho**(t+1) * ms_0 + sum_i (1 - rho) * rho**(t-i) * g_i**2
        ms = rho ** (t + 1) * initial_scale + sum(
            (1 - rho) * rho ** (t - i) * GRADS[i] ** 2 for i in range(t + 1)
        )
        den = np.sqrt(ms + eps) if eps_in_sqrt else np.sqrt(ms) + eps
        np.testing.assert_allclose(states[t].ms, ms, rtol=1e-6)
        np.testing.assert_allclose(updates[t], GRADS[t] / den, rtol=1e-6)


def test_epsilon_inside_and_outside_hand_numbers(maybe_jit):
    # rho=0: ms = g**2 = 1. Outside: 1 / (1 + 0.25) = 0.8. Inside: 1 / sqrt(1.25).
    grads = [jnp.ones(1)]
    outside, _ = run(
        rj.scale_by_rms(0.0, 0.25, eps_in_sqrt=False, rho_complement="rounded"),
        grads,
        jnp.zeros(1),
        maybe_jit,
    )
    inside, _ = run(
        rj.scale_by_rms(0.0, 0.25, eps_in_sqrt=True, rho_complement="rounded"),
        grads,
        jnp.zeros(1),
        maybe_jit,
    )
    np.testing.assert_allclose(outside[0], [0.8], rtol=1e-7)
    np.testing.assert_allclose(inside[0], [0.894427191], rtol=1e-7)


def test_docstring_example(maybe_jit):
    updates, states = run(
        rj.scale_by_rms(decay=0.9, eps=0.0, eps_in_sqrt=False, rho_complement="rounded"),
        [jnp.array([1.0, -2.0])],
        jnp.zeros(2),
        maybe_jit,
    )
    np.testing.assert_allclose(updates[0], [np.sqrt(10.0), -np.sqrt(10.0)], rtol=1e-6)
    np.testing.assert_allclose(states[0].ms, [0.1, 0.4], rtol=1e-6)


def test_initial_scale_one_is_tf1(maybe_jit):
    # ms = 0.9 * 1 + 0.1 * 4 = 1.3; the first step is g / sqrt(1.3), not TF2's g / sqrt(0.4).
    updates, states = run(
        rj.scale_by_rms(0.9, 0.0, initial_scale=1.0, eps_in_sqrt=False, rho_complement="rounded"),
        [jnp.array([2.0])],
        jnp.zeros(1),
        maybe_jit,
    )
    np.testing.assert_allclose(states[0].ms, [1.3], rtol=1e-6)
    np.testing.assert_allclose(updates[0], [2.0 / np.sqrt(1.3)], rtol=1e-6)


def test_zero_gradient_gives_zero_update(maybe_jit):
    updates, states = run(
        rj.scale_by_rms(0.9, 1e-7, eps_in_sqrt=False, rho_complement="rounded"),
        [jnp.zeros(3), jnp.array([0.0, 1.0, 0.0])],
        jnp.zeros(3),
        maybe_jit,
    )
    np.testing.assert_array_equal(updates[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(states[0].ms, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(updates[1], [0.0, 1.0 / (np.sqrt(0.1) + 1e-7), 0.0], rtol=1e-6)


def test_each_leaf_of_a_tree_is_scaled_independently(maybe_jit):
    params = {"a": jnp.zeros((2, 2)), "b": jnp.zeros(())}
    grads = {"a": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.array(-5.0)}
    updates, states = run(
        rj.scale_by_rms(0.5, 0.0, eps_in_sqrt=False, rho_complement="rounded"),
        [grads],
        params,
        maybe_jit,
    )
    # ms = 0.5 * g**2, so every element steps sign(g) * sqrt(2).
    np.testing.assert_allclose(updates[0]["a"], np.full((2, 2), np.sqrt(2.0)), rtol=1e-6)
    np.testing.assert_allclose(updates[0]["b"], -np.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(states[0].ms["b"], 12.5, rtol=1e-7)


# --- rounding orders ------------------------------------------------------------------------------


def ms_float32(ms, g, rho, form):
    """The library's documented float32 operation order for each form, replayed in NumPy."""
    ms, g, rho = f32(ms), f32(g), f32(rho)
    w = f32(1) - rho
    x = g * g
    if form == "ema":
        return rho * ms + w * x
    if form == "interpolate":
        return ms + (x - ms) * w
    return np.where(w < f32(0.5), ms + w * (x - ms), x - (x - ms) * (f32(1) - w))


def test_rho_zero_large_ms_tiny_gradient_interpolate_loses_the_gradient(maybe_jit):
    # ms_prev = 1e4, g = 1e-3, rho = 0. "ema": 0*1e4 + 1*1e-6 = 1e-6. "interpolate" (TF's
    # kernel): 1e4 + (1e-6 - 1e4) * 1, and 1e-6 - 1e4 rounds to -1e4, so ms becomes exactly 0.
    grads = [jnp.array([1e-3])]
    results = {}
    for form in ("ema", "interpolate", "lerp"):
        tx = rj.scale_by_rms(
            0.0, 1e-7, initial_scale=1e4, ms_form=form, eps_in_sqrt=False, rho_complement="rounded"
        )
        updates, states = run(tx, grads, jnp.zeros(1), maybe_jit)
        results[form] = (np.asarray(updates[0]), np.asarray(states[0].ms))
    g, eps = f32(1e-3), f32(1e-7)
    assert results["interpolate"][1][0] == f32(0.0)
    assert results["ema"][1][0] == g * g == ms_float32(1e4, 1e-3, 0.0, "ema")
    assert results["lerp"][1][0] == g * g  # w = 1 >= 0.5: x - (x - m) * 0 = x
    assert results["interpolate"][0][0] == g / eps  # 1e4: the update blows up
    assert results["ema"][0][0] == g / (np.sqrt(g * g) + eps)  # ~0.9999
    assert results["interpolate"][0][0] > 1e3 * results["ema"][0][0]


@pytest.mark.parametrize("form", ["ema", "interpolate", "lerp"])
@pytest.mark.parametrize("rho", [0.3, 0.9])  # lerp's two branches: w = 0.7 >= 0.5, w = 0.1 < 0.5
def test_mean_square_rounds_in_the_documented_order(maybe_jit, form, rho):
    rng = np.random.default_rng(0)
    ms0 = rng.uniform(0.0, 4.0, size=512).astype(f32)
    g = rng.normal(size=512).astype(f32)
    tx = rj.scale_by_rms(rho, 0.0, ms_form=form, eps_in_sqrt=False, rho_complement="rounded")
    state = tx.init(jnp.zeros(512))._replace(ms=jnp.asarray(ms0))  # start from ms0, not zeros
    _, new_state = maybe_jit(tx.update)(jnp.asarray(g), state)
    expected = ms_float32(ms0, g, rho, form)
    # The forms really differ on this data, so an exact comparison tells them apart. (lerp with
    # w < 0.5 is m + w*(x - m), the same operations as "interpolate".)
    distinct = {"ema": ["interpolate"], "interpolate": ["ema"], "lerp": ["ema"]}[form]
    if form == "lerp" and rho < 0.5:
        distinct.append("interpolate")
    for other in distinct:
        assert np.sum(ms_float32(ms0, g, rho, other) != expected) > 10
    # Every form is within float32 round-off of the float64 value...
    exact = rho * ms0.astype(np.float64) + (1 - rho) * g.astype(np.float64) ** 2
    np.testing.assert_allclose(new_state.ms, exact, rtol=3e-7)
    # ...and rounds exactly as documented.
    if maybe_jit is jax.jit:
        # XLA contracts a*b + c into one fused multiply-add under jit (openxla/xla#41579), which
        # rounds once where the documented order rounds twice: at most 1 ulp of the inputs apart.
        scale = np.spacing(np.maximum(ms0, g * g))
        assert np.all(np.abs(np.asarray(new_state.ms) - expected) <= scale)
    else:
        np.testing.assert_array_equal(np.asarray(new_state.ms), expected)


# --- dtypes ---------------------------------------------------------------------------------------


def test_state_dtype_float32_with_bfloat16_params(maybe_jit):
    params = jnp.zeros(2, jnp.bfloat16)
    grads = [jnp.array([1.0, 3.0], jnp.bfloat16)] * 2
    tx = rj.scale_by_rms(
        0.999, 0.0, state_dtype=jnp.float32, eps_in_sqrt=False, rho_complement="rounded"
    )
    updates, states = run(tx, grads, params, maybe_jit)
    assert states[1].ms.dtype == jnp.float32
    assert updates[1].dtype == jnp.bfloat16
    # ms = (1 - 0.999**2) * g**2 = 0.017991 for g = 3, held in float32: bfloat16 would round it
    # to 0.017944, a relative error of 2.6e-3.
    rho = float(f32(0.999))  # the float32 rho the stage computes with
    ms1 = (1 - rho**2) * np.array([1.0, 9.0])
    np.testing.assert_allclose(states[1].ms, ms1, rtol=1e-6)
    bf16_ms1 = np.asarray(jnp.asarray(ms1, jnp.bfloat16).astype(jnp.float32))
    assert abs(bf16_ms1[1] / ms1[1] - 1) > 1e-3


def test_state_defaults_to_the_param_dtype():
    tx = rj.scale_by_rms(0.9, 1e-7, eps_in_sqrt=False, rho_complement="rounded")
    state = tx.init({"a": jnp.zeros(2, jnp.bfloat16), "b": jnp.zeros((), jnp.float32)})
    assert state.ms["a"].dtype == jnp.bfloat16
    assert state.ms["b"].dtype == jnp.float32
    np.testing.assert_array_equal(state.ms["a"].astype(jnp.float32), [0.0, 0.0])


def test_init_accepts_shape_dtype_structs():
    tx = rj.scale_by_rms(
        initial_scale=1.0, state_dtype=jnp.float32, eps_in_sqrt=False, rho_complement="rounded"
    )
    state = tx.init({"w": jax.ShapeDtypeStruct((2, 3), jnp.bfloat16)})
    assert state.ms["w"].shape == (2, 3)
    assert state.ms["w"].dtype == jnp.float32
    np.testing.assert_array_equal(state.ms["w"], np.ones((2, 3)))


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (rj.scale_by_rms, optax.scale_by_rms),
        (rj.scale_by_centered_rms, optax.scale_by_stddev),
    ],
    ids=["scale_by_rms", "scale_by_stddev"],
)
@pytest.mark.parametrize("args", [(), (0.5, 1e-3, 0.25, False)], ids=["defaults", "positional"])
def test_optax_names_and_defaults_give_optax_numbers(ours: Any, theirs: Any, args: Any) -> None:
    """Where a stage has Optax's name it has Optax's arguments, defaults and numbers.

    scale_by_rms is bit for bit; optax.scale_by_stddev multiplies by rsqrt where the stage divides
    by sqrt (and clamps the variance at 0), so the centered stage agrees to float32 round-off.
    """
    params = jnp.zeros(3)
    grads = [jnp.array([0.3, -2.0, 1e-3]), jnp.array([1.0, 0.5, -0.25])]
    a, b = ours(*args), theirs(*args)
    sa, sb = a.init(params), b.init(params)
    for g in grads:
        ua, sa = a.update(g, sa)
        ub, sb = b.update(g, sb)
        if theirs is optax.scale_by_rms:
            np.testing.assert_array_equal(ua, ub)
        else:
            np.testing.assert_allclose(ua, ub, rtol=2e-7, atol=0)
