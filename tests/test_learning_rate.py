"""`scale_by_learning_rate`: constants, optax schedules and Keras's inverse-time `decay`."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)

U = jnp.array([1.0, -2.0, 0.5])


def run(tx, steps, maybe_jit, u=U):
    update = maybe_jit(tx.update)
    state = tx.init(jnp.zeros_like(u))
    outs, counts = [], []
    for _ in range(steps):
        counts.append(int(state.count))
        out, state = update(u, state)
        outs.append(np.asarray(out, np.float64))
    return outs, counts, state


def test_constant_learning_rate_descends(maybe_jit):
    outs, counts, state = run(rj.scale_by_learning_rate(0.1), 3, maybe_jit)
    for out in outs:
        np.testing.assert_allclose(out, [-0.1, 0.2, -0.05], rtol=1e-7)
    assert counts == [0, 1, 2]
    assert state.count.dtype == jnp.int32
    assert int(state.count) == 3


def test_flip_sign_false_keeps_the_sign(maybe_jit):
    outs, _, _ = run(rj.scale_by_learning_rate(0.1, flip_sign=False), 1, maybe_jit)
    np.testing.assert_allclose(outs[0], [0.1, -0.2, 0.05], rtol=1e-7)


def test_optax_schedule_sees_the_count_from_zero(maybe_jit):
    schedule = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)  # 0.1 * 0.5**t
    outs, _, _ = run(rj.scale_by_learning_rate(schedule), 4, maybe_jit)
    for t, out in enumerate(outs):
        np.testing.assert_allclose(out, -0.1 * 0.5**t * np.asarray(U), rtol=1e-6)


def test_user_schedule(maybe_jit):
    # (optax.piecewise_constant_schedule itself mixes float and int32 and fails under the strict
    # dtype promotion of conftest.py, so this is a hand-written step function.)
    def schedule(count):
        return jnp.where(count < 2, 1.0, 0.1)  # 1, 1, 0.1, 0.1

    outs, _, _ = run(rj.scale_by_learning_rate(schedule), 4, maybe_jit)
    np.testing.assert_allclose([o[0] for o in outs], [-1.0, -1.0, -0.1, -0.1], rtol=1e-6)


def test_inverse_time_decay_counts_from_zero(maybe_jit):
    # lr / (1 + decay * t): 0.1, 0.1/1.5, 0.1/2, 0.1/2.5 (Keras: the first step is undecayed).
    outs, _, _ = run(rj.scale_by_learning_rate(0.1, decay=0.5), 4, maybe_jit)
    for t, out in enumerate(outs):
        np.testing.assert_allclose(out, -0.1 / (1 + 0.5 * t) * np.asarray(U), rtol=1e-6)
    np.testing.assert_allclose(outs[2][0], -0.05, rtol=1e-6)


def test_decay_divides_the_schedule(maybe_jit):
    schedule = optax.linear_schedule(0.2, 0.1, transition_steps=4)  # 0.2, 0.175, 0.15, 0.125
    tx = rj.scale_by_learning_rate(schedule, decay=1.0, flip_sign=False)
    outs, _, _ = run(tx, 4, maybe_jit, u=jnp.ones(1))
    expected = [0.2 / 1, 0.175 / 2, 0.15 / 3, 0.125 / 4]
    np.testing.assert_allclose([o[0] for o in outs], expected, rtol=1e-6)


def test_tree_and_dtypes(maybe_jit):
    tx = rj.scale_by_learning_rate(0.5)
    u = {"a": jnp.array([1.0, 2.0], jnp.bfloat16), "b": jnp.array(4.0, jnp.float32)}
    out, _ = maybe_jit(tx.update)(u, tx.init(u))
    assert out["a"].dtype == jnp.bfloat16
    assert out["b"].dtype == jnp.float32
    np.testing.assert_array_equal(out["a"].astype(jnp.float32), [-0.5, -1.0])
    assert float(out["b"]) == -2.0


@pytest.mark.parametrize("learning_rate", [0.0, optax.constant_schedule(0.0)])
def test_zero_learning_rate_gives_zero(maybe_jit, learning_rate):
    outs, _, _ = run(rj.scale_by_learning_rate(learning_rate), 2, maybe_jit)
    np.testing.assert_array_equal(outs[1], [0.0, 0.0, 0.0])
