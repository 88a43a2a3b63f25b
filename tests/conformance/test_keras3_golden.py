"""Keras 3's golden RMSprop values, against ``convention="keras3"``.

Ported in this project's words from keras/src/optimizers/rmsprop_test.py (keras-team/keras):
``test_single_step``, ``test_weight_decay``, ``test_correctness_with_golden``, ``test_clip_norm``,
``test_clip_value``, with the tolerances used there.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import rmsprop_jax as rj


def test_single_step() -> None:
    tx = rj.rmsprop(learning_rate=0.5, convention="keras3")
    params = jnp.array([1.0, 2.0, 3.0, 4.0])
    updates, _ = tx.update(jnp.array([1.0, 6.0, 7.0, 2.0]), tx.init(params), params)
    np.testing.assert_allclose(
        rj.apply_updates(params, updates), [-0.5811, 0.4189, 1.4189, 2.4189], rtol=1e-4, atol=1e-4
    )


def test_weight_decay() -> None:
    """Three optimizers with weight_decay=0.004 and lr=1 each step var1 once on a zero gradient
    (the other variables of the upstream test are excluded from decay): 2 * 0.996**3."""
    var = jnp.asarray(2.0)
    for _ in range(3):
        tx = rj.rmsprop(learning_rate=1.0, weight_decay=0.004, convention="keras3")
        updates, _ = tx.update(jnp.zeros(()), tx.init(var), var)
        var = rj.apply_updates(var, updates)
    np.testing.assert_almost_equal(float(var), 1.9760959, decimal=6)


def test_correctness_with_golden() -> None:
    tx = rj.rmsprop(centered=True, convention="keras3")  # Keras 3's defaults: 1e-3, 0.9, 1e-7
    x = jnp.ones(10)
    grads = jnp.arange(1, 11, dtype=jnp.float32) / 10
    golden = np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]], (1, 10))
    state = tx.init(x)
    updates, state = tx.update(jnp.full(10, 0.01), state, x)
    x = rj.apply_updates(x, updates)
    for i in range(5):
        np.testing.assert_allclose(x, golden[i], rtol=5e-4, atol=5e-4)
        updates, state = tx.update(grads, state, x)
        x = rj.apply_updates(x, updates)


def test_clip_norm_and_value() -> None:
    grad = jnp.array([100.0, 100.0])
    for clip, want in (
        (rj.clip_by_norm(1.0), [2**0.5 / 2] * 2),
        (rj.clip_by_value(1.0), [1.0, 1.0]),
    ):
        clipped, _ = clip.update(grad, clip.init(grad))
        np.testing.assert_allclose(clipped, want, rtol=1e-6)
