"""The weight-decay stages: coupled (g + wd*w) and decoupled (u - lr*wd*w)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)


def test_l2_gradient_adds_wd_times_w(maybe_jit):
    tx = rj.add_l2_gradient(0.1)
    grads = {"a": jnp.array([1.0, -1.0]), "b": jnp.array(0.5)}
    params = {"a": jnp.array([2.0, 3.0]), "b": jnp.array(-5.0)}
    out, _ = maybe_jit(tx.update)(grads, tx.init(params), params)
    np.testing.assert_allclose(out["a"], [1.2, -0.7], rtol=1e-6)
    np.testing.assert_allclose(out["b"], 0.0, atol=1e-7)


def test_l2_gradient_keeps_the_gradient_dtype(maybe_jit):
    tx = rj.add_l2_gradient(0.5)
    params = jnp.array([2.0, 4.0], jnp.bfloat16)
    out, _ = maybe_jit(tx.update)(jnp.ones(2, jnp.bfloat16), tx.init(params), params)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_array_equal(out.astype(jnp.float32), [2.0, 3.0])


def test_decoupled_decay_subtracts_lr_wd_w(maybe_jit):
    # Docstring example: 0 - 2 * 0.5 * 0.1.
    tx = rj.add_decoupled_weight_decay(0.5, 0.1)
    params = jnp.full(1, 2.0)
    out, state = maybe_jit(tx.update)(jnp.zeros(1), tx.init(params), params)
    np.testing.assert_allclose(out, [-0.1], rtol=1e-6)
    assert int(state.count) == 1


def test_decoupled_decay_adds_to_the_update(maybe_jit):
    tx = rj.add_decoupled_weight_decay(0.01, 1.0)
    params = {"w": jnp.array([10.0, -20.0])}
    updates = {"w": jnp.array([0.5, 0.5])}
    out, _ = maybe_jit(tx.update)(updates, tx.init(params), params)
    np.testing.assert_allclose(out["w"], [0.5 - 0.1, 0.5 + 0.2], rtol=1e-6)


def test_decoupled_decay_follows_schedule_and_inverse_time_decay(maybe_jit):
    # eta_t = 0.1 * 0.5**t / (1 + 0.5 t); out = -eta_t * 0.2 * w with w = 3.
    schedule = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    tx = rj.add_decoupled_weight_decay(0.2, schedule, decay=0.5)
    params = jnp.array([3.0])
    update = maybe_jit(tx.update)
    state = tx.init(params)
    for t in range(4):
        out, state = update(jnp.zeros(1), state, params)
        eta = 0.1 * 0.5**t / (1 + 0.5 * t)
        np.testing.assert_allclose(out, [-eta * 0.2 * 3.0], rtol=1e-6)


def test_rmsprop_weight_decay_uses_the_params_before_the_step(maybe_jit):
    # keras3: w1 = w0 - lr*g/sqrt(ms + eps) - lr*wd*w0 with rho = 0: ms = g*g.
    tx = rj.rmsprop(learning_rate=0.1, rho=0.0, epsilon=0.0, weight_decay=0.5, convention="keras3")
    params = jnp.array([4.0])
    updates, _ = maybe_jit(tx.update)(jnp.array([-2.0]), tx.init(params), params)
    np.testing.assert_allclose(updates, [0.1 - 0.1 * 0.5 * 4.0], rtol=1e-6)


def test_rmsprop_torch_weight_decay_is_coupled(maybe_jit):
    # torch: g' = g + wd*w = 1 + 0.5*2 = 2; rho = 0: ms = 4; step = lr * 2 / (2 + eps).
    tx = rj.rmsprop(learning_rate=0.1, rho=0.0, epsilon=0.0, weight_decay=0.5, convention="torch")
    params = jnp.array([2.0])
    updates, state = maybe_jit(tx.update)(jnp.array([1.0]), tx.init(params), params)
    np.testing.assert_allclose(updates, [-0.1], rtol=1e-6)
    np.testing.assert_allclose(optax.tree.get(state, "ms"), [4.0], rtol=1e-7)


@pytest.mark.parametrize(
    ("tx", "stage"),
    [
        (rj.add_l2_gradient(0.1), "add_l2_gradient"),
        (rj.add_decoupled_weight_decay(0.1, 0.01), "add_decoupled_weight_decay"),
        (rj.rmsprop(weight_decay=0.1, convention="torch"), "add_l2_gradient"),
        (rj.rmsprop(weight_decay=0.1, decoupled_weight_decay=True), "add_decoupled_weight_decay"),
    ],
)
def test_missing_params_is_a_clear_error(tx, stage):
    params = jnp.ones(2)
    with pytest.raises(
        ValueError,
        match=rf"^{stage} needs the params: call tx.update\(grads, state, params\) with the "
        "current params.$",
    ):
        tx.update(jnp.ones(2), tx.init(params))


def test_zero_weight_decay_leaves_the_alias_without_the_stage():
    params = jnp.ones(2)
    tx = rj.rmsprop(learning_rate=0.1, weight_decay=0.0)
    updates, _ = tx.update(jnp.ones(2), tx.init(params))  # no params needed
    plain = rj.rmsprop(learning_rate=0.1)
    expected, _ = plain.update(jnp.ones(2), plain.init(params))
    np.testing.assert_array_equal(updates, expected)
