"""`scale_by_centered_rms`: the variance ms - mg**2, its clamp at zero, and PyTorch's lerp."""

from __future__ import annotations

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import rmsprop_jax as rj
from tests.helpers import run_stage as run

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)

f32 = np.float32

GRADS = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0], [-4.0, 0.0, 2.0]])


def test_docstring_example(maybe_jit):
    # rho = 0.5: ms = 2, mg = 1, variance = 1, so the step is g itself.
    updates, states = run(
        rj.scale_by_centered_rms(0.5, 0.0, eps_in_sqrt=False, rho_complement="rounded"),
        [[2.0]],
        jnp.zeros(1),
        maybe_jit,
    )
    np.testing.assert_array_equal(states[0].ms, [2.0])
    np.testing.assert_array_equal(states[0].mg, [1.0])
    np.testing.assert_array_equal(updates[0], [2.0])


@pytest.mark.parametrize("eps_in_sqrt", [False, True])
@pytest.mark.parametrize("initial_scale", [0.0, 1.0])
def test_closed_form_over_three_steps(maybe_jit, eps_in_sqrt, initial_scale):
    rho, eps = 0.75, 0.01
    tx = rj.scale_by_centered_rms(
        rho, eps, eps_in_sqrt=eps_in_sqrt, initial_scale=initial_scale, rho_complement="rounded"
    )
    updates, states = run(tx, list(GRADS), jnp.zeros(3), maybe_jit)
    for t in range(3):
        weights = [(1 - rho) * rho ** (t - i) for i in range(t + 1)]
        ms = rho ** (t + 1) * initial_scale + sum(w * GRADS[i] ** 2 for i, w in enumerate(weights))
        mg = sum(w * GRADS[i] for i, w in enumerate(weights))
        variance = ms - mg**2
        assert np.all(variance > 0)
        den = np.sqrt(variance + eps) if eps_in_sqrt else np.sqrt(variance) + eps
        np.testing.assert_allclose(states[t].ms, ms, rtol=1e-6)
        np.testing.assert_allclose(states[t].mg, mg, rtol=1e-6)
        np.testing.assert_allclose(updates[t], GRADS[t] / den, rtol=1e-5)


def test_centering_divides_by_the_variance_not_the_mean_square(maybe_jit):
    # A constant gradient g = 3 with rho = 0.5: after two steps ms = 0.75*9, mg = 0.75*3, so
    # v = 6.75 - 5.0625 = 1.6875; uncentered RMSprop would divide by sqrt(6.75) instead.
    grads = [[3.0], [3.0]]
    centered, _ = run(
        rj.scale_by_centered_rms(0.5, 0.0, eps_in_sqrt=False, rho_complement="rounded"),
        grads,
        jnp.zeros(1),
        maybe_jit,
    )
    plain, _ = run(
        rj.scale_by_rms(0.5, 0.0, eps_in_sqrt=False, rho_complement="rounded"),
        grads,
        jnp.zeros(1),
        maybe_jit,
    )
    np.testing.assert_allclose(centered[1], [3.0 / np.sqrt(1.6875)], rtol=1e-6)
    np.testing.assert_allclose(plain[1], [3.0 / np.sqrt(6.75)], rtol=1e-6)


@pytest.mark.parametrize("eps_in_sqrt", [False, True])
def test_variance_that_rounds_negative_is_clamped_to_zero(maybe_jit, eps_in_sqrt):
    # rho = 0 in TF's order: a big gradient, then a tiny one. ms = 1e4 + (1e-6 - 1e4) rounds to
    # 0 while mg = 100 + (1e-3 - 100) rounds to 9.9945e-4, so ms - mg**2 = -9.989e-7 < 0:
    # sqrt() of it is NaN in TF; the stage clamps it to 0 and divides by eps alone.
    tx = rj.scale_by_centered_rms(
        0.0,
        1e-7,
        eps_in_sqrt=eps_in_sqrt,
        ms_form="interpolate",
        mg_form="interpolate",
        rho_complement="rounded",
    )
    updates, states = run(tx, [[100.0], [1e-3]], jnp.zeros(1), maybe_jit)
    ms, mg = f32(states[1].ms[0]), f32(states[1].mg[0])
    assert ms == f32(0.0)
    assert mg == f32(100) + (f32(1e-3) - f32(100))
    assert ms - mg * mg < 0  # the raw variance really is negative
    g, eps = f32(1e-3), f32(1e-7)
    expected = g / np.sqrt(eps) if eps_in_sqrt else g / eps
    assert np.isfinite(updates[1][0])
    np.testing.assert_allclose(updates[1], [expected], rtol=1e-6)  # jit may use rsqrt


def test_zero_variance_with_zero_epsilon_is_inf_not_nan(maybe_jit):
    # rho = 0, "ema": ms = g*g and mg = g exactly, v = 0; with eps = 0 the step is g / 0.
    updates, _ = run(
        rj.scale_by_centered_rms(0.0, 0.0, eps_in_sqrt=False, rho_complement="rounded"),
        [[2.0, -2.0]],
        jnp.zeros(2),
        maybe_jit,
    )
    np.testing.assert_array_equal(updates[0], [np.inf, -np.inf])


def lerp_float32(m, x, rho):
    """torch.lerp(m, x, w) with w = 1 - rho, in float32, as documented in `MomentForm`."""
    w = f32(1) - f32(rho)
    if w < f32(0.5):
        return m + w * (x - m)
    return x - (x - m) * (f32(1) - w)


@pytest.mark.parametrize("rho", [0.9, 0.2], ids=["w<0.5", "w>=0.5"])
def test_torch_lerp_mean_gradient_both_branches(maybe_jit, rho):
    rng = np.random.default_rng(1)
    mg0 = rng.normal(size=512).astype(f32)
    ms0 = (mg0 * mg0 + rng.uniform(0.1, 1.0, size=512)).astype(f32)
    g = rng.normal(size=512).astype(f32)
    tx = rj.scale_by_centered_rms(
        rho, 1e-7, mg_form="lerp", eps_in_sqrt=False, rho_complement="rounded"
    )
    state = tx.init(jnp.zeros(512))._replace(ms=jnp.asarray(ms0), mg=jnp.asarray(mg0))
    _, new_state = maybe_jit(tx.update)(jnp.asarray(g), state)
    expected = lerp_float32(mg0, g, rho)
    # The other branch's formula rounds differently on this data, so the branch is identified.
    w = f32(1) - f32(rho)
    other = mg0 + w * (g - mg0) if w >= 0.5 else g - (g - mg0) * (f32(1) - w)
    assert np.sum(other != expected) > 10
    np.testing.assert_allclose(
        new_state.mg,
        rho * mg0.astype(np.float64) + (1 - rho) * g.astype(np.float64),
        rtol=1e-6,
        atol=1e-7,
    )
    if maybe_jit is jax.jit:
        # XLA contracts a*b + c into one fused multiply-add under jit (openxla/xla#41579), which
        # rounds once where the documented order rounds twice: at most 1 ulp of the inputs apart
        # (the result itself can be near zero, where its own ulp is far smaller).
        scale = np.spacing(np.maximum(np.abs(mg0), np.abs(g)))
        assert np.all(np.abs(np.asarray(new_state.mg) - expected) <= scale)
    else:
        np.testing.assert_array_equal(np.asarray(new_state.mg), expected)


def test_state_dtypes(maybe_jit):
    params = {"w": jnp.zeros(2, jnp.bfloat16)}
    tx = rj.scale_by_centered_rms(
        0.9, 1e-7, state_dtype=jnp.float32, eps_in_sqrt=False, rho_complement="rounded"
    )
    state = tx.init(params)
    assert state.ms["w"].dtype == state.mg["w"].dtype == jnp.float32
    updates, state = maybe_jit(tx.update)({"w": jnp.array([1.0, -3.0], jnp.bfloat16)}, state)
    assert updates["w"].dtype == jnp.bfloat16
    # mg = 0.1 * g in float32 (bfloat16 would give 0.10009765625 for g = 1).
    np.testing.assert_allclose(state.mg["w"], [0.1, -0.3], rtol=1e-6)
    default = rj.scale_by_centered_rms(0.9, 1e-7, eps_in_sqrt=False, rho_complement="rounded").init(
        params
    )
    assert default.ms["w"].dtype == default.mg["w"].dtype == jnp.bfloat16


@settings(deadline=None, max_examples=25, derandomize=True, database=None)
@given(
    rho=st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999]),
    epsilon=st.sampled_from([1e-8, 1e-7, 1e-4, 1e-2]),
    eps_in_sqrt=st.booleans(),
    form=st.sampled_from(["ema", "interpolate", "lerp"]),
    exponent=st.integers(-3, 3),
)
def test_constant_gradient_collapses_the_variance_but_never_gives_nan(
    rho, epsilon, eps_in_sqrt, form, exponent
):
    # With g constant, ms_t = (1 - rho**t) g**2 and mg_t = (1 - rho**t) g, so the variance
    # v_t = rho**t (1 - rho**t) g**2 decays to zero, and with a gradient that jitters by an ulp
    # or two float32's ms - mg**2 ends as round-off of either sign (TF and PyTorch: NaN when
    # negative). Clamped at zero, the step is at most |g| / den(0): huge, but finite.
    g = np.float32(10.0**exponent) * np.array([1.0, -3.0, 0.5, 7.0], np.float32)
    steps = 400
    jitter = np.random.default_rng(0).choice([-1.0, 1.0], size=(steps, g.size))
    grads = (g * (1 + np.float32(2.0**-21) * jitter.astype(np.float32))).astype(np.float32)
    tx = rj.scale_by_centered_rms(
        rho, epsilon, eps_in_sqrt=eps_in_sqrt, ms_form=form, mg_form=form, rho_complement="rounded"
    )

    def body(state, grad):
        updates, state = tx.update(grad, state)
        return state, (updates, state.ms - state.mg * state.mg)

    _, (updates, raw_variance) = jax.lax.scan(body, tx.init(jnp.zeros(g.size)), grads)
    updates = np.asarray(updates, np.float64)
    assert not np.any(np.isnan(updates))
    if rho <= 0.9:  # collapsed within 400 steps: the clamp really was needed
        assert np.any(np.asarray(raw_variance) < 0)
    eps32 = float(np.float32(epsilon))
    den0 = np.sqrt(eps32) if eps_in_sqrt else eps32
    assert np.all(np.abs(updates) <= np.abs(grads) / den0 * (1 + 1e-6))
    # While the variance is well above round-off, the steps follow the float64 closed form.
    decay = float(np.float32(rho)) ** np.arange(1, steps + 1)[:, None]
    v = decay * (1 - decay) * g.astype(np.float64) ** 2
    den = np.sqrt(v + eps32) if eps_in_sqrt else np.sqrt(v) + eps32
    resolved = np.broadcast_to(decay * (1 - decay) > 1e-3, updates.shape)
    np.testing.assert_allclose(updates[resolved], (grads / den)[resolved], rtol=1e-2)
