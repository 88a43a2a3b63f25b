"""The scripts in docs/examples run with a small step count and do what the docs say they do."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).parents[1] / "docs" / "examples"


def load(name: str) -> ModuleType:
    """Imports ``docs/examples/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_example_is_tested_and_takes_steps() -> None:
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    tested = {"flax_linen", "flax_nnx", "recommender", "resume_tf_keras"}
    # documented and tested with the multi-device guide (test_sharding, test_multiprocess)
    others = {"data_parallel", "multi_process"}
    assert set(scripts) - others == tested
    for name in tested:
        assert "--steps" in (EXAMPLES / f"{name}.py").read_text()


@pytest.mark.slow  # a whole training run; CI runs it
def test_flax_nnx_optimizer_trains_the_mlp(capsys: pytest.CaptureFixture[str]) -> None:
    losses = load("flax_nnx").main(steps=100)
    assert len(losses) == 100
    assert losses[-1] < 0.1 * losses[0]
    assert "flax.nnx MLP" in capsys.readouterr().out


@pytest.mark.slow  # a whole training run; CI runs it
def test_flax_linen_train_state_trains_the_classifier() -> None:
    losses = load("flax_linen").main(steps=60)
    assert losses[-1] < 0.1 * losses[0]


def _assert_only_touched_rows_moved(out: dict) -> None:
    table0, table = np.asarray(out["table0"]), np.asarray(out["table"])
    touched = np.zeros(table.shape[0], bool)
    touched[np.asarray(out["touched"])] = True
    assert 0 < touched.sum() < table.shape[0]
    np.testing.assert_array_equal(table[~touched], table0[~touched])
    assert np.all(np.any(table[touched] != table0[touched], axis=1))


@pytest.mark.slow  # a whole Flax training example; the recommender keeps a sparse one fast
def test_flax_nnx_optimizer_trains_a_sparse_embedding() -> None:
    import jax

    import rmsprop_jax as rj

    example = load("flax_nnx")
    out = example.sparse_main(steps=60)
    losses = out["losses"]
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:5])
    _assert_only_touched_rows_moved(out)
    # the optimizer's state kept one int32 of bookkeeping per table row, and materialize
    # brings the deferred decay of ms up to date without moving the params
    opt_state = out["optimizer"].opt_state
    (row_steps,) = [s.row_steps["embed"]["embedding"] for s in opt_state if hasattr(s, "row_steps")]
    assert row_steps[...].shape == (out["table"].shape[0],)
    from flax import nnx

    params = nnx.as_pure(nnx.state(out["model"], nnx.Param))
    shown_params, _ = rj.materialize(params, nnx.as_pure(opt_state))
    jax.tree.map(np.testing.assert_array_equal, shown_params, params)


@pytest.mark.slow  # a whole Flax training example
def test_flax_linen_train_state_trains_a_sparse_embedding() -> None:
    out = load("flax_linen").sparse_main(steps=60)
    losses = out["losses"]
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:5])
    _assert_only_touched_rows_moved(out)  # lazy mode: untouched rows exactly as initialised


def test_recommender_learns_and_leaves_untouched_rows_alone() -> None:
    out = load("recommender").main(steps=100, items=20_000, dim=8)
    losses = out["losses"]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    table0, table = out["params0"]["items"], np.asarray(out["params"]["items"])
    touched = np.zeros(table.shape[0], bool)
    touched[out["touched"]] = True
    assert 0 < touched.sum() < table.shape[0]
    # lazy mode: rows no batch looked up are bit-for-bit as initialised; touched rows moved
    np.testing.assert_array_equal(table[~touched], table0[~touched])
    assert np.all(np.any(table[touched] != table0[touched], axis=1))


def test_resumed_tf_keras_run_gives_tf_keras_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("resume_tf_keras")
    out = example.main(steps=example.STEPS_MORE)
    assert len(out["variables"]) == len(out["tf_keras"]) == 10
    for ours, theirs in zip(out["variables"], out["tf_keras"], strict=True):
        for name, value in theirs["variables"].items():
            np.testing.assert_allclose(ours[name], np.float32(value), rtol=1e-5, atol=1e-6)
    # the loss of each resumed step is the one tf.keras computed on the same batch
    want = [step["loss"] for step in out["tf_keras"]]
    np.testing.assert_allclose(out["losses"], want, rtol=1e-5)
    assert out["losses"][-1] < 0.7 * out["losses"][0]
    assert "largest difference from tf.keras" in capsys.readouterr().out


def test_resume_reads_the_recorded_tf_keras_checkpoint_of_the_keras_tests() -> None:
    """The example's `resume` on the independent recording in tests/reference (fed gradients)."""
    from rmsprop_jax import keras as rk
    from tests.reference import recorded

    data = recorded.load("keras_frontend")["resume"]
    config = {
        k: np.float32(v) if data["config_types"].get(k) == "float32" else v
        for k, v in data["config"].items()
    }
    opt, variables = load("resume_tf_keras").resume(
        {
            "optimizer_config": config,
            "optimizer_weights": data["weights_after_3"],
            "variables": data["params_after_3"],
        }
    )
    assert isinstance(opt, rk.RMSprop) and int(opt.iterations.numpy()) == 3
    for step, want in enumerate(data["params_after"]):
        grads = recorded.as_arrays(data["grads"][3 + step])
        opt.apply_gradients([(grads[name], var) for name, var in variables.items()])
        for name, value in recorded.as_arrays(want).items():
            np.testing.assert_allclose(variables[name].numpy(), value, rtol=1e-5, atol=1e-6)
