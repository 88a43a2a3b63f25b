"""The sparse path: SparseRows gradients in the three sparse modes, against recorded tf.keras
trajectories ("keras"), the dense algorithm on densified gradients ("dense") and a float64 NumPy
restatement ("lazy"); bad indices; materialize; cost; the embedding helper with Flax."""

from __future__ import annotations

import re
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import checkify

import rmsprop_jax as rj
from tests.helpers import compile_sparse_step, eager_and_some_jit, recorded_sparse_grads, slots
from tests.reference import recorded

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

SHAPE = (12, 3)
TABLES = {"table": True, "dense": False}
RTOL, ATOL = 1e-5, 1e-6


def _close(actual: Any, expected: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=RTOL, atol=ATOL, err_msg=what)


# --- "keras": real tf.keras (OptimizerV2) IndexedSlices trajectories ---------------------------


@pytest.mark.fast_share(4)
@pytest.mark.parametrize(
    ("case", "jit"),
    eager_and_some_jit(recorded.cases("keras_sparse"), jit_every=3, ids=lambda c: c["name"]),
)
def test_keras_mode_matches_recorded_tf_keras(case: dict[str, Any], jit: bool) -> None:
    maybe_jit = jax.jit if jit else (lambda fn: fn)
    tx = rj.rmsprop(case["learning_rate"], **case["config"], sparse_tables=TABLES)
    params = recorded.as_arrays(case["params0"])
    state = tx.init(params)
    update = maybe_jit(tx.update)
    materialize = maybe_jit(lambda params, state: rj.materialize(params, state))
    for step in range(len(case["grads"])):
        updates, state = update(recorded_sparse_grads(case, step, SHAPE), state, params)
        assert isinstance(updates["table"], rj.SparseRows)
        params = rj.apply_updates(params, updates)
        for name, want in recorded.as_arrays(case["params"][step]).items():
            _close(params[name], want, f"step {step} params[{name}]")
        # Deferred decays are applied on demand: compare the materialized state.
        shown_params, shown = materialize(params, state)
        chex.assert_trees_all_equal(shown_params, params)  # keras mode: params never drift
        for slot, per_var in case["slots"][step].items():
            for name, want in recorded.as_arrays(per_var).items():
                _close(slots(shown)[slot][name], want, f"step {step} {slot}[{name}]")


def test_recorded_sparse_cases_exercise_duplicates_skips_and_empty_steps() -> None:
    case = recorded.cases("keras_sparse")[0]
    touched = [np.asarray(g["table"]["indices"], int) for g in case["grads"]]
    assert any(len(idx) == 0 for idx in touched)
    assert any(len(np.unique(idx)) < len(idx) for idx in touched)
    steps_row_11 = [k for k, idx in enumerate(touched) if 11 in idx]
    assert steps_row_11[0] == 0 and steps_row_11[1] - steps_row_11[0] >= 10
    assert all(10 not in idx for idx in touched)


# --- "dense": equal to the dense algorithm on densified gradients ------------------------------

DENSE_SETTINGS = {
    "plain": {},
    "centered": {"centered": True},
    "momentum": {"momentum": 0.9},
    "centered_momentum": {"centered": True, "momentum": 0.8},
    "nesterov": {"momentum": 0.9, "nesterov": True},
}


def _random_steps(seed: int, steps: int = 20) -> list[dict[str, Any]]:
    """Duplicates, empty steps, row 11 touched at step 0 and again at step 15, row 10 never."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(steps):
        count = [4, 0, 6, 3, 5][k % 5]
        indices = rng.integers(0, 10, size=count)
        if count:
            indices[0] = indices[-1]  # a duplicate
        if k in (0, 15):
            indices = np.append(indices, [11, 11])
        values = rng.normal(size=(len(indices), SHAPE[1])).astype(np.float32)
        dense = rng.normal(size=4).astype(np.float32)
        out.append(
            {"table": rj.SparseRows(indices.astype(np.int32), values, SHAPE), "dense": dense}
        )
    return out


@pytest.mark.fast_share(4)
@pytest.mark.parametrize(
    ("convention", "setting", "jit"),
    eager_and_some_jit(
        [
            pytest.param(c, s, id=f"{name}-{c}")
            for name, s in DENSE_SETTINGS.items()
            for c in ["keras", "keras3", "tf1", "torch", "optax"]
        ],
        jit_every=4,
    ),
)
def test_dense_mode_equals_dense_algorithm(
    convention: str, setting: dict[str, Any], jit: bool
) -> None:
    maybe_jit = jax.jit if jit else (lambda fn: fn)
    kwargs = {"learning_rate": 0.05, "convention": convention, **setting}
    sparse_tx = rj.rmsprop(**kwargs, sparse_mode="dense", sparse_tables=TABLES)
    dense_tx = rj.rmsprop(**kwargs)
    rng = np.random.default_rng(3)
    params0 = {
        "table": rng.normal(size=SHAPE).astype(np.float32),
        "dense": rng.normal(size=4).astype(np.float32),
    }
    sparse_params, dense_params = params0, params0
    sparse_state, dense_state = sparse_tx.init(params0), dense_tx.init(params0)
    sparse_update, dense_update = maybe_jit(sparse_tx.update), maybe_jit(dense_tx.update)
    materialize = maybe_jit(lambda params, state: rj.materialize(params, state))
    for step, grads in enumerate(_random_steps(seed=11)):
        densified = {"table": grads["table"].todense(), "dense": grads["dense"]}
        updates, sparse_state = sparse_update(grads, sparse_state, sparse_params)
        sparse_params = rj.apply_updates(sparse_params, updates)
        updates, dense_state = dense_update(densified, dense_state, dense_params)
        dense_params = rj.apply_updates(dense_params, updates)
        if step % 3 and step != 19:
            continue
        shown_params, shown_state = materialize(sparse_params, sparse_state)
        for name in params0:
            _close(shown_params[name], dense_params[name], f"step {step} params[{name}]")
        for slot, tree in slots(dense_state).items():
            for name in params0:
                _close(slots(shown_state)[slot][name], tree[name], f"step {step} {slot}[{name}]")
        if step == 9:  # materializing mid-run and continuing changes nothing
            sparse_params, sparse_state = shown_params, shown_state


@pytest.mark.parametrize("convention", ["keras", "torch"])
def test_dense_mode_is_exact_under_a_schedule_where_lr_sits_in_the_buffer(convention: str) -> None:
    schedule = lambda count: 0.1 * 0.9 ** count.astype(jnp.float32)  # noqa: E731
    kwargs = {"learning_rate": schedule, "momentum": 0.9, "convention": convention}
    if convention == "torch":  # lr multiplies the buffer afterwards: refused, clearly
        with pytest.raises(
            ValueError,
            match=r"sparse_mode='dense' with momentum under "
            r"convention='torch' needs a constant learning rate",
        ):
            rj.rmsprop(**kwargs, sparse_mode="dense", sparse_tables=TABLES)
        return
    sparse_tx = rj.rmsprop(**kwargs, sparse_mode="dense", sparse_tables=TABLES)
    dense_tx = rj.rmsprop(**kwargs)
    params = {"table": np.ones(SHAPE, np.float32), "dense": np.ones(4, np.float32)}
    sp, dp = params, params
    ss, ds = sparse_tx.init(params), dense_tx.init(params)
    for grads in _random_steps(seed=5):
        u, ss = sparse_tx.update(grads, ss, sp)
        sp = rj.apply_updates(sp, u)
        u, ds = dense_tx.update(
            {"table": grads["table"].todense(), "dense": grads["dense"]}, ds, dp
        )
        dp = rj.apply_updates(dp, u)
    sp, ss = rj.materialize(sp, ss)
    _close(sp["table"], dp["table"], "params after 20 scheduled steps")


def test_keras_mode_clipping_sees_the_raw_slices_before_duplicates_are_summed() -> None:
    """As TF: clipvalue bounds each given slice, so a row given twice can move by twice as much.

    (Issue 19 moved this from ``sparse_mode="dense"`` to ``"keras"``: dense mode now clips the
    summed rows, as the densified gradient would be clipped; see tests/test_sparse_defects.py.)
    """
    tx = rj.rmsprop(
        1.0,
        rho=0.0,
        epsilon=0.0,
        momentum=0.5,
        clipvalue=0.5,
        sparse_mode="keras",
        sparse_tables={"table": True},
    )
    params = {"table": jnp.zeros(SHAPE)}
    grads = {"table": rj.SparseRows(jnp.array([4, 4]), jnp.full((2, 3), 3.0), SHAPE)}
    updates, state = tx.update(grads, tx.init(params), params)
    # clipped slices 0.5 + 0.5 = 1 (not clip(6) = 0.5); rho 0: ms = 1; step = lr * 1 / sqrt(1)
    np.testing.assert_allclose(updates["table"].values[0], [-1.0] * 3)
    np.testing.assert_allclose(slots(state)["ms"]["table"][4], [1.0] * 3)


# --- "lazy": only touched rows change; float64 NumPy restatement --------------------------------


def _numpy_lazy(
    convention: str,
    momentum: float,
    centered: bool,
    steps: list[Any],
    table: np.ndarray,
    lr: float,
    rho: float,
    eps: float,
) -> np.ndarray:
    """Dedup, then each touched row takes one dense step of its convention; nothing else moves."""
    w = table.astype(np.float64)
    ms = np.full_like(w, 1.0 if convention == "tf1" else 0.0)
    mg, mom = np.zeros_like(w), np.zeros_like(w)
    inside = convention in ("keras3", "tf1", "optax") or (convention == "keras" and momentum > 0)
    for grads in steps:
        rows: dict[int, np.ndarray] = {}
        for i, v in zip(
            np.asarray(grads["table"].indices), np.asarray(grads["table"].values), strict=True
        ):
            rows[int(i)] = rows.get(int(i), 0.0) + v.astype(np.float64)
        for r, g in rows.items():
            ms[r] = rho * ms[r] + (1 - rho) * g * g
            v = ms[r]
            if centered:
                mg[r] = rho * mg[r] + (1 - rho) * g
                v = ms[r] - mg[r] ** 2
            den = np.sqrt(v + eps) if inside else np.sqrt(v) + eps
            if momentum == 0:
                w[r] -= lr * g / den
            elif convention == "torch":
                mom[r] = momentum * mom[r] + g / den
                w[r] -= lr * mom[r]
            else:
                mom[r] = momentum * mom[r] + lr * g / den
                w[r] -= mom[r]
    return w


@pytest.mark.fast_share(4)
@pytest.mark.parametrize(
    ("convention", "momentum", "centered", "jit"),
    eager_and_some_jit(
        [
            pytest.param(c, m, centered, id=f"{c}-m{m}-{'centered' if centered else 'plain'}")
            for c in ["keras", "keras3", "tf1", "torch"]
            for m in [0.0, 0.9]
            for centered in [False, True]
        ],
        jit_every=3,
    ),
)
def test_lazy_mode_matches_numpy(
    convention: str, momentum: float, centered: bool, jit: bool
) -> None:
    maybe_jit = jax.jit if jit else (lambda fn: fn)
    tx = rj.rmsprop(
        0.05,
        rho=0.9,
        momentum=momentum,
        epsilon=1e-6,
        centered=centered,
        convention=convention,
        sparse_mode="lazy",
    )
    table = np.random.default_rng(2).normal(size=SHAPE).astype(np.float32)
    steps = _random_steps(seed=7)
    params = {"table": table}
    state = tx.init(params)
    update = maybe_jit(tx.update)
    for grads in steps:
        updates, state = update({"table": grads["table"]}, state, params)
        params = rj.apply_updates(params, updates)
    want = _numpy_lazy(convention, momentum, centered, steps, table, 0.05, 0.9, 1e-6)
    _close(params["table"], want, "lazy table")
    np.testing.assert_array_equal(params["table"][10], table[10])  # never touched, never moved


def test_keras_mode_with_momentum_is_lazy() -> None:
    steps = _random_steps(seed=1)
    results = []
    for mode in ("keras", "lazy"):
        tx = rj.rmsprop(0.05, momentum=0.9, sparse_mode=mode)
        params = {"table": jnp.ones(SHAPE)}
        state = tx.init(params)
        for grads in steps:
            updates, state = tx.update({"table": grads["table"]}, state, params)
            params = rj.apply_updates(params, updates)
        results.append(params["table"])
    chex.assert_trees_all_equal(*results)


# --- bad input ------------------------------------------------------------------------------


def test_out_of_range_indices_outside_jit_raise_naming_the_first() -> None:
    with pytest.raises(ValueError, match=r"indices\[1\]=-1 \(2 out of range in all\)"):
        rj.SparseRows(np.array([3, -1, 12]), np.ones((3, 3), np.float32), SHAPE)


@pytest.mark.parametrize("mode", ["keras", "lazy", "dense"])
def test_out_of_range_indices_under_jit_are_dropped_and_never_wrap(mode: str) -> None:
    tx = rj.rmsprop(0.1, sparse_mode=mode, sparse_tables={"table": True})
    params = {"table": jnp.zeros(SHAPE)}
    state = tx.init(params)

    @jax.jit
    def step(params: Any, state: Any, indices: jax.Array) -> Any:
        grads = {"table": rj.SparseRows(indices, jnp.ones((3, 3)), SHAPE)}
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    params, state = step(params, state, jnp.array([-1, 12, 3]))
    params, state = rj.materialize(params, state)
    moved = np.flatnonzero(np.any(np.asarray(params["table"]) != 0, axis=1))
    np.testing.assert_array_equal(moved, [3])
    touched_ms = np.flatnonzero(
        np.any(np.asarray(optax.tree.get(state, "ms")["table"]) != 0, axis=1)
    )
    np.testing.assert_array_equal(touched_ms, [3])


def test_checkify_turns_dropped_indices_into_an_error() -> None:
    def step(indices: jax.Array) -> None:
        rj.check_indices({"table": rj.SparseRows(indices, jnp.ones((2, 3)), SHAPE)})

    checked = checkify.checkify(jax.jit(step))
    assert checked(jnp.array([0, 11]))[0].get() is None
    error = checked(jnp.array([0, 12]))[0]
    with pytest.raises(checkify.JaxRuntimeError, match=r"indices\[1\]=12 at \['table'\]"):
        error.throw()


def test_values_that_do_not_fit_the_table_raise_at_trace_time() -> None:
    with pytest.raises(
        ValueError,
        match=r"`values` must have shape \[len\(indices\), \*shape\[1:\]\] "
        r"= \[2, 3\] for a table of shape \[12, 3\]. Received: values of shape \[2, 4\]",
    ):
        jax.jit(lambda v: rj.SparseRows(jnp.array([0, 1]), v, SHAPE))(jnp.ones((2, 4)))
    tx = rj.rmsprop(0.1, momentum=0.9)
    state = tx.init({"table": jnp.zeros(SHAPE)})
    with pytest.raises(ValueError, match=r"SparseRows gradient at \['table'\] has shape \(12, 4\)"):
        tx.update({"table": rj.SparseRows(jnp.array([0]), jnp.ones((1, 4)), (12, 4))}, state)


def test_an_empty_sparse_rows_is_a_valid_no_op_step(maybe_jit: Any) -> None:
    tx = rj.rmsprop(0.1, sparse_tables={"table": True})  # keras mode, no momentum
    params = {"table": jnp.ones(SHAPE)}
    state = tx.init(params)
    update = maybe_jit(tx.update)
    grads = {"table": rj.SparseRows(jnp.array([1, 1]), jnp.ones((2, 3)), SHAPE)}
    updates, state = update(grads, state, params)
    params = rj.apply_updates(params, updates)
    before = params
    empty = {"table": rj.SparseRows(jnp.zeros((0,), jnp.int32), jnp.zeros((0, 3)), SHAPE)}
    updates, state = update(empty, state, params)
    params = rj.apply_updates(params, updates)
    chex.assert_trees_all_equal(params, before)
    _, shown = rj.materialize(params, state)
    # As in TF, the step still counts: ms of row 1 decays once more, (0.1 * 4) * 0.9.
    np.testing.assert_allclose(optax.tree.get(shown, "ms")["table"][1], [0.36] * 3, rtol=1e-6)


def test_sparse_arguments_are_checked() -> None:
    # (A table without bookkeeping is no longer refused: see tests/test_sparse_ecosystem.py.)
    grads = {"emb": rj.SparseRows(jnp.array([0]), jnp.ones((1, 3)), SHAPE)}
    with pytest.raises(ValueError, match=r"`sparse_mode` must be one of 'keras', 'lazy', 'dense'"):
        rj.rmsprop(sparse_mode="eager")
    with pytest.raises(ValueError, match=r"weight decay changes every row"):
        tx = rj.rmsprop(0.1, weight_decay=0.1, decoupled_weight_decay=True, momentum=0.9)
        params = {"emb": jnp.zeros(SHAPE)}
        tx.update(grads, tx.init(params), params)


def test_materialize_is_a_no_op_where_nothing_is_pending() -> None:
    tx = rj.rmsprop(0.1, momentum=0.9, sparse_mode="dense", sparse_tables={"table": True})
    params = {"table": jnp.arange(36.0).reshape(SHAPE)}
    state = tx.init(params)
    grads = {"table": rj.SparseRows(jnp.arange(12), jnp.ones(SHAPE), SHAPE)}  # every row
    updates, state = tx.update(grads, state, params)
    params = rj.apply_updates(params, updates)
    again_params, again_state = rj.materialize(params, state)
    chex.assert_trees_all_equal(again_params, params)
    chex.assert_trees_all_equal(again_state, state)


def test_bookkeeping_is_one_int32_per_table_row_and_only_where_needed() -> None:
    params = {"table": jnp.zeros(SHAPE), "dense": jnp.zeros(4)}
    state = rj.rmsprop(sparse_tables=TABLES).init(params)
    assert (
        optax.tree.get(state, "row_steps")["table"].shape == (12,)
        and optax.tree.get(state, "row_steps")["table"].dtype == jnp.int32
    )
    assert optax.tree.get(state, "row_steps")["dense"] is None
    lazy = rj.rmsprop(momentum=0.9, sparse_tables=TABLES).init(params)  # keras + momentum: lazy
    assert all(s.row_steps["table"] is None for s in lazy if hasattr(s, "row_steps"))


# --- cost: no full-table pass in a donated step ---------------------------------------------


@pytest.mark.parametrize(
    "mode,momentum", [("keras", 0.0), ("keras", 0.9), ("lazy", 0.9), ("dense", 0.9)]
)
def test_donated_step_allocates_nothing_table_sized(mode: str, momentum: float) -> None:
    rows, dim, k = 100_000, 16, 64
    tx = rj.rmsprop(1e-3, momentum=momentum, sparse_mode=mode, sparse_tables={"table": True})
    compiled = compile_sparse_step(tx, rows, dim, k)
    table_bytes = rows * dim * 4
    assert compiled.memory_analysis().temp_size_in_bytes < table_bytes // 100
    # No full-table pass either: every table-sized value the step computes is a scatter into a
    # donated input buffer (XLA aliases them), nothing else touches whole tables.
    text = compiled.as_text()
    assert "input_output_alias" in text
    entry = text[text.index("ENTRY") :].splitlines()[1:]
    table_sized = [
        line
        for line in entry
        if re.search(rf"= [fs]32\[{rows}(,{dim})?\]", line) and "parameter(" not in line
    ]
    assert table_sized and all("scatter" in line for line in table_sized), table_sized


# --- the embedding helper, with Flax -------------------------------------------------------


def test_value_and_sparse_grad_matches_dense_autodiff_and_never_builds_the_dense_gradient() -> None:
    from flax import linen as nn

    class Model(nn.Module):
        @nn.compact
        def __call__(self, tokens: jax.Array) -> jax.Array:
            return self.head(nn.Embed(50, 8, name="embed")(tokens))

        @nn.compact
        def head(self, vectors: jax.Array) -> jax.Array:
            return nn.Dense(1, name="out")(jnp.mean(vectors, axis=1))

    model = Model()
    tokens = jnp.array([[1, 4, 4], [7, 1, 49]])
    targets = jnp.array([[0.5], [-1.0]])
    params = model.init(jax.random.key(0), tokens)["params"]

    def full_loss(params: Any) -> jax.Array:
        return jnp.mean((model.apply({"params": params}, tokens) - targets) ** 2)

    def loss_of_rows(rows: jax.Array, head: Any) -> jax.Array:
        out = model.apply({"params": {"out": head}}, rows, method=Model.head)
        return jnp.mean((out - targets) ** 2)

    table = params["embed"]["embedding"]
    loss, (table_grad, head_grad) = rj.value_and_sparse_grad(
        loss_of_rows, table, tokens, params["out"]
    )
    want_loss, want = jax.value_and_grad(full_loss)(params)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(
        table_grad.todense(), want["embed"]["embedding"], rtol=1e-6, atol=1e-8
    )
    chex.assert_trees_all_close(head_grad, want["out"], rtol=1e-6)
    jaxpr = jax.make_jaxpr(
        lambda t: rj.value_and_sparse_grad(loss_of_rows, t, tokens, params["out"])
    )(table)
    shapes = [v.aval.shape for eqn in jaxpr.eqns for v in eqn.outvars]
    assert table.shape not in shapes  # no table-sized intermediate anywhere

    # And it trains: a Flax model with an embedding table, sparse updates on the table.
    tx = rj.rmsprop(
        0.05,
        momentum=0.9,
        sparse_mode="dense",
        sparse_tables={"embed": {"embedding": True}, "out": {"bias": False, "kernel": False}},
    )
    state = tx.init(params)

    @jax.jit
    def train_step(params: Any, state: Any) -> Any:
        loss, (table_grad, head_grad) = rj.value_and_sparse_grad(
            loss_of_rows, params["embed"]["embedding"], tokens, params["out"]
        )
        grads = {"embed": {"embedding": table_grad}, "out": head_grad}
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(30):
        params, state, loss = train_step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]


def test_sparse_step_compiles_once(maybe_jit: Any) -> None:
    tx = rj.rmsprop(0.1, sparse_tables={"table": True})
    params = {"table": jnp.zeros(SHAPE)}
    state = tx.init(params)
    step = jax.jit(chex.assert_max_traces(tx.update, n=1))
    chex.clear_trace_counter()
    for indices in ([0, 1, 1], [5, 2, 11], [3, 3, 3]):
        grads = {"table": rj.SparseRows(jnp.array(indices), jnp.ones((3, 3)), SHAPE)}
        _, state = step(grads, state, params)
    assert int(optax.tree.get(state, "count")) == 3


def test_sparse_updates_keep_the_gradient_dtype_and_chain_into_optax() -> None:
    tx = optax.chain(rj.clip_by_global_norm(1.0), rj.rmsprop(0.1, momentum=0.9))
    params = {"table": jnp.zeros(SHAPE, jnp.bfloat16)}
    grads = {"table": rj.SparseRows(jnp.array([2]), jnp.ones((1, 3), jnp.bfloat16), SHAPE)}
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates["table"].values.dtype == jnp.bfloat16
    # global norm sqrt(3) > 1: g = 1/sqrt(3); one keras momentum step: lr * g / sqrt(0.1 g^2 + eps)
    np.testing.assert_allclose(
        np.asarray(updates["table"].values, np.float32)[0], [-0.1 / np.sqrt(0.1)] * 3, rtol=1e-2
    )


def test_deduplicate_sums_duplicates_and_parks_bad_indices_past_the_table(maybe_jit: Any) -> None:
    from rmsprop_jax._rows import deduplicate

    rng = np.random.default_rng(0)
    for trial in range(30):  # 3 gradient lengths: each new shape costs a compilation
        k, rows = [1, 7, 19][trial % 3], 10
        indices = rng.integers(-3, 13, size=k).astype(np.int32)
        values = rng.normal(size=(k, 2)).astype(np.float32)
        grad = rj.SparseRows.from_parts(jnp.asarray(indices), jnp.asarray(values), (rows, 2))
        out = maybe_jit(deduplicate)(grad)
        unique = np.asarray(out.indices)
        assert np.all(np.diff(unique) >= 0) and np.all((unique >= 0) & (unique <= rows))
        assert len(set(unique[unique < rows])) == int(np.sum(unique < rows))
        want = np.zeros((rows + 1, 2))
        np.add.at(want, np.where((indices >= 0) & (indices < rows), indices, rows), values)
        want[rows] = 0  # out-of-range slices are dropped, never added to another row
        got = np.zeros((rows + 1, 2))
        np.add.at(got, unique, np.asarray(out.values))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
