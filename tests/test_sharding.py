"""Sharded state and sharded tables on 8 CPU devices, against the same runs on one device.

JAX fixes its device count when it is first imported, so the 8-device runs happen in a
subprocess (tests/sharded_checks.py, with XLA_FLAGS asking for 8 host devices) that prints a
JSON report; the tests here read it. Each case runs on a mesh with automatic axes (XLA's
sharding propagation) and on one with explicit axes (shardings in the types).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj

# The 8-device subprocess takes about two minutes on 2 cores.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MESHES = ["auto", "explicit"]
TABLE_SIZE = 64 * 4  # the table of sharded_checks.py
SPARSE_CASES = [
    f"{mode}/{config}"
    for mode in ("keras", "lazy", "dense")
    for config in ("plain", "momentum_centered")
]
DENSE_CASES = ["plain", "momentum_centered", "nesterov_clipped", "torch"]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "sharded_checks.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_runs_on_eight_devices(report: dict[str, Any]) -> None:
    assert report["device_count"] == 8


@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("case", DENSE_CASES)
def test_dense_state_has_the_params_shardings(report: dict[str, Any], mesh: str, case: str) -> None:
    # Lists of state leaves whose sharding differs from their param's: all must be empty.
    result = report["meshes"][mesh]["dense"][case]
    assert result["init_jit"] == []
    assert result["init_eager"] == []
    assert result["init_abstract"] == []  # tx.init(ShapeDtypeStruct(..., sharding=...))
    assert result["after_steps"] == []
    assert result["params_kept"]


@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("case", DENSE_CASES)
def test_sharded_dense_steps_equal_one_device(report: dict[str, Any], mesh: str, case: str) -> None:
    # Params and every state array after 6 steps; only float32 reduction order may differ.
    assert report["meshes"][mesh]["dense"][case]["max_diff"] <= 1e-6


@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("case", SPARSE_CASES)
def test_row_sharded_table_state_stays_row_sharded(
    report: dict[str, Any], mesh: str, case: str
) -> None:
    # ms, mg, mom follow the table; row_steps (dense bookkeeping) is split along the rows.
    result = report["meshes"][mesh]["sparse"][case]
    assert result["init_jit"] == []
    assert result["after_steps"] == []
    assert result["after_materialize"] == []


@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("case", SPARSE_CASES)
def test_row_sharded_sparse_steps_equal_one_device(
    report: dict[str, Any], mesh: str, case: str
) -> None:
    # 6 steps with duplicate and out-of-range indices, then materialize: params and state.
    assert report["meshes"][mesh]["sparse"][case]["max_diff"] <= 1e-6


@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("case", SPARSE_CASES)
def test_sparse_step_moves_only_gathered_rows(report: dict[str, Any], mesh: str, case: str) -> None:
    found = report["meshes"][mesh]["sparse"][case]["collectives"]
    assert not [c for c in found if c["op"] in ("all-gather", "all-to-all")], found
    # What is left are all-reduces of the 12 gathered rows (masked local gathers).
    assert all(c["size"] <= 12 * 4 < TABLE_SIZE for c in found), found


@pytest.mark.parametrize("mesh", MESHES)
def test_collective_parser_sees_a_table_gather(report: dict[str, Any], mesh: str) -> None:
    # The control program replicates the table: the parser must report its all-gather.
    control = report["meshes"][mesh]["control"]
    assert {"op": "all-gather", "dtype": "f32", "shape": [64, 4], "size": TABLE_SIZE} in control


@pytest.mark.parametrize("mesh", MESHES)
def test_global_norm_clipping_on_sharded_trees(report: dict[str, Any], mesh: str) -> None:
    clip = report["meshes"][mesh]["clip"]
    assert clip["norm_before"] > 1.0
    np.testing.assert_allclose(clip["norm_sharded"], 1.0, rtol=1e-6)
    assert clip["max_diff"] <= 1e-7


def test_data_parallel_example_matches_one_device_on_both_kinds_of_mesh(
    report: dict[str, Any],
) -> None:
    example = report["example"]
    # 40 steps; the cross-device sums may add in another order than on one device.
    np.testing.assert_allclose(example["losses"], example["single_device_losses"], rtol=1e-4)
    np.testing.assert_allclose(example["explicit_mesh_losses"], example["losses"], rtol=1e-4)
    assert np.mean(example["losses"][-5:]) < np.mean(example["losses"][:5]) / 2  # it learns


def test_data_parallel_step_never_moves_the_table(report: dict[str, Any]) -> None:
    # Batch and table rows split over 8 devices: the step moves looked-up rows and gradients
    # (at most batch * lookups rows), never the table or its state.
    found = report["example"]["collectives"]
    assert found, "a data-parallel step must reduce something across devices"
    assert all(c["size"] < report["example"]["table_size"] for c in found), found


def test_abstract_init_goes_through_the_sharding_helpers() -> None:
    # On one device, under eval_shape: the buffers tied to their params keep shapes and dtypes.
    mesh = jax.make_mesh((1,), ("x",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("x", None))
    abstract = {"t": jax.ShapeDtypeStruct((4, 2), jnp.float32, sharding=sharding)}
    tx = rj.rmsprop(0.1, momentum=0.5, sparse_mode="dense", sparse_tables={"t": True})
    state = jax.eval_shape(tx.init, abstract)
    assert optax.tree.get(state, "ms")["t"].shape == (4, 2)
    assert optax.tree.get(state, "row_steps")["t"].shape == (4,)
    assert optax.tree.get(state, "row_steps")["t"].dtype == jnp.int32


def test_keras_front_end_slots_follow_sharded_variables(report: dict[str, Any]) -> None:
    keras = report["meshes"]["auto"]["keras"]
    assert keras["slot_mismatches"] == []
    assert keras["table_spec"] == str(jax.sharding.PartitionSpec("x", None))
    assert keras["row_steps_spec"] == str(jax.sharding.PartitionSpec("x"))  # split like rows
    assert keras["max_diff"] <= 1e-6
