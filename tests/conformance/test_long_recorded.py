"""200-step runs recorded from PyTorch, tf.keras, TF1 and Keras 3, replayed with `rj.rmsprop`.

The runs (tests/reference/torch_long.json, tf_long.json; recorded by tests/reference/record.py)
cover what the 8-step recordings do not: every config of PyTorch's own
``optim_inputs_func_rmsprop`` (torch/testing/_internal/common_optimizers.py), rho 0.99, 0.999
and 0.9999 (where ``1 - rho`` must round as the framework rounds it), float32 and float64,
complex64 params, gradients spanning 1e-4 to 1e2, and TF1's sparse kernels with the default
``sparse_mode``. Gradients are rebuilt by tests/reference/long_gradients.py.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj
from tests.conformance.tolerance import ATOL, RTOL, assert_close_along_path, path_length
from tests.helpers import slots
from tests.reference import long_gradients as lg
from tests.reference import recorded

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)

RTOL64 = 1e-12  # float64 runs: round-off of 200 float64 steps


@functools.cache
def _load(framework: str) -> dict[str, Any]:
    return json.loads((recorded.HERE / f"{framework}.json").read_text())


def _decode(value: Any, dtype: str) -> np.ndarray:
    if isinstance(value, dict):
        return (np.asarray(value["re"]) + 1j * np.asarray(value["im"])).astype(dtype)
    return np.asarray(value, dtype=dtype)


def _cases() -> list[Any]:
    return [
        pytest.param(case, id=case["name"].replace(" ", "_").replace(",", ""))
        for framework in ("torch_long", "tf_long")
        for case in _load(framework)["cases"]
    ]


def _dense_run(tx: Any, params0: np.ndarray, dtype: str) -> tuple[np.ndarray, Any]:
    grads = np.stack(
        [
            (lg.dense(t, 0) + 1j * lg.dense(t, 1))
            if dtype.startswith("complex")
            else lg.dense(t, 0)
            for t in range(lg.STEPS)
        ]
    ).astype(dtype)

    @jax.jit
    def run(params: jax.Array, grads: jax.Array) -> tuple[jax.Array, Any]:
        def body(carry: Any, grad: jax.Array) -> tuple[Any, jax.Array]:
            params, state = carry
            updates, state = tx.update(grad, state, params)
            params = rj.apply_updates(params, updates)
            return (params, state), params

        (_, state), trajectory = jax.lax.scan(body, (params, tx.init(params)), grads)
        return trajectory, state

    trajectory, state = run(jnp.asarray(params0), jnp.asarray(grads))
    return np.asarray(trajectory), state


def _sparse_run(tx: Any, table0: np.ndarray) -> tuple[np.ndarray, Any]:
    update = jax.jit(tx.update)
    params, state = jnp.asarray(table0), tx.init(jnp.asarray(table0))
    trajectory = []
    for t in range(lg.STEPS):
        rows, values = lg.sparse(t)
        grad = rj.SparseRows(jnp.asarray(rows), jnp.asarray(values, jnp.float32), table0.shape)
        updates, state = update(grad, state, params)
        params = rj.apply_updates(params, updates)
        trajectory.append(np.asarray(params))
    return np.stack(trajectory), state


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("case", _cases())
def test_long_run_matches_the_recorded_framework(case: dict[str, Any]) -> None:
    dtype = case["dtype"]
    wide = dtype in ("float64", "complex128")
    rtol, atol = (RTOL64, 1e-12) if wide else (RTOL, ATOL)
    with jax.enable_x64(wide):
        tx = rj.rmsprop(**case["config"])  # no sparse_mode: the convention's default
        params0 = _decode(case["params0"], dtype)
        if case.get("sparse"):
            trajectory, state = _sparse_run(tx, params0)
        else:
            trajectory, state = _dense_run(tx, params0, dtype)
        path = path_length(trajectory, params0)
        for step, want in case["params"].items():
            k = int(step) - 1
            assert_close_along_path(
                trajectory[k],
                _decode(want, dtype),
                path[k],
                rtol=rtol,
                atol=atol,
                what=f"params after step {step}",
            )
        ours = slots(state)
        assert set(ours) == set(case["slots"])
        for slot, want in case["slots"].items():
            np.testing.assert_allclose(
                np.asarray(ours[slot]),
                _decode(want, dtype),
                rtol=rtol,
                atol=atol,
                err_msg=f"{slot} after {lg.STEPS} steps",
            )
