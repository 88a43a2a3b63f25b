"""The pieces around the optimizer that real recipes use, each reported giving other numbers,
warnings or errors, written as tests that hold once they are fixed:

1. clipping follows the convention's framework (PyTorch's ``clip_grad_norm_`` under "torch",
   Optax's rule under "optax" and by default in the stage that shares Optax's name);
2. weight decay takes an optax-style mask;
3. a convention without weight decay of its own needs the coupling spelled out, and timm's
   ``RMSpropTF`` (coupled or decoupled, decay masked by parameter group) is reproduced;
4. `rj.inject_hyperparams` injects only numbers (and learning-rate schedules);
5. a None gradient (a frozen param) is accepted: no update, state untouched;
7. PyTorch's order of operations keeps its mean square finite where ``g * g`` overflows, in
   eager and jit alike.

References: ``tests/reference/recipes.json`` (torch 2.13 and timm 1.0.31, recorded by
``record.py recipes``), ``optax`` itself, and runs of this library without the piece tested.
"""

from __future__ import annotations

import json
import pathlib
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

DATA = json.loads((pathlib.Path(__file__).parent / "reference" / "recipes.json").read_text())
CLIP = DATA["clip_grad_norm"]
TIMM = DATA["timm_rmsprop_tf"]


def _arrays(tree: dict[str, Any]) -> dict[str, jax.Array]:
    return {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in tree.items()}


def _run(tx: optax.GradientTransformation, params: Any, grads: list[Any]) -> list[Any]:
    """The params after each step."""
    state, out = tx.init(params), []
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = rj.apply_updates(params, updates)
        out.append(params)
    return out


# 1. Clipping ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CLIP["cases"], ids=lambda c: f"max_norm{c['max_norm']:g}")
def test_torch_formula_is_clip_grad_norm(case: dict[str, Any], maybe_jit: Any) -> None:
    grads = _arrays(case["grads"])
    tx = rj.clip_by_global_norm(case["max_norm"], formula="torch")
    out = maybe_jit(tx.update)(grads, optax.EmptyState())[0]
    for k, want in case["clipped"].items():
        np.testing.assert_allclose(out[k], want, rtol=1e-6, err_msg=k)
    per_tensor = rj.clip_by_norm(case["max_norm"], formula="torch")
    out = maybe_jit(per_tensor.update)(grads, optax.EmptyState())[0]
    for k, want in case["per_tensor"].items():
        np.testing.assert_allclose(out[k], want, rtol=1e-6, err_msg=k)


def test_tf_formula_differs_from_torch_where_the_bound_is_small() -> None:
    # The +1e-6 in torch's denominator is 7e-3 of the norm here: the test above can fail.
    (case,) = [c for c in CLIP["cases"] if c["max_norm"] == 1e-4]
    out = rj.clip_by_global_norm(1e-4, formula="tf").update(_arrays(case["grads"]), None)[0]
    assert not np.allclose(out["a"], case["clipped"]["a"], rtol=1e-3)


@pytest.mark.parametrize("case", CLIP["cases"], ids=lambda c: f"max_norm{c['max_norm']:g}")
def test_rmsprop_torch_clips_as_pytorch_before_the_step(case: dict[str, Any]) -> None:
    grads, c = _arrays(case["grads"]), case["max_norm"]
    tx = rj.rmsprop(0.1, rho=0.9, epsilon=1e-8, convention="torch", global_clipnorm=c)
    params = jax.tree.map(jnp.zeros_like, grads)
    updates, _ = tx.update(grads, tx.init(params), params)
    for k, clipped in case["clipped"].items():
        g = np.asarray(clipped, np.float64)
        want = -0.1 * g / (np.sqrt(0.1 * g * g) + 1e-8)
        np.testing.assert_allclose(updates[k], want, rtol=1e-5, err_msg=k)


def test_the_stage_with_optax_name_gives_optax_numbers_bit_for_bit(maybe_jit: Any) -> None:
    rng = np.random.default_rng(0)
    tree = {
        "a": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(7,)), jnp.bfloat16),
    }
    for max_norm in (0.5, 1e3):  # clipped, and left alone
        ours = maybe_jit(rj.clip_by_global_norm(max_norm).update)(tree, optax.EmptyState())[0]
        with jax.numpy_dtype_promotion("standard"):  # optax mixes the dtypes implicitly
            theirs = maybe_jit(optax.clip_by_global_norm(max_norm).update)(
                tree, optax.EmptyState()
            )[0]
        for k in tree:
            assert ours[k].dtype == theirs[k].dtype
            np.testing.assert_array_equal(ours[k], theirs[k], err_msg=f"{k} at {max_norm}")


def test_clip_formula_is_checked() -> None:
    with pytest.raises(ValueError, match=r"`formula` must be one of 'tf', 'torch', 'optax'"):
        rj.clip_by_global_norm(1.0, formula="keras")  # type: ignore[arg-type]


# 2. and 3. Weight decay: masks, coupling, timm's RMSpropTF ----------------------------------

PARAMS = {"w": jnp.full((3, 2), 2.0), "b": jnp.full((2,), 3.0)}
GRADS = [
    {
        k: jnp.asarray(np.random.default_rng(s).normal(size=v.shape), jnp.float32)
        for k, v in PARAMS.items()
    }
    for s in range(3)
]


@pytest.mark.parametrize(
    "convention,decoupled",
    [("torch", None), ("keras3", None), ("keras", True), ("tf1", False), ("optax", True)],
)
@pytest.mark.parametrize("as_function", [False, True])
def test_weight_decay_mask_decays_only_the_marked_params(
    convention: str, decoupled: bool | None, as_function: bool
) -> None:
    mask: Any = {"w": True, "b": False}
    if as_function:
        mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)  # noqa: E731
    options = dict(momentum=0.5, convention=convention, decoupled_weight_decay=decoupled)
    tx = rj.rmsprop(0.1, weight_decay=0.2, weight_decay_mask=mask, **options)
    got = _run(tx, PARAMS, GRADS)
    decayed = _run(
        rj.rmsprop(0.1, weight_decay=0.2, **options),
        {"w": PARAMS["w"]},
        [{"w": g["w"]} for g in GRADS],
    )
    plain = _run(
        rj.rmsprop(0.1, momentum=0.5, convention=convention),
        {"b": PARAMS["b"]},
        [{"b": g["b"]} for g in GRADS],
    )
    for step, (ours, w, b) in enumerate(zip(got, decayed, plain, strict=True)):
        np.testing.assert_array_equal(ours["w"], w["w"], err_msg=f"w at step {step}")
        np.testing.assert_array_equal(ours["b"], b["b"], err_msg=f"b at step {step}")
    assert not np.allclose(
        got[-1]["w"],
        _run(
            rj.rmsprop(0.1, **{k: v for k, v in options.items() if k != "decoupled_weight_decay"}),
            {"w": PARAMS["w"]},
            [{"w": g["w"]} for g in GRADS],
        )[-1]["w"],
    )


def test_weight_decay_mask_lets_a_sparse_table_skip_the_decay() -> None:
    # keras3 decouples the decay inside the sparse driver: the table is masked out of it.
    params = {"t": jnp.ones((5, 2)), "w": jnp.full((2,), 2.0)}
    tx = rj.rmsprop(
        0.1,
        weight_decay=0.1,
        convention="keras3",
        sparse_tables={"t": True, "w": False},
        weight_decay_mask={"t": False, "w": True},
    )
    g = {"t": rj.SparseRows(jnp.array([1, 3]), jnp.ones((2, 2)), (5, 2)), "w": jnp.ones(2)}
    got = _run(tx, params, [g, g])
    table_alone = _run(
        rj.rmsprop(0.1, convention="keras3", sparse_tables={"t": True}),
        {"t": params["t"]},
        [{"t": g["t"]}] * 2,
    )
    w_alone = _run(
        rj.rmsprop(0.1, weight_decay=0.1, convention="keras3"),
        {"w": params["w"]},
        [{"w": g["w"]}] * 2,
    )
    np.testing.assert_array_equal(got[-1]["t"], table_alone[-1]["t"])
    np.testing.assert_array_equal(got[-1]["w"], w_alone[-1]["w"])


def test_weight_decay_mask_without_a_flag_for_a_param_is_an_error() -> None:
    tx = rj.rmsprop(0.1, weight_decay=0.1, convention="torch", weight_decay_mask={"w": True})
    with pytest.raises(ValueError, match=r"`weight_decay_mask` must be a pytree of bools.*\['b'\]"):
        tx.update(GRADS[0], tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize("convention", ["keras", "tf1", "optax"])
def test_weight_decay_where_the_framework_has_none_needs_the_coupling(convention: str) -> None:
    with pytest.raises(
        ValueError, match=r"has no weight decay of its own.*decoupled_weight_decay=False adds"
    ):
        rj.rmsprop(0.1, weight_decay=1e-5, convention=convention)
    for decoupled in (False, True):
        rj.rmsprop(0.1, weight_decay=1e-5, convention=convention, decoupled_weight_decay=decoupled)
    rj.rmsprop(0.1, weight_decay=0.0, convention=convention)  # no decay: nothing to couple


@pytest.mark.parametrize(
    "case", TIMM["cases"], ids=lambda c: f"decoupled_decay={c['decoupled_decay']}"
)
def test_timm_rmsprop_tf_with_decay_masked_to_the_weights(case: dict[str, Any]) -> None:
    s = TIMM["settings"]
    tx = rj.rmsprop(
        s["lr"],
        rho=s["alpha"],
        momentum=s["momentum"],
        epsilon=s["eps"],
        convention="tf1",
        weight_decay=s["weight_decay"]["w"],
        decoupled_weight_decay=case["decoupled_decay"],
        weight_decay_mask={"w": True, "b": False},
    )
    got = _run(tx, _arrays(TIMM["params0"]), [_arrays(g) for g in TIMM["grads"]])
    for step, (ours, want) in enumerate(zip(got, case["params"], strict=True)):
        for k in ("w", "b"):
            np.testing.assert_allclose(
                ours[k], want[k], rtol=2e-6, atol=2e-7, err_msg=f"{k} at step {step}"
            )


def test_timm_coupled_and_decoupled_runs_differ() -> None:
    # The recording distinguishes the two couplings, so the test above checks each.
    coupled, decoupled = (np.asarray(c["params"][-1]["w"]) for c in TIMM["cases"])
    assert np.max(np.abs(coupled - decoupled)) > 1e-4


# 4. inject_hyperparams injects numbers only ------------------------------------------------


def test_inject_leaves_a_state_dtype_static() -> None:
    params = jnp.ones(3, jnp.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # JAX's "Implicit conversion of an array to a dtype"
        tx = rj.inject_hyperparams(rj.rmsprop)(learning_rate=0.1, state_dtype=jnp.float32)
        state = tx.init(params)
        updates, state = tx.update(jnp.full(3, 0.5, jnp.bfloat16), state, params)
    assert sorted(state.hyperparams) == ["learning_rate"]
    plain = rj.rmsprop(0.1, state_dtype=jnp.float32)
    want, _ = plain.update(jnp.full(3, 0.5, jnp.bfloat16), plain.init(params), params)
    np.testing.assert_array_equal(updates, want)
    assert optax.tree.get(state, "ms").dtype == jnp.float32


def test_inject_keeps_the_sparse_tables_function_as_the_table_marker() -> None:
    params = {"t": jnp.ones((4, 1))}
    g = {"t": rj.SparseRows(jnp.array([1]), jnp.ones((1, 1)), (4, 1))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the "without per-row bookkeeping" warning
        tx = rj.inject_hyperparams(rj.rmsprop)(
            learning_rate=0.1, sparse_tables=lambda params: {"t": True}
        )
        state = tx.init(params)
        updates, state = tx.update(g, state, params)
    assert sorted(state.hyperparams) == ["learning_rate"]
    assert optax.tree.get(state, "row_steps")["t"].shape == (4,)
    plain = rj.rmsprop(0.1, sparse_tables={"t": True})
    want, _ = plain.update(g, plain.init(params), params)
    np.testing.assert_array_equal(updates["t"].todense(), want["t"].todense())


def test_inject_accepts_static_args_that_were_not_passed() -> None:
    params = jnp.ones(2)
    tx = rj.inject_hyperparams(rj.rmsprop, static_args=("momentum",))(learning_rate=0.1)
    assert sorted(tx.init(params).hyperparams) == ["learning_rate"]
    tx = rj.inject_hyperparams(rj.rmsprop, static_args=("momentum",))(
        learning_rate=0.1, momentum=0.9, centered=True
    )
    state = tx.init(params)
    assert sorted(state.hyperparams) == ["learning_rate"]  # momentum static, centered a flag
    updates, _ = tx.update(jnp.ones(2), state, params)
    plain = rj.rmsprop(0.1, momentum=0.9, centered=True)
    np.testing.assert_array_equal(updates, plain.update(jnp.ones(2), plain.init(params))[0])


def test_inject_injects_numbers_and_learning_rate_schedules() -> None:
    schedule = optax.linear_schedule(0.1, 0.0, 10)
    tx = rj.inject_hyperparams(rj.rmsprop)(learning_rate=schedule, rho=0.8, momentum=0.5)
    state = tx.init(jnp.ones(2))
    assert sorted(state.hyperparams) == ["learning_rate", "momentum", "rho"]


def test_inject_refuses_static_args_the_factory_does_not_have() -> None:
    with pytest.raises(ValueError, match=r"`static_args` must name arguments of rmsprop.*'rhoo'"):
        rj.inject_hyperparams(rj.rmsprop, static_args=("rhoo",))


# 5. None gradients -------------------------------------------------------------------------


@pytest.mark.fast_share(3)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9, "centered": True},
        {"convention": "torch", "weight_decay": 0.1, "clipnorm": 1.0},
        {"convention": "keras3", "weight_decay": 0.1, "momentum": 0.9},
        {"sparse_tables": {"w": False, "b": True}, "convention": "keras3", "momentum": 0.5},
    ],
    ids=["plain", "centered_momentum", "torch_decay_clip", "keras3_decay", "sparse_tables"],
)
@pytest.mark.parametrize("wrap", [False, True], ids=["rmsprop", "skip_nonfinite"])
def test_a_none_gradient_leaves_its_param_and_state_alone(
    options: dict[str, Any], wrap: bool, maybe_jit: Any
) -> None:
    # As PyTorch skips a param whose .grad is None: no update, state untouched, others as alone.
    tx = rj.rmsprop(0.1, **options)
    tx = rj.skip_nonfinite(tx) if wrap else tx
    params = {"w": jnp.ones((3, 2)), "b": jnp.full((3,), 2.0)}
    state = tx.init(params)
    update = maybe_jit(tx.update)
    g = {"w": jnp.full((3, 2), 0.5), "b": jnp.ones(3)}
    updates, state = update(g, state, params)
    params = rj.apply_updates(params, updates)
    before = state
    updates, state = update({"w": g["w"], "b": None}, state, params)
    assert updates["b"] is None
    new = rj.apply_updates(params, updates)
    np.testing.assert_array_equal(new["b"], params["b"])
    for name in ("ms", "mg", "mom"):
        try:
            old, new_tree = optax.tree.get(before, name), optax.tree.get(state, name)
        except (KeyError, ValueError):
            continue
        if old is not None:
            np.testing.assert_array_equal(new_tree["b"], old["b"], err_msg=name)
    # w moved as in a run of w alone
    alone = rj.rmsprop(0.1, **{k: v for k, v in options.items() if k != "sparse_tables"})
    w = _run(alone, {"w": jnp.ones((3, 2))}, [{"w": g["w"]}, {"w": g["w"]}])[-1]["w"]
    np.testing.assert_allclose(new["w"], w, rtol=1e-6)


@pytest.mark.parametrize("formula", ["tf", "torch", "optax"])
def test_global_clipping_skips_a_none_gradient(formula: str) -> None:
    # torch's clip_grad_norm_ takes the params that have a gradient: the norm of w alone.
    clip = rj.clip_by_global_norm(0.1, formula=formula)
    g = jnp.full((3, 2), 0.5)
    with_none = clip.update({"w": g, "b": None}, optax.EmptyState())[0]
    alone = clip.update({"w": g}, optax.EmptyState())[0]
    assert with_none["b"] is None
    np.testing.assert_array_equal(with_none["w"], alone["w"])


def test_a_gradient_for_a_none_param_is_an_error() -> None:
    tx = rj.rmsprop(0.1)
    params = {"w": jnp.ones(2), "b": None}
    with pytest.raises(ValueError, match=r"the param at \['b'\] is None, but its gradient"):
        tx.update({"w": jnp.ones(2), "b": jnp.ones(2)}, tx.init(params), params)


# 7. PyTorch's mean square at extreme magnitudes ---------------------------------------------


@pytest.mark.parametrize(
    "case", DATA["torch_overflow"], ids=lambda c: f"g{c['grad']:g}_centered{c['centered']}"
)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_torch_keeps_a_huge_gradient_finite(case: dict[str, Any], jit: bool) -> None:
    tx = rj.rmsprop(0.1, rho=0.99, epsilon=1e-8, centered=case["centered"], convention="torch")
    update = jax.jit(tx.update) if jit else tx.update
    params = jnp.ones(1)
    state = tx.init(params)
    for _ in range(2):
        updates, state = update(jnp.full(1, case["grad"], jnp.float32), state, params)
        params = rj.apply_updates(params, updates)
    np.testing.assert_allclose(params, [case["param"]], rtol=1e-6)
    np.testing.assert_allclose(optax.tree.get(state, "ms"), [case["square_avg"]], rtol=1e-6)


# A PyTorch run carried over ----------------------------------------------------------------

RESUME = DATA["torch_resume"]


def _torch_state(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded state dict as torch's: integer param indices, NumPy float32 tensors."""
    state = {
        int(i): {k: np.asarray(v, np.float32) for k, v in entry.items()}
        for i, entry in recorded["state"].items()
    }
    return {"state": state, "param_groups": recorded["param_groups"]}


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("case", RESUME["cases"], ids=lambda c: c["name"])
@pytest.mark.parametrize("by_name", [False, True], ids=["in_order", "by_name"])
def test_a_torch_run_continues_here_and_goes_back(case: dict[str, Any], by_name: bool) -> None:
    names = ["fc.weight", "fc.bias"] if by_name else None
    at_4 = [jnp.asarray(np.asarray(p, np.float32)) for p in case["params"][3]]
    params: Any = dict(zip(names, at_4, strict=True)) if names else at_4
    tx, state = rj.from_torch_state_dict(_torch_state(case["state_at_4"]), params, names=names)
    for step in range(4, len(RESUME["grads"])):
        g = [jnp.asarray(np.asarray(x, np.float32)) for x in RESUME["grads"][step]]
        grads = dict(zip(names, g, strict=True)) if names else g
        updates, state = jax.jit(tx.update)(grads, state, params)
        params = rj.apply_updates(params, updates)
        got = [params[n] for n in names] if names else params
        for k, (ours, want) in enumerate(zip(got, case["params"][step], strict=True)):
            np.testing.assert_allclose(
                ours, want, rtol=1e-5, atol=1e-7, err_msg=f"param {k} at step {step + 1}"
            )
    back = rj.to_torch_state_dict(state, params, case["state_at_end"]["param_groups"], names=names)
    want = _torch_state(case["state_at_end"])
    assert back["param_groups"] == want["param_groups"]
    assert sorted(back["state"]) == sorted(want["state"])
    for i, entry in want["state"].items():
        assert sorted(back["state"][i]) == sorted(entry), i
        for key, value in entry.items():
            np.testing.assert_allclose(
                back["state"][i][key], value, rtol=1e-5, atol=1e-7, err_msg=f"state[{i}][{key!r}]"
            )


def test_torch_resume_is_more_than_a_restart() -> None:
    # Starting the optimizer afresh at step 4 gives other numbers: the test above can fail.
    case = RESUME["cases"][0]
    params = [jnp.asarray(np.asarray(p, np.float32)) for p in case["params"][3]]
    fresh = rj.rmsprop(0.01, rho=0.99, epsilon=1e-8, convention="torch")
    g = [jnp.asarray(np.asarray(x, np.float32)) for x in RESUME["grads"][4]]
    updates, _ = fresh.update(g, fresh.init(params), params)
    assert not np.allclose(rj.apply_updates(params, updates)[0], case["params"][4][0], rtol=1e-3)


def _good_state() -> tuple[dict[str, Any], list[jax.Array]]:
    case = RESUME["cases"][1]
    return _torch_state(case["state_at_4"]), [
        jnp.asarray(np.asarray(p, np.float32)) for p in case["params"][3]
    ]


def test_torch_state_of_another_optimizer_is_refused() -> None:
    state_dict, params = _good_state()
    state_dict["param_groups"] = [{**state_dict["param_groups"][0], "betas": (0.9, 0.999)}]
    with pytest.raises(ValueError, match=r"options \['betas'\] that torch.optim.RMSprop does not"):
        rj.from_torch_state_dict(state_dict, params)
    with pytest.raises(ValueError, match=r"keys 'state' and 'param_groups'"):
        rj.from_torch_state_dict({"state": {}}, params)


def test_torch_state_with_the_wrong_count_shape_or_dtype_is_refused() -> None:
    state_dict, params = _good_state()
    with pytest.raises(ValueError, match=r"hold params \[0, 1\]; `params` has 3 arrays"):
        rj.from_torch_state_dict(state_dict, [*params, jnp.ones(2)])
    with pytest.raises(ValueError, match=r"state\[0\]\['square_avg'\] has shape \(3, 4\)"):
        rj.from_torch_state_dict(state_dict, [params[0].T, params[1]])
    with pytest.raises(TypeError, match=r"state\[1\]\['momentum_buffer'\] has dtype float64"):
        bad = {
            **state_dict["state"][1],
            "momentum_buffer": state_dict["state"][1]["momentum_buffer"].astype(np.float64),
        }
        rj.from_torch_state_dict({**state_dict, "state": {**state_dict["state"], 1: bad}}, params)
    with pytest.raises(ValueError, match=r"With `names`, `params` must be a flat dict"):
        rj.from_torch_state_dict(state_dict, params, names=["fc.weight", "fc.bias"])


# 6. Complex params with a state_dtype ------------------------------------------------------

COMPLEX_PARAMS = {"w": jnp.asarray([1 + 2j, -0.5j, 3.0], jnp.complex64)}
COMPLEX_GRADS = [
    {"w": jnp.asarray([0.5 - 1j, 2j, -1.0], jnp.complex64) * (k + 1)} for k in range(3)
]


@pytest.mark.parametrize("convention", ["keras", "keras3", "tf1", "torch", "optax"])
@pytest.mark.parametrize("state_dtype", [jnp.complex64, jnp.float32])
def test_complex_params_take_a_state_dtype_of_their_precision(
    convention: str, state_dtype: Any
) -> None:
    options = dict(momentum=0.5, centered=True, convention=convention)
    want = _run(rj.rmsprop(0.1, **options), COMPLEX_PARAMS, COMPLEX_GRADS)
    tx = rj.rmsprop(0.1, state_dtype=state_dtype, **options)
    got = _run(tx, COMPLEX_PARAMS, COMPLEX_GRADS)
    np.testing.assert_allclose(got[-1]["w"], want[-1]["w"], rtol=1e-6)
    state = tx.init(COMPLEX_PARAMS)
    assert optax.tree.get(state, "mom")["w"].dtype == jnp.complex64
    assert optax.tree.get(state, "mg")["w"].dtype == jnp.complex64
    # Optax's mean square |g|**2 is real: a real state_dtype keeps it real
    real_ms = convention == "optax" and state_dtype == jnp.float32
    assert optax.tree.get(state, "ms")["w"].dtype == (jnp.float32 if real_ms else jnp.complex64)


def test_a_complex_state_dtype_for_real_params_is_refused() -> None:
    tx = rj.rmsprop(0.1, state_dtype=jnp.complex64)
    with pytest.raises(TypeError, match=r"state_dtype=complex64 is for complex params.*float32"):
        tx.init({"w": jnp.ones(2)})
