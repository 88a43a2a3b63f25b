"""`SparseRows` at the seams with Optax and Flax: the default optimizer, optax's appliers and
wrappers, gradient arithmetic, `sparse_tables` under `optax.multi_transform`, `materialize` next to
foreign stages, and `value_and_sparse_grad`'s forward/gradient agreement, `argnums` and `has_aux`.

References: the recorded tf.keras IndexedSlices trajectories (tests/reference/keras_sparse.json),
`rj.apply_updates`, densified gradients and JAX's own dense autodiff.
"""

from __future__ import annotations

import re
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
from tests.helpers import compile_sparse_step, recorded_sparse_grads
from tests.reference import recorded

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

SHAPE = (12, 3)
EVERY_ROW = r"without per-row bookkeeping"


def _slots(state: Any) -> dict[str, Any]:
    return {
        name: getattr(stage, name)
        for stage in state
        for name in ("ms", "mg", "mom")
        if hasattr(stage, name)
    }


# --- 1. the default optimizer takes SparseRows and gives tf.keras's numbers ---------------------


@pytest.mark.slow  # a Keras sparse replay: one compile per gradient shape per step
@pytest.mark.filterwarnings(f"ignore:.*{EVERY_ROW}")
@pytest.mark.parametrize("case", recorded.cases("keras_sparse"), ids=lambda c: c["name"])
def test_default_optimizer_without_sparse_tables_matches_recorded_tf_keras(
    case: dict[str, Any],
) -> None:
    tx = rj.rmsprop(case["learning_rate"], **case["config"])  # no sparse_tables
    params = recorded.as_arrays(case["params0"])
    state = tx.init(params)
    update = jax.jit(tx.update)
    for step in range(len(case["grads"])):
        updates, state = update(recorded_sparse_grads(case, step, SHAPE), state, params)
        params = rj.apply_updates(params, updates)
        for name, want in recorded.as_arrays(case["params"][step]).items():
            np.testing.assert_allclose(params[name], want, rtol=1e-5, atol=1e-6)
        # Nothing is deferred: the state itself is tf.keras's, every row, every step.
        for slot, per_var in case["slots"][step].items():
            for name, want in recorded.as_arrays(per_var).items():
                np.testing.assert_allclose(_slots(state)[slot][name], want, rtol=1e-5, atol=1e-6)


def test_a_table_without_bookkeeping_warns_naming_it_and_the_o_k_fix() -> None:
    tx = rj.rmsprop(0.1)
    params = {"emb": jnp.ones(SHAPE)}
    grads = {"emb": rj.SparseRows(jnp.array([0, 0]), jnp.ones((2, 3)), SHAPE)}
    with pytest.warns(UserWarning, match=r"\['emb'\] is for a table without per-row bookkeeping"):
        updates, state = tx.update(grads, tx.init(params), params)
    assert isinstance(updates["emb"], rj.SparseRows)
    # tf.keras's sparse kernel: ms = rho * ms on every row, then (1 - rho) * g**2 on the touched.
    np.testing.assert_allclose(
        optax.tree.get(state, "ms")["emb"][:, 0], [0.4] + [0.0] * 11, rtol=1e-6
    )
    with pytest.warns(UserWarning, match=r"mark the table in `sparse_tables`"):
        tx.update(grads, tx.init(params), params)


@pytest.mark.filterwarnings(f"ignore:.*{EVERY_ROW}")
@pytest.mark.parametrize("centered", [False, True])
def test_a_table_without_bookkeeping_costs_one_in_place_pass_not_a_copy(centered: bool) -> None:
    rows, dim = 100_000, 16
    compiled = compile_sparse_step(rj.rmsprop(1e-3, centered=centered), rows, dim, 64)
    assert compiled.memory_analysis().temp_size_in_bytes < rows * dim * 4 // 10
    text = compiled.as_text()
    entry = text[text.index("ENTRY") :].splitlines()[1:]
    table_sized = [line for line in entry if re.search(rf"= f32\[{rows},{dim}\]", line)]
    assert table_sized and not [line for line in table_sized if " copy(" in line], table_sized


@pytest.mark.filterwarnings(f"ignore:.*{EVERY_ROW}")
@pytest.mark.parametrize("setting", [{}, {"momentum": 0.9}, {"momentum": 0.9, "centered": True}])
def test_dense_mode_without_sparse_tables_is_the_dense_algorithm(setting: dict[str, Any]) -> None:
    sparse_tx = rj.rmsprop(0.05, sparse_mode="dense", **setting)
    dense_tx = rj.rmsprop(0.05, **setting)
    rng = np.random.default_rng(0)
    params = {"table": jnp.asarray(rng.normal(size=SHAPE), jnp.float32)}
    sparse_params, dense_params = params, params
    sparse_state, dense_state = sparse_tx.init(params), dense_tx.init(params)
    for _ in range(6):
        indices = rng.integers(0, 10, size=4).astype(np.int32)
        grad = rj.SparseRows(indices, rng.normal(size=(4, 3)).astype(np.float32), SHAPE)
        updates, sparse_state = sparse_tx.update({"table": grad}, sparse_state, sparse_params)
        sparse_params = rj.apply_updates(sparse_params, updates)
        updates, dense_state = dense_tx.update({"table": grad.todense()}, dense_state, dense_params)
        dense_params = rj.apply_updates(dense_params, updates)
    np.testing.assert_allclose(sparse_params["table"], dense_params["table"], rtol=2e-6, atol=1e-7)


# --- 2. optax.apply_updates and the Flax appliers ---------------------------------------------


def _one_sparse_step() -> tuple[Any, Any, Any]:
    tx = rj.rmsprop(0.1, momentum=0.9, sparse_mode="lazy")
    params = {"table": jnp.arange(36.0).reshape(SHAPE), "bias": jnp.ones(3)}
    grads = {
        "table": rj.SparseRows(jnp.array([1, 5, 5, 7]), jnp.ones((4, 3)), SHAPE),
        "bias": jnp.full(3, 0.5),
    }
    updates, _ = tx.update(grads, tx.init(params), params)
    return tx, params, grads, updates  # type: ignore[return-value]


def test_optax_apply_updates_equals_rj_apply_updates() -> None:
    _, params, _, updates = _one_sparse_step()
    assert isinstance(updates["table"], rj.SparseRows)
    want = rj.apply_updates(params, updates)
    chex.assert_trees_all_equal(optax.apply_updates(params, updates), want)
    chex.assert_trees_all_equal(jax.jit(optax.apply_updates)(params, updates), want)
    # only the touched rows moved
    moved = np.flatnonzero(np.any(np.asarray(want["table"] != params["table"]), axis=1))
    np.testing.assert_array_equal(moved, [1, 5, 7])
    np.testing.assert_array_equal(np.asarray(params["table"]) + updates["table"], want["table"])


def test_flax_linen_train_state_apply_gradients_takes_sparse_rows() -> None:
    train_state = pytest.importorskip("flax.training.train_state")
    tx, params, grads, updates = _one_sparse_step()
    state = train_state.TrainState.create(apply_fn=None, params=params, tx=tx)
    state = state.apply_gradients(grads=grads)
    chex.assert_trees_all_equal(state.params, rj.apply_updates(params, updates))


def test_nnx_optimizer_update_takes_sparse_rows() -> None:
    nnx = pytest.importorskip("flax.nnx")

    class Model(nnx.Module):
        def __init__(self) -> None:
            self.table = nnx.Param(jnp.arange(36.0).reshape(SHAPE))
            self.bias = nnx.Param(jnp.ones(3))

    tx, params, grads, updates = _one_sparse_step()
    model = Model()
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    nnx_grads = nnx.state(model, nnx.Param)
    nnx_grads["table"] = nnx_grads["table"].replace(grads["table"])
    nnx_grads["bias"] = nnx_grads["bias"].replace(grads["bias"])
    optimizer.update(model, nnx_grads)
    want = rj.apply_updates(params, updates)
    np.testing.assert_array_equal(model.table[...], want["table"])
    np.testing.assert_array_equal(model.bias[...], want["bias"])


# --- 3. arithmetic on gradients: right tools, loud wrong ones ---------------------------------


def test_sum_of_two_sparse_rows_is_their_sum() -> None:
    a = rj.SparseRows(jnp.array([1, 5, 7]), jnp.ones((3, 3)), SHAPE)
    b = rj.SparseRows(jnp.array([5, 0]), jnp.full((2, 3), 2.0), SHAPE)
    total = a + b
    assert isinstance(total, rj.SparseRows) and total.indices.shape == (5,)
    np.testing.assert_array_equal(total.todense(), a.todense() + b.todense())
    np.testing.assert_array_equal(jax.jit(lambda x, y: x + y)(a, b).todense(), total.todense())
    np.testing.assert_array_equal((a - b).todense(), a.todense() - b.todense())
    np.testing.assert_array_equal((0.5 * a).todense(), 0.5 * a.todense())
    np.testing.assert_array_equal((a / 4).todense(), a.todense() / 4)
    # a tree of gradients adds with SparseRows kept whole
    trees = [{"t": a, "b": jnp.ones(2)}, {"t": b, "b": jnp.ones(2)}]
    summed = jax.tree.map(
        lambda x, y: x + y, *trees, is_leaf=lambda x: isinstance(x, rj.SparseRows)
    )
    np.testing.assert_array_equal(summed["t"].todense(), a.todense() + b.todense())
    with pytest.raises(ValueError, match=r"same table"):
        _ = a + rj.SparseRows(jnp.array([0]), jnp.ones((1, 3)), (4, 3))


def test_float_indices_are_a_type_error_wherever_they_arrive() -> None:
    with pytest.raises(TypeError, match=r"`indices` must be a vector of int32 or int64"):
        rj.SparseRows(jnp.array([1.0, 2.0]), jnp.ones((2, 3)), SHAPE)
    g = {"t": rj.SparseRows(jnp.array([1, 5]), jnp.ones((2, 3)), SHAPE)}
    # optax.scale maps over the leaves: the indices would turn into floats (under JAX's default
    # dtype promotion; the tests' strict promotion refuses int * float earlier)
    with jax.numpy_dtype_promotion("standard"):
        # (issue 19: the row numbers refuse arithmetic, so the map itself fails, naming them)
        with pytest.raises(TypeError, match=r"SparseRows row numbers.*rj\.SparseRows"):
            optax.scale(0.5).update(g, optax.EmptyState())
        with pytest.raises(TypeError, match=r"SparseRows row numbers.*rj\.SparseRows"):
            jax.tree.map(lambda x: x / 2, g)
    with pytest.raises(TypeError, match=r"`indices` must be integer row numbers"):
        rj.value_and_sparse_grad(jnp.sum, jnp.ones(SHAPE), jnp.array([0.0, 1.0]))


def test_foreign_optax_stages_that_map_over_leaves_fail_loudly() -> None:
    params = {"t": jnp.zeros(SHAPE)}
    g = {"t": rj.SparseRows(jnp.array([1, 5]), jnp.ones((2, 3)), SHAPE)}
    with jax.numpy_dtype_promotion("standard"):
        # MultiSteps' running mean meets a SparseRows where its accumulator holds an array
        tx = optax.MultiSteps(rj.rmsprop(0.1), 2)
        with pytest.raises(ValueError, match=r"SparseRows"):
            tx.update(g, tx.init(params), params)
        # optax's clip squares the row numbers too, which their key dtype refuses
        tx = optax.clip_by_global_norm(1.0)
        with pytest.raises(NotImplementedError, match=r"abstract method real"):
            tx.update(g, tx.init(params), params)
    # this library's stage is the one that reads the values only
    clipped, _ = rj.clip_by_global_norm(1.0).update(g, optax.EmptyState())
    np.testing.assert_allclose(clipped["t"].values, np.full((2, 3), 1 / 6**0.5), rtol=1e-6)
    np.testing.assert_array_equal(clipped["t"].indices, [1, 5])


@pytest.mark.slow  # a whole training run; CI runs it
@pytest.mark.filterwarnings(f"ignore:.*{EVERY_ROW}")
def test_sparse_gradient_accumulation_with_plus_equals_the_dense_mean() -> None:
    rng = np.random.default_rng(1)
    micro = [
        rj.SparseRows(
            rng.integers(0, 12, size=5).astype(np.int32),
            rng.normal(size=(5, 3)).astype(np.float32),
            SHAPE,
        )
        for _ in range(4)
    ]
    total = micro[0]
    for g in micro[1:]:
        total = total + g
    mean = total / len(micro)
    dense_mean = sum(g.todense() for g in micro) / len(micro)
    np.testing.assert_allclose(mean.todense(), dense_mean, rtol=1e-6, atol=1e-7)
    tx = rj.rmsprop(0.1)
    params = {"t": jnp.zeros(SHAPE)}
    sparse_updates, _ = tx.update({"t": mean}, tx.init(params), params)
    dense_updates, _ = tx.update({"t": dense_mean}, tx.init(params), params)
    np.testing.assert_allclose(
        rj.apply_updates(params, sparse_updates)["t"], dense_updates["t"], rtol=1e-5, atol=1e-7
    )


# --- 4. sparse_tables under optax.multi_transform / optax.partition ---------------------------


ADAM_NEEDS_STANDARD_PROMOTION = pytest.mark.usefixtures("standard_promotion")


@pytest.fixture
def standard_promotion() -> Any:
    """optax.adam's bias correction (``decay ** count``) needs JAX's default promotion."""
    with jax.numpy_dtype_promotion("standard"):
        yield


@ADAM_NEEDS_STANDARD_PROMOTION
@pytest.mark.parametrize("combine", ["multi_transform", "partition"])
@pytest.mark.parametrize(
    "tables",
    [
        {"table": True, "head": False},
        lambda params: jax.tree.map(lambda p: p.ndim == 2, params),
    ],
    ids=["dict", "callable"],
)
def test_sparse_tables_work_under_multi_transform(combine: str, tables: Any) -> None:
    combiner = getattr(optax, combine)
    inner = rj.rmsprop(0.1, sparse_tables=tables)  # keras mode: decays every row, deferred
    tx = combiner({"rj": inner, "adam": optax.adam(0.1)}, {"table": "rj", "head": "adam"})
    alone = rj.rmsprop(0.1, sparse_tables={"table": True})
    params = {"table": jnp.ones(SHAPE), "head": jnp.ones(2)}
    alone_params = {"table": params["table"]}
    state, alone_state = tx.init(params), alone.init(alone_params)
    for i in range(4):
        grad = rj.SparseRows(jnp.array([i, 11]), jnp.ones((2, 3)), SHAPE)
        updates, state = tx.update({"table": grad, "head": jnp.ones(2)}, state, params)
        params = rj.apply_updates(params, updates)
        alone_updates, alone_state = alone.update({"table": grad}, alone_state, alone_params)
        alone_params = rj.apply_updates(alone_params, alone_updates)
    inner = state.inner_states["rj"].inner_state
    assert optax.tree.get(inner, "row_steps")["table"].shape == (12,)
    assert optax.tree.get(inner, "row_steps")["table"].dtype == jnp.int32
    chex.assert_trees_all_equal(params["table"], alone_params["table"])
    _, shown = rj.materialize(params, state)
    _, alone_shown = rj.materialize(alone_params, alone_state)
    chex.assert_trees_all_equal(
        optax.tree.get(shown.inner_states["rj"], "ms")["table"],
        optax.tree.get(alone_shown, "ms")["table"],
    )


# --- 5. materialize never steps a stage it does not own ---------------------------------------


@ADAM_NEEDS_STANDARD_PROMOTION
def test_materialize_leaves_foreign_stages_and_their_params_exactly_as_they_are() -> None:
    tx = optax.multi_transform(
        {
            "rj": rj.rmsprop(0.1, sparse_tables={"table": True, "head": False}),
            "adam": optax.adam(0.1),
        },
        {"table": "rj", "head": "adam"},
    )
    params = {"table": jnp.ones(SHAPE), "head": jnp.ones(2)}
    state = tx.init(params)
    grads = {"table": rj.SparseRows(jnp.array([3]), jnp.ones((1, 3)), SHAPE), "head": jnp.ones(2)}
    updates, state = tx.update(grads, state, params)
    params = rj.apply_updates(params, updates)
    np.testing.assert_allclose(params["head"], [0.9, 0.9], rtol=1e-5)
    new_params, new_state = rj.materialize(params, state)
    chex.assert_trees_all_equal(new_params["head"], params["head"])  # no extra Adam step
    chex.assert_trees_all_equal(new_state.inner_states["adam"], state.inner_states["adam"])
    assert int(new_state.inner_states["adam"].inner_state[0].count) == 1
    # this library's stage was brought up to date: untouched rows decayed, touched row kept
    ms = optax.tree.get(new_state.inner_states["rj"], "ms")["table"]
    np.testing.assert_allclose(ms[3], [0.1] * 3, rtol=1e-6)
    chex.assert_trees_all_equal(new_params["table"], params["table"])


def test_materialize_keeps_the_counters_of_foreign_wrappers() -> None:
    tx = optax.inject_hyperparams(rj.rmsprop)(learning_rate=0.1, sparse_tables={"t": True})
    params = {"t": jnp.ones(SHAPE)}
    state = tx.init(params)
    grads = {"t": rj.SparseRows(jnp.array([3]), jnp.ones((1, 3)), SHAPE)}
    _, state = tx.update(grads, state, params)
    _, new_state = rj.materialize(params, state)
    assert int(new_state.count) == int(state.count) == 1
    chex.assert_trees_all_equal(new_state.hyperparams, state.hyperparams)


# --- 6. value_and_sparse_grad: one rule for bad rows, argnums, has_aux ------------------------


def _dense_reference(fn: Any, table: jax.Array, indices: jax.Array, *args: Any) -> Any:
    """JAX's dense autodiff with the documented rule spelt out: bad rows read a zero row."""
    padded = jnp.concatenate([table, jnp.zeros((1, *table.shape[1:]), table.dtype)])
    safe = jnp.where((indices >= 0) & (indices < table.shape[0]), indices, table.shape[0])
    value, (grad, *rest) = jax.value_and_grad(
        lambda t, *a: fn(t[safe], *a), argnums=tuple(range(1 + len(args)))
    )(padded, *args)
    return value, grad[:-1], rest


def test_value_and_sparse_grad_treats_negative_and_large_rows_alike_forward_and_backward() -> None:
    table = jnp.arange(24.0).reshape(8, 3)
    indices = jnp.array([-1, 2, 8, 2])
    fn = lambda rows, w: jnp.sum((rows @ w) ** 2)  # noqa: E731
    w = jnp.array([1.0, -1.0, 0.5])
    value, (table_grad, w_grad) = rj.value_and_sparse_grad(fn, table, indices, w)
    want_value, want_grad, (want_w,) = _dense_reference(fn, table, indices, w)
    np.testing.assert_allclose(value, want_value, rtol=1e-6)
    np.testing.assert_allclose(table_grad.todense(), want_grad, rtol=1e-6)
    np.testing.assert_allclose(w_grad, want_w, rtol=1e-6)
    assert float(value) != float(fn(table[indices], w))  # numpy's wrap-around is not the rule


def test_value_and_sparse_grad_argnums_and_has_aux_follow_jax() -> None:
    table = jnp.arange(24.0).reshape(8, 3)
    indices = jnp.array([1, 4])
    labels = jnp.array([0, 2])  # integer: must not be differentiated

    def fn(rows: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
        loss = optax.softmax_cross_entropy_with_integer_labels(rows, labels).mean()
        return loss, rows.argmax(-1)

    (value, aux), grad = rj.value_and_sparse_grad(
        fn, table, indices, labels, argnums=0, has_aux=True
    )
    assert isinstance(grad, rj.SparseRows)
    np.testing.assert_array_equal(aux, [2, 2])
    want = jax.grad(lambda t: fn(t[indices], labels)[0])(table)
    np.testing.assert_allclose(grad.todense(), want, rtol=1e-6)
    np.testing.assert_allclose(value, fn(table[indices], labels)[0], rtol=1e-6)
    weights = jnp.ones(3)
    _, grads = rj.value_and_sparse_grad(
        lambda rows, w, y: fn(rows * w[None], y)[0], table, indices, weights, labels, argnums=(0, 1)
    )
    assert len(grads) == 2 and isinstance(grads[0], rj.SparseRows)
    with pytest.raises(ValueError, match=r"`argnums` entries must name one of fn's 2 arguments"):
        rj.value_and_sparse_grad(fn, table, indices, labels, argnums=2)
