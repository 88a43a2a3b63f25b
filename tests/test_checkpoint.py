"""Checkpoints: the whole optimizer state (sparse row bookkeeping and the skipped-step counter
included) round-trips through Orbax and through ``numpy.savez``, and training resumed from it
continues bit for bit; the Keras front end resumes through get_weights / set_weights."""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import rmsprop_jax as rj
from rmsprop_jax import keras as rk
from tests.helpers import assert_bitwise_equal

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

SHAPE = (12, 3)
TABLES = {"table": True, "dense": False, "half": False}
FIRST, THEN = 4, 4  # steps before the checkpoint, steps after it

CONFIGS = {
    "dense_centered_momentum_schedule": dict(
        learning_rate=optax.exponential_decay(0.1, 2, 0.7), momentum=0.9, centered=True
    ),
    "keras_sparse_row_steps_centered": dict(learning_rate=0.05, centered=True),
    "dense_mode_momentum_row_steps": dict(learning_rate=0.05, momentum=0.9, sparse_mode="dense"),
    "lazy_nesterov_torch": dict(
        learning_rate=0.05, momentum=0.5, nesterov=True, sparse_mode="lazy", convention="torch"
    ),
}


def params0() -> dict[str, jax.Array]:
    rng = np.random.default_rng(0)
    return {
        "table": jnp.asarray(rng.normal(size=SHAPE), jnp.float32),
        "dense": jnp.asarray(rng.normal(size=4), jnp.float32),
        "half": jnp.asarray(rng.normal(size=3), jnp.bfloat16),  # bfloat16 params and state
    }


def grads_at(step: int, sparse: bool) -> dict[str, Any]:
    rng = np.random.default_rng(50 + step)
    indices = rng.integers(0, SHAPE[0] - 4, size=5).astype(np.int32)  # rows 8..11 never touched
    values = rng.normal(size=(5, SHAPE[1])).astype(np.float32)
    table: Any = rj.SparseRows(indices, values, SHAPE)
    if not sparse:
        table = table.todense()
    return {
        "table": table,
        "dense": rng.normal(size=4).astype(np.float32),
        "half": jnp.asarray(rng.normal(size=3), jnp.bfloat16),
    }


def optimizer(name: str) -> optax.GradientTransformation:
    kwargs = dict(CONFIGS[name])
    if name != "dense_centered_momentum_schedule":
        kwargs["sparse_tables"] = TABLES
    return rj.skip_nonfinite(rj.rmsprop(**kwargs))


def train(update: Any, params: Any, state: Any, steps: range, sparse: bool) -> tuple[Any, Any]:
    for step in steps:
        updates, state = update(grads_at(step, sparse), state, params)
        params = rj.apply_updates(params, updates)
    return params, state


# --- numpy.savez: flat leaves in tree order, restored into the structure of tx.init ----------


def save_npz(path: pathlib.Path, tree: Any) -> None:
    """Saves the leaves of ``tree`` in flattening order. ``np.savez`` writes bfloat16 (an
    ml_dtypes type NumPy does not know) as raw 2-byte voids, so every leaf is stored as its raw
    bytes, with its dtype name beside it to check on the way back."""
    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
    raw = {f"leaf_{i}": leaf.view(f"u{leaf.dtype.itemsize}") for i, leaf in enumerate(leaves)}
    np.savez(path, dtypes=np.array([str(leaf.dtype) for leaf in leaves]), **raw)


def restore_npz(path: pathlib.Path, like: Any) -> Any:
    """The tree saved by `save_npz`, in the structure (and dtypes) of ``like``."""
    leaves, treedef = jax.tree_util.tree_flatten(like)
    with np.load(path) as data:
        assert list(data["dtypes"]) == [str(np.asarray(leaf).dtype) for leaf in leaves]
        restored = [
            jnp.asarray(data[f"leaf_{i}"].view(np.asarray(leaf).dtype))
            for i, leaf in enumerate(leaves)
        ]
    return jax.tree_util.tree_unflatten(treedef, restored)


def orbax_round_trip(path: pathlib.Path, tree: Any, like: Any) -> Any:
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path / "checkpoint", tree)
        checkpointer.wait_until_finished()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        return checkpointer.restore(path / "checkpoint", abstract)


def npz_round_trip(path: pathlib.Path, tree: Any, like: Any) -> Any:
    save_npz(path / "checkpoint.npz", tree)
    return restore_npz(path / "checkpoint.npz", like)


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("backend", [orbax_round_trip, npz_round_trip], ids=["orbax", "npz"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_resumed_training_continues_bit_for_bit(
    name: str, backend: Any, tmp_path: pathlib.Path
) -> None:
    sparse = name != "dense_centered_momentum_schedule"
    tx = optimizer(name)
    update = jax.jit(tx.update)
    start = params0()
    want = train(update, start, tx.init(start), range(FIRST + THEN), sparse)

    params, state = train(update, start, tx.init(start), range(FIRST), sparse)
    # Restore into a fresh process's view of the structure: tx.init of the initial params.
    template = {"params": start, "state": optimizer(name).init(start)}
    restored = backend(tmp_path, {"params": params, "state": state}, template)
    assert_bitwise_equal(restored, {"params": params, "state": state})
    got = train(update, restored["params"], restored["state"], range(FIRST, FIRST + THEN), sparse)
    assert_bitwise_equal(got, want)
    if sparse and "lazy" not in name:  # the per-row bookkeeping really is in the checkpoint
        row_steps = optax.tree.get(restored["state"], "row_steps")["table"]
        assert row_steps.dtype == jnp.int32 and int(row_steps[SHAPE[0] - 1]) == 0
    assert optax.tree.get(restored["state"], "ms")["half"].dtype == jnp.bfloat16


def test_npz_restore_refuses_a_file_of_another_structure(tmp_path: pathlib.Path) -> None:
    tx = rj.rmsprop(0.1, momentum=0.9)
    params = {"w": jnp.zeros(3)}
    save_npz(tmp_path / "s.npz", tx.init(params))
    other = rj.rmsprop(0.1).init({"w": jnp.zeros(3, jnp.bfloat16)})
    with pytest.raises(AssertionError):
        restore_npz(tmp_path / "s.npz", other)


# --- the Keras front end: get_weights / set_weights -----------------------------------------


def _pairs(step: int, variables: list[rk.Variable]) -> Any:
    g = grads_at(step, sparse=True)
    return zip((g["table"], g["dense"], g["half"]), variables, strict=True)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_keras_resume_through_weights_continues_bit_for_bit(
    momentum: float, tmp_path: pathlib.Path
) -> None:
    opt = rk.RMSprop(0.05, momentum=momentum, centered=True, skip_nonfinite=True)
    variables = [rk.Variable(value, name) for name, value in params0().items()]
    for step in range(FIRST):
        opt.apply_gradients(_pairs(step, variables))
    # The checkpoint: the model's variables, the optimizer's weights and its config. Reading the
    # weights applies the decay that sparse steps deferred (momentum 0), in this run too.
    save_npz(tmp_path / "weights.npz", [v.value for v in variables] + opt.get_weights())
    config = opt.get_config()

    for step in range(FIRST, FIRST + THEN):  # the uninterrupted run
        opt.apply_gradients(_pairs(step, variables))

    saved = restore_npz(tmp_path / "weights.npz", [v.value for v in variables] + opt.get_weights())
    resumed_vars = [
        rk.Variable(value, var.name) for value, var in zip(saved, variables, strict=False)
    ]
    resumed = rk.RMSprop.from_config(config)
    resumed.build(resumed_vars)
    resumed.set_weights([np.asarray(w) for w in saved[len(variables) :]])
    assert int(resumed.iterations.numpy()) == FIRST
    for step in range(FIRST, FIRST + THEN):
        resumed.apply_gradients(_pairs(step, resumed_vars))
    assert_bitwise_equal([v.numpy() for v in resumed_vars], [v.numpy() for v in variables])
    assert_bitwise_equal(resumed.get_weights(), opt.get_weights())
