"""The NumPy references and expected numbers of TF's own RMSprop tests, against `rj.rmsprop`.

Ported in this project's words from
- tf_keras/optimizers/legacy/rmsprop_test.py (keras-team/tf-keras): ``testDense``,
  ``testSparse``, ``testDenseWithLearningRateDecay``, ``testMinimizeSparseResourceVariable``
  (plain and centered), ``testCallableParams``; against ``convention="keras"``;
- tensorflow/python/training/rmsprop_test.py (TF1): ``testDense``, ``testSparse``,
  ``testWithoutMomentum``, ``testWithMomentum``; against ``convention="tf1"``.
(rj.keras.RMSprop gets the same ports in tests/test_keras.py.) Tolerances are TF's
``assertAllCloseAccordingToType``: 1e-3 for float16, 1e-6 otherwise.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj
from tests.helpers import slots

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

KERAS_DTYPES = [np.float16, np.float32, np.float64, np.complex64, np.complex128]
KERAS_PARAMS = [  # learning_rate, rho, momentum, epsilon, centered
    (0.05, 0.9, 0.0, 1e-3, True),
    (0.05, 0.9, 0.0, 1e-3, False),
    (0.1, 0.9, 0.0, 1e-3, True),
    (0.01, 0.9, 0.0, 1e-5, True),
    (0.01, 0.9, 0.9, 1e-5, True),
]
TF1_DTYPES = [np.float16, np.float32]
TF1_PARAMS = [  # learning_rate, decay (rho), momentum, epsilon, centered
    (0.5, 0.9, 0.0, 1e-3, True),
    (0.5, 0.9, 0.0, 1e-3, False),
    (0.1, 0.9, 0.0, 1e-3, True),
    (0.5, 0.95, 0.0, 1e-3, False),
    (0.5, 0.95, 0.0, 1e-5, True),
    (0.5, 0.95, 0.9, 1e-5, True),
]


def _tolerance(dtype: Any) -> float:
    return 1e-3 if np.dtype(dtype) == np.float16 else 1e-6


def _wide(dtype: Any) -> bool:
    return np.dtype(dtype) in (np.float64, np.complex128)


def _keras_numpy(var, g, mg, rms, mom, lr, rho, momentum, epsilon, centered):
    """tf_keras's ``_rmsprop_update_numpy``: epsilon outside the root without momentum."""
    rms = rms * rho + (1 - rho) * g * g
    if centered:
        mg = mg * rho + (1 - rho) * g
        denom = rms - mg * mg
    else:
        denom = rms
    if momentum > 0.0:
        mom = momentum * mom + lr * g / np.sqrt(denom + epsilon)
        var = var - mom
    else:
        var = var - lr * g / (np.sqrt(denom) + epsilon)
    return var, mg, rms, mom


def _tf1_numpy(var, g, mg, rms, mom, lr, decay, momentum, epsilon, centered):
    """TF1's ``_rmsprop_update_numpy``: epsilon inside the root, always a momentum slot."""
    rms = rms * decay + (1 - decay) * g * g
    denom = rms + epsilon
    if centered:
        mg = mg * decay + (1 - decay) * g
        denom = denom - mg * mg
    mom = momentum * mom + lr * g / np.sqrt(denom)
    return var - mom, mg, rms, mom


def _run_against_numpy(
    convention: str, dtype: Any, hyper: tuple[Any, ...], *, sparse: bool, steps: int
) -> None:
    lr, rho, momentum, epsilon, centered = hyper
    reference = _keras_numpy if convention == "keras" else _tf1_numpy
    ms0 = 1.0 if convention == "tf1" else 0.0
    with jax.enable_x64(_wide(dtype)):
        tx = rj.rmsprop(
            lr,
            rho=rho,
            momentum=momentum,
            epsilon=epsilon,
            centered=centered,
            convention=convention,
            sparse_tables=[True, True] if sparse else None,
        )
        vars_np = [np.array([1.0, 2.0], dtype), np.array([3.0, 4.0], dtype)]
        if sparse:  # one element of each var: index 0 of var0, index 1 of var1
            grads_np = [np.array([0.1], dtype), np.array([0.01], dtype)]
            indices = [0, 1]
        else:
            grads_np = [np.array([0.1, 0.2], dtype), np.array([0.01, 0.2], dtype)]
        params = [jnp.asarray(v) for v in vars_np]
        grads: list[Any] = (
            [
                rj.SparseRows(jnp.array([i]), jnp.asarray(g), (2,))
                for i, g in zip(indices, grads_np, strict=True)
            ]
            if sparse
            else [jnp.asarray(g) for g in grads_np]
        )
        state = tx.init(params)
        ref = [
            {
                "var": v.copy(),
                "mg": np.zeros(2, dtype),
                "rms": np.full(2, ms0, dtype),
                "mom": np.zeros(2, dtype),
            }
            for v in vars_np
        ]
        tol = _tolerance(dtype)
        for _ in range(steps):
            updates, state = tx.update(grads, state, params)
            params = rj.apply_updates(params, updates)
            for k, r in enumerate(ref):
                rows = [indices[k]] if sparse else [0, 1]
                g_full = np.zeros(2, dtype)
                g_full[rows] = grads_np[k]
                new = reference(
                    r["var"],
                    g_full,
                    r["mg"],
                    r["rms"],
                    r["mom"],
                    lr,
                    rho,
                    momentum,
                    epsilon,
                    centered,
                )
                for name, value in zip(("var", "mg", "rms", "mom"), new, strict=True):
                    r[name][rows] = np.asarray(value, dtype)[rows]  # sparse: touched rows only
            got = slots(state)
            for k, r in enumerate(ref):
                np.testing.assert_allclose(params[k], r["var"], rtol=tol, atol=tol)
                np.testing.assert_allclose(got["ms"][k], r["rms"], rtol=tol, atol=tol)
                if centered:
                    np.testing.assert_allclose(got["mg"][k], r["mg"], rtol=tol, atol=tol)
                if "mom" in got:
                    np.testing.assert_allclose(got["mom"][k], r["mom"], rtol=tol, atol=tol)


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("dtype,hyper", list(itertools.product(KERAS_DTYPES, KERAS_PARAMS)))
def test_tf_keras_dense_and_sparse_against_its_numpy_reference(
    dtype: Any, hyper: tuple[Any, ...], sparse: bool
) -> None:
    _run_against_numpy("keras", dtype, hyper, sparse=sparse, steps=3)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("dtype,hyper", list(itertools.product(TF1_DTYPES, TF1_PARAMS)))
def test_tf1_dense_and_sparse_against_its_numpy_reference(
    dtype: Any, hyper: tuple[Any, ...], sparse: bool
) -> None:
    _run_against_numpy("tf1", dtype, hyper, sparse=sparse, steps=4)


def test_tf_keras_inverse_time_decay() -> None:
    """testDenseWithLearningRateDecay: float64 vars, lr = 0.01 / (1 + 0.5 t)."""
    with jax.enable_x64(True):
        tx = rj.rmsprop(0.01, rho=0.9, epsilon=1e-7, inverse_time_decay=0.5)
        params = [jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])]
        grads = [jnp.array([0.1, 0.2]), jnp.array([0.01, 0.2])]
        ref = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
        rms = [np.zeros(2), np.zeros(2)]
        state = tx.init(params)
        for t in range(2):
            updates, state = tx.update(grads, state, params)
            params = rj.apply_updates(params, updates)
            for k in range(2):
                ref[k], _, rms[k], _ = _keras_numpy(
                    ref[k],
                    np.asarray(grads[k]),
                    0.0,
                    rms[k],
                    0.0,
                    0.01 / (1 + 0.5 * t),
                    0.9,
                    0.0,
                    1e-7,
                    False,
                )
                np.testing.assert_allclose(params[k], ref[k], rtol=1e-6, atol=1e-6)


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(
    "centered,epsilon,expected", [(False, 0.0, [[0.0, 1.0]]), (True, 1.0, [[-111.0, -138.0]])]
)
def test_tf_keras_minimize_sparse_variable(
    dtype: Any, centered: bool, epsilon: float, expected: list[list[float]]
) -> None:
    """testMinimizeSparseResourceVariable(Centered): loss (lookup(var, [0]) @ [[4], [5]])**2."""
    with jax.enable_x64(_wide(dtype)):
        var = jnp.array([[1.0, 2.0]], dtype)
        x = jnp.array([[4.0], [5.0]], dtype)
        tx = rj.rmsprop(
            1.0, rho=0.0, momentum=0.0, epsilon=epsilon, centered=centered, sparse_tables=True
        )
        loss, (grad,) = rj.value_and_sparse_grad(
            lambda rows: jnp.sum((rows @ x) ** 2), var, jnp.array([0])
        )
        updates, _ = tx.update(grad, tx.init(var), var)
        np.testing.assert_allclose(rj.apply_updates(var, updates), expected, atol=0.01)
        assert float(loss) == 196.0


@pytest.mark.parametrize("dtype", KERAS_DTYPES)
def test_tf_keras_callable_hyperparameters_take_the_momentum_kernel(dtype: Any) -> None:
    """testCallableParams: a callable (here: array) momentum selects TF's momentum kernel, so
    epsilon sits inside the root even at momentum 0: var -= lr * g / sqrt(ms + eps)."""
    with jax.enable_x64(_wide(dtype)):
        tx = rj.rmsprop(2.0, rho=0.9, momentum=jnp.asarray(0.0), epsilon=1.0)
        params = [jnp.array([1.0, 2.0], dtype), jnp.array([3.0, 4.0], dtype)]
        grads = [jnp.full(2, 0.1, dtype), jnp.full(2, 0.01, dtype)]
        state = tx.init(params)
        updates, state = tx.update(grads, state, params)
        params = rj.apply_updates(params, updates)
        tol = _tolerance(dtype)
        first = [0.1 * 2.0 / math.sqrt(0.001 + 1.0), 0.01 * 2.0 / math.sqrt(0.00001 + 1.0)]
        np.testing.assert_allclose(params[0], [1.0 - first[0], 2.0 - first[0]], rtol=tol)
        np.testing.assert_allclose(params[1], [3.0 - first[1], 4.0 - first[1]], rtol=tol)
        updates, state = tx.update(grads, state, params)
        params = rj.apply_updates(params, updates)
        second = [
            0.1 * 2.0 / math.sqrt(0.001 * 0.9 + 0.001 + 1.0),
            0.01 * 2.0 / math.sqrt(0.00001 * 0.9 + 1e-5 + 1.0),
        ]
        np.testing.assert_allclose(
            params[0], [1.0 - first[0] - second[0], 2.0 - first[0] - second[0]], rtol=tol
        )
        np.testing.assert_allclose(
            params[1], [3.0 - first[1] - second[1], 4.0 - first[1] - second[1]], rtol=tol
        )


@pytest.mark.parametrize("dtype", TF1_DTYPES)
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_tf1_expected_numbers(dtype: Any, momentum: float) -> None:
    """testWithoutMomentum (epsilon 1) and testWithMomentum (epsilon 1e-5): lr 2, decay 0.9."""
    epsilon = 1.0 if momentum == 0.0 else 1e-5
    tx = rj.rmsprop(2.0, rho=0.9, momentum=momentum, epsilon=epsilon, convention="tf1")
    params = [jnp.array([1.0, 2.0], dtype), jnp.array([3.0, 4.0], dtype)]
    grads = [jnp.full(2, 0.1, dtype), jnp.full(2, 0.01, dtype)]
    state = tx.init(params)
    tol = _tolerance(dtype)
    ms1 = [0.901, 0.90001]
    ms2 = [0.901 * 0.9 + 0.001, 0.90001 * 0.9 + 1e-5]
    step1 = [0.1 * 2.0 / math.sqrt(ms1[0] + epsilon), 0.01 * 2.0 / math.sqrt(ms1[1] + epsilon)]
    step2 = [0.1 * 2.0 / math.sqrt(ms2[0] + epsilon), 0.01 * 2.0 / math.sqrt(ms2[1] + epsilon)]
    mom2 = [momentum * step1[k] + step2[k] for k in range(2)]
    for want_ms, moved in ((ms1, step1), (ms2, [step1[k] + mom2[k] for k in range(2)])):
        updates, state = tx.update(grads, state, params)
        params = rj.apply_updates(params, updates)
        for k, start in enumerate(([1.0, 2.0], [3.0, 4.0])):
            np.testing.assert_allclose(slots(state)["ms"][k], [want_ms[k]] * 2, rtol=tol)
            np.testing.assert_allclose(params[k], np.subtract(start, moved[k]), rtol=tol)
    if momentum:
        np.testing.assert_allclose(slots(state)["mom"][0], [mom2[0]] * 2, rtol=tol)
        np.testing.assert_allclose(slots(state)["mom"][1], [mom2[1]] * 2, rtol=tol)
