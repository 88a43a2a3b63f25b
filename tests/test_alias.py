"""The `rmsprop` alias: the battery every public configuration must pass, hyperparameter
injection, dtypes, abstract init, vmap, MultiSteps, and argument validation."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
from tests.reference import recorded

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

CONVENTIONS = ["keras", "keras3", "tf1", "torch", "optax"]
SETTINGS = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "centered_momentum": {"centered": True, "momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "clipped_decayed": {
        "clipvalue": 1.0,
        "global_clipnorm": 5.0,
        "inverse_time_decay": 1e-3,
        "weight_decay": 1e-4,
    },
}
CONFIGS = [
    # keras, tf1 and optax have no weight decay of their own: the coupling is spelled out.
    pytest.param(
        convention,
        {
            **setting,
            **(
                {"decoupled_weight_decay": True}
                if "weight_decay" in setting and convention in ("keras", "tf1", "optax")
                else {}
            ),
        },
        id=f"{convention}-{name}",
    )
    for convention in CONVENTIONS
    for name, setting in SETTINGS.items()
]


def _run(tx: optax.GradientTransformation, loss: Any, params: Any, steps: int) -> Any:
    # optax's own schedules mix Python floats with the int32 step count, which strict promotion
    # (tests/conftest.py) rejects; this library's stages are strict-clean on their own.
    @jax.numpy_dtype_promotion("standard")
    @jax.jit
    def train(params: Any) -> Any:
        def body(carry: Any, _: None) -> tuple[Any, None]:
            params, state = carry
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            return (rj.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
        return params

    return train(params)


@pytest.mark.parametrize("convention,setting", CONFIGS)
def test_converges_on_a_parabola(convention: str, setting: dict[str, Any]) -> None:
    target = jnp.array([1.0, -2.0, 3.0])
    params = _run(
        rj.rmsprop(learning_rate=0.01, convention=convention, **setting),
        lambda p: jnp.sum((p - target) ** 2),
        jnp.zeros(3),
        steps=1000,
    )
    np.testing.assert_allclose(params, target, atol=0.05)


@pytest.mark.parametrize("convention,setting", CONFIGS)
def test_converges_on_rosenbrock(convention: str, setting: dict[str, Any]) -> None:
    def rosenbrock(p: jax.Array) -> jax.Array:
        return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2

    schedule = optax.cosine_decay_schedule(3e-3, decay_steps=4000, alpha=0.01)
    params = _run(
        rj.rmsprop(learning_rate=schedule, convention=convention, **setting),
        rosenbrock,
        jnp.array([-1.0, 1.0]),
        steps=4000,
    )
    np.testing.assert_allclose(params, jnp.ones(2), atol=0.05)


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("convention,setting", CONFIGS)
def test_does_not_recompile_and_keeps_gradient_dtype(
    convention: str, setting: dict[str, Any]
) -> None:
    tx = rj.rmsprop(learning_rate=0.01, convention=convention, state_dtype=jnp.float32, **setting)
    params = {"w": jnp.ones((3, 2), jnp.bfloat16), "b": jnp.zeros(2, jnp.float32)}
    state = tx.init(params)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params: Any, state: Any) -> Any:
        grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
        updates, state = tx.update(grads, state, params)
        return updates, rj.apply_updates(params, updates), state

    chex.clear_trace_counter()
    for _ in range(3):
        updates, params, state = step(params, state)
    assert updates["w"].dtype == jnp.bfloat16 and updates["b"].dtype == jnp.float32
    assert params["w"].dtype == jnp.bfloat16
    accumulators = [leaf for leaf in jax.tree.leaves(state) if leaf.ndim > 0]
    assert accumulators and all(leaf.dtype == jnp.float32 for leaf in accumulators)


@pytest.mark.parametrize("convention,setting", CONFIGS)
def test_init_on_abstract_params_matches_concrete(convention: str, setting: dict[str, Any]) -> None:
    tx = rj.rmsprop(learning_rate=0.01, convention=convention, **setting)
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2, jnp.bfloat16)}
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    chex.assert_trees_all_equal_shapes_and_dtypes(tx.init(abstract), tx.init(params))
    shapes = jax.eval_shape(tx.init, abstract)
    chex.assert_trees_all_equal_shapes_and_dtypes(shapes, tx.init(params))


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("convention,setting", CONFIGS)
@jax.numpy_dtype_promotion("standard")  # optax.MultiSteps mixes float32 and int32 itself
def test_multisteps_accumulates_then_takes_one_step(
    convention: str, setting: dict[str, Any]
) -> None:
    tx = optax.MultiSteps(rj.rmsprop(learning_rate=0.1, convention=convention, **setting), 2)
    plain = rj.rmsprop(learning_rate=0.1, convention=convention, **setting)
    params = jnp.array([1.0, -1.0])
    g1, g2 = jnp.array([0.5, 2.0]), jnp.array([1.5, -1.0])
    state = tx.init(params)
    u1, state = tx.update(g1, state, params)
    np.testing.assert_array_equal(u1, jnp.zeros(2))
    u2, _ = tx.update(g2, state, params)
    expected, _ = plain.update((g1 + g2) / 2, plain.init(params), params)
    np.testing.assert_allclose(u2, expected, rtol=1e-6)


def test_vmap_over_a_batch_of_problems() -> None:
    tx = rj.rmsprop(learning_rate=0.1, momentum=0.9, centered=True)
    params = jnp.arange(6.0).reshape(3, 2)
    grads = jnp.array([[1.0, -2.0], [0.5, 0.25], [-3.0, 4.0]])
    states = jax.vmap(tx.init)(params)
    batched, _ = jax.vmap(tx.update)(grads, states, params)
    # One step from zero state: ms = 0.1 g^2, mg = 0.1 g, den = sqrt(0.09 g^2 + eps).
    expected = -0.1 * grads / np.sqrt(0.1 * grads**2 - (0.1 * grads) ** 2 + 1e-7)
    np.testing.assert_allclose(batched, expected, rtol=1e-5)


def test_inject_hyperparams_follows_the_recorded_keras_schedule(maybe_jit: Any) -> None:
    """Changing the learning rate in state.hyperparams each step reproduces tf.keras's schedule."""
    case = next(
        c for c in recorded.cases("keras") if c["name"].startswith("schedExponentialDecay_m0.9")
    )
    config = {k: v for k, v in case["config"].items() if k != "convention"}
    tx = rj.inject_hyperparams(rj.rmsprop)(learning_rate=0.0, **config)
    params = recorded.as_arrays(case["params0"])
    state = tx.init(params)
    update = maybe_jit(chex.assert_max_traces(tx.update, n=1))
    chex.clear_trace_counter()
    for step, lr in enumerate(case["lr_per_step"]):
        state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
        updates, state = update(recorded.as_arrays(case["grads"][step]), state, params)
        params = rj.apply_updates(params, updates)
        for name, want in recorded.as_arrays(case["params"][step]).items():
            np.testing.assert_allclose(params[name], want, rtol=1e-5, atol=1e-6)


def test_inject_hyperparams_changes_rho_momentum_epsilon_without_recompiling() -> None:
    tx = rj.inject_hyperparams(rj.rmsprop)(learning_rate=0.1, rho=0.9, momentum=0.5, epsilon=0.0)
    params = jnp.zeros(1)
    state = tx.init(params)
    step = jax.jit(chex.assert_max_traces(tx.update, n=1))
    chex.clear_trace_counter()
    g = jnp.array([2.0])
    _, state = step(g, state, params)  # ms = 0.4, mom = 0.1 * 2 / sqrt(0.4)
    state.hyperparams.update(
        rho=jnp.float32(0.5), momentum=jnp.float32(0.0), epsilon=jnp.float32(1.0)
    )
    updates, state = step(g, state, params)
    ms = 0.5 * 0.4 + 0.5 * 4.0  # 2.2
    # momentum 0 as an array keeps TF's momentum kernel: mom = lr * g / sqrt(ms + eps)
    np.testing.assert_allclose(updates, [-0.1 * 2.0 / np.sqrt(ms + 1.0)], rtol=1e-6)


def test_hyperparameters_stay_float32_with_bfloat16_params() -> None:
    params = jnp.zeros(4, jnp.bfloat16)
    grads = jnp.full(4, 2.0, jnp.bfloat16)
    ours = rj.inject_hyperparams(rj.rmsprop)(learning_rate=0.1, rho=0.999)
    state = ours.init(params)
    assert state.hyperparams["rho"].dtype == jnp.float32
    _, state = ours.update(grads, state, params)
    ms = optax.tree.get(state, "ms")
    np.testing.assert_allclose(np.asarray(ms, np.float32), 0.004, rtol=1e-2)  # (1 - 0.999) * 4
    # optax's default casts rho to bfloat16, where 0.999 rounds to exactly 1.0: ms never moves.
    theirs = optax.inject_hyperparams(rj.rmsprop)(learning_rate=0.1, rho=0.999)
    their_state = theirs.init(params)
    assert float(their_state.hyperparams["rho"]) == 1.0
    _, their_state = theirs.update(grads, their_state, params)
    assert float(jnp.max(jnp.abs(optax.tree.get(their_state, "ms")))) == 0.0


def test_plain_python_hyperparameters_are_used_in_float32_with_bfloat16_params() -> None:
    tx = rj.rmsprop(learning_rate=0.1, rho=0.999, state_dtype=jnp.float32)
    params = jnp.zeros(2, jnp.bfloat16)
    _, state = tx.update(jnp.full(2, 2.0, jnp.bfloat16), tx.init(params), params)
    np.testing.assert_allclose(
        optax.tree.get(state, "ms"), np.float32(1 - np.float32(0.999)) * 4, rtol=1e-6
    )


@pytest.mark.parametrize(
    "setting,stages",
    [
        ({}, {rj.ScaleByRmsState}),
        ({"momentum": 0.9}, {rj.ScaleByRmsState, rj.TraceMomentumState}),
        ({"centered": True}, {rj.ScaleByCenteredRmsState}),
    ],
)
def test_state_holds_only_the_accumulators_the_options_need(
    setting: dict[str, Any], stages: set[type]
) -> None:
    state = rj.rmsprop(**setting).init({"w": jnp.zeros((5, 3))})
    per_param = {type(s) for s in state if any(leaf.ndim > 0 for leaf in jax.tree.leaves(s))}
    assert per_param == stages
    bytes_per_param = sum(leaf.nbytes for leaf in jax.tree.leaves(state) if leaf.ndim > 0) / 15
    assert bytes_per_param == 4 * sum(
        {rj.ScaleByRmsState: 1, rj.TraceMomentumState: 1, rj.ScaleByCenteredRmsState: 2}[s]
        for s in stages
    )


def test_torch_weight_decay_is_coupled_and_keras3_is_decoupled() -> None:
    params, grads = jnp.array([2.0]), jnp.array([0.0])
    torch_tx = rj.rmsprop(learning_rate=0.1, weight_decay=0.5, convention="torch", epsilon=0.0)
    u, _ = torch_tx.update(grads, torch_tx.init(params), params)
    # g = 0 + 0.5 * 2 = 1; ms = 0.1; step = 0.1 * 1 / sqrt(0.1)
    np.testing.assert_allclose(u, [-0.1 / np.sqrt(0.1)], rtol=1e-6)
    keras3_tx = rj.rmsprop(learning_rate=0.1, weight_decay=0.5, convention="keras3")
    u, _ = keras3_tx.update(grads, keras3_tx.init(params), params)
    np.testing.assert_allclose(u, [-2.0 * 0.5 * 0.1], rtol=1e-6)  # zero gradient: only the decay


def test_maximize_climbs() -> None:
    tx = rj.rmsprop(learning_rate=0.1, maximize=True, convention="torch")
    u, _ = tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)), jnp.zeros(1))
    assert float(u[0]) > 0


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (
            {"learning_rate": -0.1},
            ValueError,
            r"`learning_rate` must be >= 0. Received: learning_rate=-0.1",
        ),
        ({"rho": 1.5}, ValueError, r"`rho` must be in \[0, 1\]. Received: rho=1.5"),
        ({"rho": -0.1}, ValueError, r"`rho` must be in \[0, 1\]. Received: rho=-0.1"),
        ({"momentum": 1.2}, ValueError, r"`momentum` must be in \[0, 1\]. Received: momentum=1.2"),
        (
            {"momentum": -0.5},
            ValueError,
            r"`momentum` must be in \[0, 1\]. Received: momentum=-0.5",
        ),
        ({"epsilon": -1e-7}, ValueError, r"`epsilon` must be >= 0. Received: epsilon=-1e-07"),
        ({"clipnorm": -1.0}, ValueError, r"`clipnorm` must be >= 0. Received: clipnorm=-1.0"),
        ({"clipvalue": -1.0}, ValueError, r"`clipvalue` must be >= 0. Received: clipvalue=-1.0"),
        ({"global_clipnorm": -2.0}, ValueError, r"`global_clipnorm` must be >= 0"),
        (
            {"inverse_time_decay": -0.1},
            ValueError,
            r"`inverse_time_decay` must be >= 0. Received: inverse_time_decay=-0.1",
        ),
        ({"weight_decay": -0.1}, ValueError, r"`weight_decay` must be >= 0"),
        (
            {"learning_rate": float("nan")},
            ValueError,
            r"`learning_rate` must be >= 0. Received: learning_rate=nan",
        ),
        (
            {"convention": "tensorflow"},
            ValueError,
            r"`convention` must be one of 'keras', 'keras3', 'tf1', 'torch', 'optax'. "
            r"Received: convention='tensorflow'",
        ),
        ({"clipnorm": 1.0, "global_clipnorm": 1.0}, ValueError, r"cannot both be set"),
        ({"nesterov": True}, ValueError, r"`nesterov=True` needs momentum > 0"),
        (
            {"centered": "yes"},
            TypeError,
            r"`centered` must be True or False. Received: centered='yes'",
        ),
        ({"rho": "0.9"}, TypeError, r"`rho` must be a number. Received: rho='0.9'"),
        ({"rho": jnp.ones(2)}, ValueError, r"`rho` must be a scalar"),
        (
            {"state_dtype": jnp.int32},
            ValueError,
            r"`state_dtype` must be a floating or complex dtype",
        ),
        ({"lr": 0.1}, TypeError, r"unexpected keyword argument 'lr'"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        rj.rmsprop(**kwargs)


def test_schedules_and_traced_values_are_not_range_checked() -> None:
    rj.rmsprop(learning_rate=optax.constant_schedule(-1.0))  # a schedule's range is unknowable

    @jax.jit
    def build_and_step(rho: jax.Array) -> jax.Array:
        tx = rj.rmsprop(rho=rho)
        return tx.update(jnp.ones(1), tx.init(jnp.ones(1)))[0]

    assert np.isfinite(build_and_step(jnp.float32(0.5))).all()


def test_gradient_tree_mismatch_names_the_difference() -> None:
    tx = rj.rmsprop(momentum=0.9)
    state = tx.init({"w": jnp.zeros(3), "b": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"Missing from the gradients: \[\"\['b'\]\"\]"):
        tx.update({"w": jnp.zeros(3)}, state)
    with pytest.raises(
        ValueError, match=r"at \['w'\] has shape \(4,\), but the param it updates has shape \(3,\)"
    ):
        tx.update({"w": jnp.zeros(4), "b": jnp.zeros(2)}, state)


# --- issue 12: inject_hyperparams, momentum=None, other frameworks' keywords -------------------


@pytest.mark.parametrize("inject", [rj.inject_hyperparams, optax.inject_hyperparams])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_injecting_only_the_learning_rate_changes_nothing(inject: Any, convention: str) -> None:
    """The quickstart's call: g = 1e-4 used to step 10x smaller (TF's momentum kernel)."""
    plain = rj.rmsprop(1e-2, convention=convention)
    injected = inject(rj.rmsprop)(learning_rate=1e-2, convention=convention)
    params = jnp.zeros(3)
    grads = jnp.array([1e-4, 1.0, -30.0])
    want, plain_state = plain.update(grads, plain.init(params), params)
    with jax.numpy_dtype_promotion("standard"):  # optax's injection casts with Python floats
        got, state = injected.update(grads, injected.init(params), params)
    np.testing.assert_allclose(got, want, rtol=3e-7)  # optax's injected rho: fl(1 - fl(rho))
    if inject is rj.inject_hyperparams:
        np.testing.assert_array_equal(got, want)
        assert set(state.hyperparams) == {"learning_rate"}
    chex.assert_trees_all_equal_structs(state.inner_state, plain_state)
    assert not any(isinstance(s, rj.TraceMomentumState) for s in state.inner_state)


def test_injected_momentum_takes_the_momentum_path_on_purpose() -> None:
    tx = rj.inject_hyperparams(rj.rmsprop)(learning_rate=1e-2, momentum=0.0)
    state = tx.init(jnp.zeros(1))
    assert any(isinstance(s, rj.TraceMomentumState) for s in state.inner_state)
    updates, _ = tx.update(jnp.array([1e-4]), state, jnp.zeros(1))
    # TF's momentum kernel: epsilon inside the root, lr * g / sqrt(0.1 g^2 + eps)
    np.testing.assert_allclose(updates, [-1e-2 * 1e-4 / np.sqrt(0.1 * 1e-8 + 1e-7)], rtol=1e-5)


def test_momentum_none_means_no_momentum() -> None:
    params = jnp.ones(2)
    grads = jnp.array([0.5, -2.0])
    for convention in CONVENTIONS:
        off = rj.rmsprop(0.1, momentum=None, convention=convention)
        zero = rj.rmsprop(0.1, momentum=0.0, convention=convention)
        a, state = off.update(grads, off.init(params), params)
        b, _ = zero.update(grads, zero.init(params), params)
        np.testing.assert_array_equal(a, b)
        assert not any(isinstance(s, rj.TraceMomentumState) for s in state)
    with pytest.raises(ValueError, match=r"`nesterov=True` needs momentum > 0"):
        rj.rmsprop(momentum=None, nesterov=True)


@pytest.mark.parametrize(
    "keyword,advice",
    [
        ("alpha", r"write rho="),
        ("eps", r"write epsilon="),
        ("lr", r"Write learning_rate="),
        ("initial_scale", r"convention='tf1'"),
        ("betas", r"Its arguments are: learning_rate, rho"),
    ],
)
def test_other_frameworks_keywords_say_what_to_write(keyword: str, advice: str) -> None:
    with pytest.raises(TypeError, match=rf"unexpected keyword argument '{keyword}'\. .*{advice}"):
        rj.rmsprop(**{keyword: 0.9})
    with pytest.raises(TypeError, match=rf"'{keyword}'"):
        rj.inject_hyperparams(rj.rmsprop)(**{keyword: 0.9})


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_decay_keyword_is_refused_under_every_convention_with_both_meanings(
    convention: str,
) -> None:
    # optax's `decay` is rho; tf.keras's is the inverse-time learning-rate decay: never guessed.
    both = r"optax.rmsprop's `decay` is the mean square's decay.*rho=.*inverse_time_decay="
    with pytest.raises(TypeError, match=both):
        rj.rmsprop(0.1, decay=0.9, convention=convention)
    rj.rmsprop(0.1, rho=0.9, convention=convention)
    rj.rmsprop(0.1, inverse_time_decay=0.9, convention=convention)
