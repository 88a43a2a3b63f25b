"""`trace_momentum`: heavy-ball and Nesterov closed forms, and the buffer's dtype."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj
from tests.helpers import run_stage as run

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)


def test_heavy_ball_hand_numbers(maybe_jit):
    # mu = 0.5, u = 1 every step: 1, 1.5, 1.75.
    outs, states = run(rj.trace_momentum(0.5), [jnp.ones(1)] * 3, jnp.zeros(1), maybe_jit)
    assert [float(o[0]) for o in outs] == [1.0, 1.5, 1.75]
    assert [float(s.mom[0]) for s in states] == [1.0, 1.5, 1.75]


def test_nesterov_hand_numbers(maybe_jit):
    # out = u + mu * mom: 1 + 0.5*1, 1 + 0.5*1.5, 1 + 0.5*1.75; the buffer is the heavy ball's.
    tx = rj.trace_momentum(0.5, nesterov=True)
    outs, states = run(tx, [jnp.ones(1)] * 3, jnp.zeros(1), maybe_jit)
    assert [float(o[0]) for o in outs] == [1.5, 1.75, 1.875]
    assert [float(s.mom[0]) for s in states] == [1.0, 1.5, 1.75]


@pytest.mark.parametrize("nesterov", [False, True])
def test_closed_form_over_five_steps(maybe_jit, nesterov):
    mu = 0.9
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(5, 2, 3)).astype(np.float32)
    tx = rj.trace_momentum(mu, nesterov=nesterov)
    outs, states = run(tx, [jnp.asarray(u) for u in inputs], jnp.zeros((2, 3)), maybe_jit)
    u64 = inputs.astype(np.float64)
    mu64 = float(np.float32(mu))
    for t in range(5):
        mom = sum(mu64 ** (t - i) * u64[i] for i in range(t + 1))  # sum_i mu**(t-i) u_i
        expected = u64[t] + mu64 * mom if nesterov else mom
        np.testing.assert_allclose(states[t].mom, mom, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outs[t], expected, rtol=1e-5, atol=1e-6)


def test_zero_momentum_passes_updates_through(maybe_jit):
    u = jnp.array([1.0, -2.0, 3.5])
    outs, _ = run(rj.trace_momentum(0.0), [u, 2 * u], jnp.zeros(3), maybe_jit)
    np.testing.assert_array_equal(outs[1], [2.0, -4.0, 7.0])


def test_tree_leaves_have_separate_buffers(maybe_jit):
    params = {"a": jnp.zeros(2), "b": {"c": jnp.zeros(())}}
    inputs = [{"a": jnp.array([1.0, 2.0]), "b": {"c": jnp.array(4.0)}}] * 2
    outs, states = run(rj.trace_momentum(0.25), inputs, params, maybe_jit)
    np.testing.assert_array_equal(outs[1]["a"], [1.25, 2.5])
    np.testing.assert_array_equal(outs[1]["b"]["c"], 5.0)
    np.testing.assert_array_equal(states[1].mom["b"]["c"], 5.0)


def test_float32_buffer_for_bfloat16_updates(maybe_jit):
    # mu = 0.9, u = 1: the buffer is 1, 1.9, 2.71. A float32 buffer keeps 2.71 to float32
    # precision; a bfloat16 buffer rounds 1.9 to 1.8984375 and then 2.70859375 to 2.703125.
    inputs = [jnp.ones(1, jnp.bfloat16)] * 3
    tx32 = rj.trace_momentum(0.9, state_dtype=jnp.float32)
    outs, states = run(tx32, inputs, jnp.zeros(1, jnp.bfloat16), maybe_jit)
    assert states[2].mom.dtype == jnp.float32
    assert outs[2].dtype == jnp.bfloat16
    np.testing.assert_allclose(states[2].mom, [2.71], rtol=1e-6)
    assert float(outs[2][0]) == 2.703125  # 2.71 rounded once to bfloat16 on the way out

    tx16 = rj.trace_momentum(0.9)
    _, states16 = run(tx16, inputs, jnp.zeros(1, jnp.bfloat16), maybe_jit)
    assert states16[2].mom.dtype == jnp.bfloat16
    assert float(states16[1].mom[0]) == 1.8984375
    assert float(states16[2].mom[0]) == 2.703125
