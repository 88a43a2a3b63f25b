"""tf-keras's legacy RMSprop tests, run against ``rj.keras.RMSprop``.

Ported from keras-team/tf-keras ``tf_keras/optimizers/legacy/rmsprop_test.py`` (the tests of
``tf_keras.optimizers.legacy.RMSprop``, the TF 2.x OptimizerV2 this front end reproduces): dense
and sparse steps against the file's NumPy restatement, learning-rate decay (the ``decay``
argument and an ``InverseTimeDecay`` schedule), minimize on an embedding lookup, callable
hyperparameters, ``lr``, slot uniqueness and the momentum range. ``tf.Variable`` becomes
``rk.Variable``, ``tf.IndexedSlices`` becomes ``rj.SparseRows``. The dtypes are float16 and
float32: JAX runs without float64 by default, and the library does not take complex params.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj
from rmsprop_jax import keras as rk

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)

DTYPES = [np.float16, np.float32]
# learning_rate, rho, momentum, epsilon, centered (upstream's _TEST_PARAM_VALUES)
PARAM_VALUES = [
    (0.05, 0.9, 0.0, 1e-3, True),
    (0.05, 0.9, 0.0, 1e-3, False),
    (0.1, 0.9, 0.0, 1e-3, True),
    (0.01, 0.9, 0.0, 1e-5, True),
    (0.01, 0.9, 0.9, 1e-5, True),
]
PARAMS = [(d, *v) for d, v in itertools.product(DTYPES, PARAM_VALUES)]


def assert_close_for(dtype: Any, want: Any, got: Any, atol: float | None = None) -> None:
    """TF's assertAllCloseAccordingToType: 1e-3 for half precision, 1e-6 for float32."""
    tol = 1e-3 if np.dtype(dtype) == np.float16 else 1e-6
    np.testing.assert_allclose(
        np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=tol, atol=atol or tol
    )


def rmsprop_update_numpy(
    var: Any,
    g: Any,
    mg: Any,
    rms: Any,
    mom: Any,
    lr: float,
    rho: float,
    momentum: float,
    epsilon: float,
    centered: bool,
) -> tuple[Any, Any, Any, Any]:
    """Upstream's ``_rmsprop_update_numpy``, computed in float64."""
    rms_t = rms * rho + (1 - rho) * g * g
    if centered:
        mg_t = mg * rho + (1 - rho) * g
        denom_t = rms_t - mg_t * mg_t
    else:
        mg_t, denom_t = mg, rms_t
    if momentum > 0.0:
        mom_t = momentum * mom + lr * g / np.sqrt(denom_t + epsilon)
        var_t = var - mom_t
    else:
        mom_t = mom
        var_t = var - lr * g / (np.sqrt(denom_t) + epsilon)
    return var_t, mg_t, rms_t, mom_t


def sparse_rmsprop_update_numpy(
    var: Any,
    indices: Any,
    values: Any,
    mg: Any,
    rms: Any,
    mom: Any,
    lr: float,
    rho: float,
    momentum: float,
    epsilon: float,
    centered: bool,
) -> tuple[Any, Any, Any, Any]:
    """Upstream's ``_sparse_rmsprop_update_numpy``: only the touched rows change."""
    mg_t, rms_t, mom_t, var_t = (copy.deepcopy(a) for a in (mg, rms, mom, var))
    for i, value in zip(indices, values, strict=True):
        rms_t[i] = rms[i] * rho + (1 - rho) * value * value
        if centered:
            mg_t[i] = mg_t[i] * rho + (1 - rho) * value
            denom_t = rms_t[i] - mg_t[i] * mg_t[i]
        else:
            denom_t = rms_t[i]
        if momentum > 0.0:
            mom_t[i] = momentum * mom[i] + lr * value / np.sqrt(denom_t + epsilon)
            var_t[i] = var[i] - mom_t[i]
        else:
            var_t[i] = var[i] - lr * value / (np.sqrt(denom_t) + epsilon)
    return var_t, mg_t, rms_t, mom_t


def _check_slots(
    opt: rk.RMSprop,
    var: rk.Variable,
    dtype: Any,
    momentum: float,
    mg: Any,
    rms: Any,
    mom: Any,
    centered: bool,
) -> None:
    if centered:
        assert_close_for(dtype, mg, opt.get_slot(var, "mg").numpy())
    if momentum > 0.0:
        assert_close_for(dtype, mom, opt.get_slot(var, "momentum").numpy())
    assert_close_for(dtype, rms, opt.get_slot(var, "rms").numpy())


@pytest.mark.parametrize(("dtype", "lr", "rho", "momentum", "epsilon", "centered"), PARAMS)
def test_dense(
    dtype: Any, lr: float, rho: float, momentum: float, epsilon: float, centered: bool
) -> None:
    var_np = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    grads_np = [np.array([0.1, 0.2]), np.array([0.01, 0.2])]
    variables = [rk.Variable(v.astype(dtype)) for v in var_np]
    grads = [jnp.asarray(g.astype(dtype)) for g in grads_np]
    opt = rk.RMSprop(
        learning_rate=lr, rho=rho, momentum=momentum, epsilon=epsilon, centered=centered
    )
    slots = [[np.zeros(2) for _ in range(3)] for _ in variables]  # mg, rms, mom
    for _ in range(3):
        opt.apply_gradients(zip(grads, variables, strict=True))
        for i, var in enumerate(variables):
            g = grads_np[i].astype(dtype).astype(np.float64)
            var_np[i], *slots[i] = rmsprop_update_numpy(
                var_np[i], g, *slots[i], lr, rho, momentum, epsilon, centered
            )
            _check_slots(opt, var, dtype, momentum, *slots[i], centered)
            assert_close_for(dtype, var_np[i], var.numpy())
    want = ["rms"] + (["momentum"] if momentum > 0 else []) + (["mg"] if centered else [])
    assert opt.get_slot_names() == want


def _decay_run(opt: rk.RMSprop, lr: float, decay: float) -> None:
    var_np = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    grads_np = [np.array([0.1, 0.2]), np.array([0.01, 0.2])]
    variables = [rk.Variable(v.astype(np.float32)) for v in var_np]
    rms = [np.zeros(2), np.zeros(2)]
    for t in range(2):
        opt.apply_gradients(
            zip([jnp.asarray(g, jnp.float32) for g in grads_np], variables, strict=True)
        )
        step_lr = lr / (1 + decay * t)
        for i, var in enumerate(variables):
            var_np[i], _, rms[i], _ = rmsprop_update_numpy(
                var_np[i], grads_np[i], 0.0, rms[i], 0.0, step_lr, 0.9, 0.0, 1e-7, False
            )
            assert_close_for(np.float32, rms[i], opt.get_slot(var, "rms").numpy())
            assert_close_for(np.float32, var_np[i], var.numpy())


def test_dense_with_learning_rate_decay() -> None:
    opt = rk.RMSprop(
        learning_rate=0.01, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, decay=0.5
    )
    _decay_run(opt, 0.01, 0.5)


def test_dense_with_learning_rate_inverse_time_decay() -> None:
    schedule = rk.schedules.InverseTimeDecay(0.01, decay_steps=1.0, decay_rate=0.5)
    opt = rk.RMSprop(learning_rate=schedule, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)
    _decay_run(opt, 0.01, 0.5)


EMBEDDING_CASES = [
    # centered, epsilon, the variable after one step (upstream's expectations)
    pytest.param(False, 0.0, [[0.0, 1.0]], id="plain"),
    pytest.param(True, 1.0, [[-111.0, -138.0]], id="centered"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("centered", "epsilon", "want"), EMBEDDING_CASES)
def test_minimize_on_an_embedding_lookup(
    dtype: Any, centered: bool, epsilon: float, want: Any
) -> None:
    var0 = rk.Variable(np.array([[1.0, 2.0]], dtype))
    x = jnp.array([[4.0], [5.0]], dtype)

    def loss() -> jax.Array:
        pred = jnp.matmul(jnp.take(var0, jnp.array([0]), axis=0), x)  # embedding_lookup
        return pred * pred

    opt = rk.RMSprop(learning_rate=1.0, rho=0.0, momentum=0.0, epsilon=epsilon, centered=centered)
    opt.minimize(loss, var_list=[var0])
    assert_close_for(dtype, want, var0.numpy(), atol=0.01)


@pytest.mark.parametrize(("centered", "epsilon", "want"), EMBEDDING_CASES)
def test_sparse_gradient_of_an_embedding_lookup(centered: bool, epsilon: float, want: Any) -> None:
    # TF's gradient of embedding_lookup is IndexedSlices; here the same rows as SparseRows.
    var0 = rk.Variable(np.array([[1.0, 2.0]], np.float32))
    x = jnp.array([[4.0], [5.0]])
    ids = jnp.array([0])
    rows = jax.grad(lambda r: jnp.sum(jnp.square(r @ x)))(jnp.take(var0, ids, axis=0))
    opt = rk.RMSprop(learning_rate=1.0, rho=0.0, momentum=0.0, epsilon=epsilon, centered=centered)
    opt.apply_gradients([(rj.SparseRows(ids, rows, var0.shape), var0)])
    assert_close_for(np.float32, want, var0.numpy(), atol=0.01)


@pytest.mark.fast_share(3)
@pytest.mark.parametrize(("dtype", "lr", "rho", "momentum", "epsilon", "centered"), PARAMS)
def test_sparse(
    dtype: Any, lr: float, rho: float, momentum: float, epsilon: float, centered: bool
) -> None:
    var_np = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    values_np = [np.array([0.1]), np.array([0.01])]
    indices = [np.array([0], np.int32), np.array([1], np.int32)]
    variables = [rk.Variable(v.astype(dtype)) for v in var_np]
    grads = [
        rj.SparseRows(jnp.asarray(i), jnp.asarray(v.astype(dtype)), (2,))
        for i, v in zip(indices, values_np, strict=True)
    ]
    opt = rk.RMSprop(
        learning_rate=lr, rho=rho, momentum=momentum, epsilon=epsilon, centered=centered
    )
    slots = [[np.zeros(2) for _ in range(3)] for _ in variables]
    for _ in range(3):
        opt.apply_gradients(zip(grads, variables, strict=True))
        for i, var in enumerate(variables):
            values = values_np[i].astype(dtype).astype(np.float64)
            var_np[i], *slots[i] = sparse_rmsprop_update_numpy(
                var_np[i], indices[i], values, *slots[i], lr, rho, momentum, epsilon, centered
            )
            _check_slots(opt, var, dtype, momentum, *slots[i], centered)
            assert_close_for(dtype, var_np[i], var.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_callable_params(dtype: Any) -> None:
    var0 = rk.Variable(np.array([1.0, 2.0], dtype))
    var1 = rk.Variable(np.array([3.0, 4.0], dtype))
    grads0 = jnp.array([0.1, 0.1], dtype)
    grads1 = jnp.array([0.01, 0.01], dtype)
    # A callable momentum enables momentum (epsilon inside the root), even returning 0.
    opt = rk.RMSprop(lambda: 2.0, lambda: 0.9, lambda: 0.0, 1.0)
    opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
    step0 = 0.1 * 2.0 / math.sqrt(0.001 + 1.0)
    step1 = 0.01 * 2.0 / math.sqrt(0.00001 + 1.0)
    assert_close_for(dtype, [1.0 - step0, 2.0 - step0], var0.numpy())
    assert_close_for(dtype, [3.0 - step1, 4.0 - step1], var1.numpy())
    opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
    step0b = 0.1 * 2.0 / math.sqrt(0.001 * 0.9 + 0.001 + 1.0)
    step1b = 0.01 * 2.0 / math.sqrt(0.00001 * 0.9 + 1e-5 + 1.0)
    assert_close_for(dtype, [1.0 - step0 - step0b, 2.0 - step0 - step0b], var0.numpy())
    assert_close_for(dtype, [3.0 - step1 - step1b, 4.0 - step1 - step1b], var1.numpy())


def test_construct_rmsprop_with_lr() -> None:
    with pytest.warns(UserWarning, match=r"The `lr` argument is deprecated"):
        opt = rk.RMSprop(lr=1.0)
    with pytest.warns(UserWarning, match=r"The `lr` argument is deprecated"):
        opt_2 = rk.RMSprop(learning_rate=0.1, lr=1.0)
    opt_3 = rk.RMSprop(learning_rate=0.1)
    for o in (opt, opt_2, opt_3):
        assert isinstance(o.lr, rk.Variable)
    np.testing.assert_allclose(opt.lr.numpy(), 1.0)
    np.testing.assert_allclose(opt_2.lr.numpy(), 1.0)
    np.testing.assert_allclose(opt_3.lr.numpy(), 0.1, rtol=1e-7)


@pytest.mark.parametrize(
    ("momentum", "centered", "count"), [(0.0, False, 3), (0.2, False, 5), (0.2, True, 7)]
)
def test_slots_unique(momentum: float, centered: bool, count: int) -> None:
    v1, v2 = rk.Variable(1.0), rk.Variable(1.0)
    opt = rk.RMSprop(1.0, momentum=momentum, centered=centered)
    opt.minimize(lambda: v1 + v2, var_list=[v1, v2])
    # iterations, and one slot variable per (variable, slot)
    assert len({id(v) for v in opt.variables()}) == count
    assert int(opt.variables()[0]) == int(opt.iterations) == 1


def test_momentum_proper_value() -> None:
    with pytest.raises(
        ValueError, match=r"`momentum` must be in \[0, 1\]\. Received: momentum=2\.5"
    ):
        rk.RMSprop(1.0, momentum=2.5, centered=False)


def test_minimize_of_a_non_scalar_loss() -> None:
    # Upstream's SlotColocationTest, without devices: the loss is a vector; every entry falls.
    var0 = rk.Variable(np.array([1.0, 2.0], np.float32))
    var1 = rk.Variable(np.array([3.0, 4.0], np.float32))
    opt = rk.RMSprop(learning_rate=1.0, decay=0.9, momentum=0.5, epsilon=1.0)
    opt.minimize(lambda: 5 * var0 + 3 * var1, [var0, var1])
    assert np.all(var0.numpy() < 0.0), var0.numpy()
    assert np.all(var1.numpy() < 2.0), var1.numpy()
