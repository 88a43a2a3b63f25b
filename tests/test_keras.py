"""rj.keras.RMSprop: the tf.keras API, checked against recorded tf.keras runs."""

from __future__ import annotations

import json
import warnings
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rmsprop_jax as rj
from rmsprop_jax import keras as rk
from tests.reference import recorded

# -m "not slow" runs every third case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(3)

RTOL, ATOL = 1e-5, 1e-6
SLOT_FIELDS = {"ms": "rms", "mg": "mg", "mom": "momentum"}


def _schedule_or_rate(case: dict[str, Any]) -> Any:
    if case["learning_rate"] is not None:
        return case["learning_rate"]
    config = case["schedule"]["config"]
    return rk.schedules.deserialize(case["schedule"]) if config else None


def _optimizer(case: dict[str, Any]) -> rk.RMSprop:
    config = case["config"]
    kwargs = {k: config[k] for k in ("clipnorm", "clipvalue", "global_clipnorm") if config[k]}
    if config["inverse_time_decay"]:  # tf.keras's `decay`
        kwargs["decay"] = config["inverse_time_decay"]
    return rk.RMSprop(
        _schedule_or_rate(case),
        rho=config["rho"],
        momentum=config["momentum"],
        epsilon=config["epsilon"],
        centered=config["centered"],
        **kwargs,
    )


KERAS_CASES = [
    pytest.param(case, id=case["name"])
    for case in recorded.cases("keras")
    if not (case["config"]["centered"] and case["config"]["rho"] == 0.0)  # see test_conventions
]


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("case", KERAS_CASES)
def test_apply_gradients_matches_recorded_tf_keras(case: dict[str, Any]) -> None:
    opt = _optimizer(case)
    variables = {
        name: rk.Variable(value, name=name)
        for name, value in recorded.as_arrays(case["params0"]).items()
    }
    for step, grads in enumerate(case["grads"]):
        pairs = [(recorded.as_arrays(grads)[name], var) for name, var in variables.items()]
        assert int(opt.apply_gradients(pairs).numpy()) == step + 1
        for name, want in recorded.as_arrays(case["params"][step]).items():
            np.testing.assert_allclose(variables[name].numpy(), want, rtol=RTOL, atol=ATOL)
        for slot, per_var in case["slots"][step].items():
            if slot == "mom" and not opt.has_momentum:
                continue
            for name, want in recorded.as_arrays(per_var).items():
                got = opt.get_slot(variables[name], SLOT_FIELDS[slot]).numpy()
                np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.slow  # a Keras sparse replay: one compile per gradient shape per step
@pytest.mark.parametrize("case", recorded.cases("keras_sparse"), ids=lambda c: c["name"])
def test_sparse_apply_gradients_matches_recorded_tf_keras(case: dict[str, Any]) -> None:
    opt = _optimizer(case)
    params0 = recorded.as_arrays(case["params0"])
    table, dense = rk.Variable(params0["table"], "table"), rk.Variable(params0["dense"], "dense")
    for step, grads in enumerate(case["grads"]):
        values = np.asarray(grads["table"]["values"], np.float32).reshape(-1, 3)
        sparse = rj.SparseRows(np.asarray(grads["table"]["indices"], np.int32), values, (12, 3))
        opt.apply_gradients([(sparse, table), (np.asarray(grads["dense"], np.float32), dense)])
        want = recorded.as_arrays(case["params"][step])
        np.testing.assert_allclose(table.numpy(), want["table"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(dense.numpy(), want["dense"], rtol=RTOL, atol=ATOL)
        # Slots shown are up to date: the decay deferred on untouched rows is applied first.
        for slot, per_var in case["slots"][step].items():
            got = opt.get_slot(table, SLOT_FIELDS[slot]).numpy()
            np.testing.assert_allclose(got, per_var["table"], rtol=RTOL, atol=ATOL)


def test_docs_example() -> None:
    opt = rk.RMSprop(learning_rate=0.1)
    var1 = rk.Variable(10.0)
    loss = lambda: (var1**2) / 2.0  # noqa: E731
    step_count = opt.minimize(loss, [var1]).numpy()
    assert step_count == 1
    assert var1.numpy() == np.float32(9.683772)


def test_unknown_keyword_is_a_type_error_naming_it() -> None:
    with pytest.raises(
        TypeError,
        match=r"Unexpected keyword argument passed to optimizer: "
        r"nesterov\. Allowed kwargs are \['clipnorm', 'clipvalue', "
        r"'global_clipnorm', 'lr', 'decay'\]",
    ):
        rk.RMSprop(nesterov=True)


def test_lr_is_deprecated_and_wins() -> None:
    with pytest.warns(UserWarning, match=r"The `lr` argument is deprecated"):
        opt = rk.RMSprop(learning_rate=0.5, lr=0.1)
    assert opt.get_config()["learning_rate"] == 0.1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"rho": 1.5}, r"`rho` must be in \[0, 1\]. Received: rho=1.5"),
        ({"learning_rate": -1.0}, r"`learning_rate` must be >= 0"),
        ({"clipnorm": 1.0, "global_clipnorm": 1.0}, r"cannot both be set"),
        ({"decay": -0.1}, r"`decay` must be >= 0"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rk.RMSprop(**kwargs)


def test_none_gradients_are_skipped_with_a_warning_and_all_none_is_an_error() -> None:
    opt = rk.RMSprop(0.1)
    a, b = rk.Variable(jnp.ones(2), "a"), rk.Variable(jnp.ones(2), "b")
    with pytest.warns(UserWarning, match=r"Gradients do not exist for variables \['b'\]"):
        opt.apply_gradients([(jnp.ones(2), a), (None, b)])
    np.testing.assert_array_equal(b.numpy(), [1.0, 1.0])
    assert int(opt.iterations.numpy()) == 1
    with pytest.raises(ValueError, match=r"No gradients provided for any variable: \['a', 'b'\]"):
        opt.apply_gradients([(None, a), (None, b)])
    assert int(opt.iterations.numpy()) == 1


def test_weights_order_and_set_weights_round_trip() -> None:
    opt = rk.RMSprop(0.1, momentum=0.9, centered=True)
    a, b = rk.Variable(jnp.ones(2), "a"), rk.Variable(jnp.ones((2, 2)), "b")
    opt.apply_gradients([(jnp.ones(2), a), (jnp.ones((2, 2)), b)])
    names = [w.name for w in opt.weights]
    assert names == ["iter", "a/rms", "b/rms", "a/momentum", "b/momentum", "a/mg", "b/mg"]
    saved = opt.get_weights()
    assert saved[0].dtype == np.int64 and saved[0] == 1
    fresh = rk.RMSprop(0.1, momentum=0.9, centered=True)
    fresh.build([a, b])
    assert [w.name for w in fresh.weights] == names  # slots exist before any step
    fresh.set_weights(saved)
    chex.assert_trees_all_equal(fresh.get_weights(), saved)
    fresh.set_weights(saved[1:])  # Keras also accepts the list without the iteration count
    chex.assert_trees_all_equal(fresh.get_weights(), saved)


def test_set_weights_rejects_bad_lists_and_changes_nothing() -> None:
    opt = rk.RMSprop(0.1, momentum=0.9)
    a = rk.Variable(jnp.ones(3), "a")
    opt.apply_gradients([(jnp.ones(3), a)])
    before = opt.get_weights()
    with pytest.raises(
        ValueError,
        match=r"weight list of length 1, but the optimizer was "
        r"expecting 3 weights \(or 2 without the iteration count\)",
    ):
        opt.set_weights([np.zeros(3)])
    with pytest.raises(
        ValueError,
        match=r"'a/momentum' has shape \(3,\); the weight given for it "
        r"has shape \(4,\)",
    ):
        opt.set_weights([before[0], np.full(3, 7.0), np.zeros(4)])
    chex.assert_trees_all_equal(opt.get_weights(), before)  # the first weight was not written


def test_slots_api() -> None:
    opt = rk.RMSprop(momentum=0.5)
    var = rk.Variable(jnp.zeros(2), "v")
    assert opt.get_slot_names() == ["rms", "momentum"]
    slot = opt.add_slot(var, "custom", initializer="ones")
    np.testing.assert_array_equal(opt.get_slot(var, "custom").numpy(), [1.0, 1.0])
    assert opt.add_slot(var, "custom") is slot
    with pytest.raises(ValueError, match=r"Unknown initializer 'glorot'"):
        opt.add_slot(var, "other", initializer="glorot")
    with pytest.raises(KeyError, match=r"has no slot 'mg'"):
        opt.get_slot(var, "mg")
    weight = opt.add_weight("extra", (2,), initializer="ones")
    assert opt.weights[-1] is weight


def test_zero_argument_learning_rate_is_called_each_step_without_recompiling() -> None:
    rates = iter([0.1, 0.01, 0.001])
    opt = rk.RMSprop(learning_rate=lambda: next(rates), rho=0.0, epsilon=0.0)
    var = rk.Variable(jnp.zeros(1))
    for _ in range(3):
        opt.apply_gradients([(jnp.ones(1), var)])
    # rho = 0, eps = 0: each step moves by exactly lr * g / |g| = lr
    np.testing.assert_allclose(var.numpy(), [-0.111], rtol=1e-6)
    assert opt._step._cache_size() == 1


def test_get_gradients() -> None:
    opt = rk.RMSprop()
    a, b = rk.Variable(jnp.array([1.0, 2.0])), rk.Variable(3.0)
    grads = opt.get_gradients(lambda: jnp.sum(a * a) * b, [a, b])
    np.testing.assert_allclose(grads[0], [6.0, 12.0])
    np.testing.assert_allclose(grads[1], 5.0)


def test_config_round_trips_through_json() -> None:
    schedule = rk.schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5)
    opt = rk.RMSprop(
        schedule,
        rho=0.8,
        momentum=0.5,
        epsilon=1e-6,
        centered=True,
        clipnorm=1.0,
        decay=0.01,
        name="opt",
    )
    config = json.loads(json.dumps(opt.get_config()))
    assert list(config) == [
        "name",
        "clipnorm",
        "learning_rate",
        "decay",
        "rho",
        "momentum",
        "epsilon",
        "centered",
    ]
    again = rk.RMSprop.from_config(config)
    assert again.get_config() == config
    assert again.learning_rate == schedule


def test_from_config_is_data_only() -> None:
    with pytest.raises(ValueError, match=r"Unknown learning-rate schedule class_name='os.system'"):
        rk.RMSprop.from_config({"learning_rate": {"class_name": "os.system", "config": {}}})
    with pytest.raises(ValueError, match=r"Unknown key 'nesterov' in the RMSprop config"):
        rk.RMSprop.from_config({"nesterov": True})
    with pytest.raises(
        ValueError,
        match=r"Unknown keys \['eval'\] in the config of "
        r"ExponentialDecay",
    ):
        rk.RMSprop.from_config(
            {
                "learning_rate": {
                    "class_name": "ExponentialDecay",
                    "config": {
                        "initial_learning_rate": 0.1,
                        "decay_steps": 1,
                        "decay_rate": 0.5,
                        "eval": "1",
                    },
                }
            }
        )
    with pytest.raises(ValueError, match=r"use_ema=True asks for a feature"):
        rk.RMSprop.from_config({"use_ema": True})


def test_it_is_an_optax_transformation_and_chains() -> None:
    opt = rk.RMSprop(0.1)
    tx = optax.chain(optax.identity(), opt)
    params = {"w": jnp.array(10.0)}
    updates, _ = tx.update({"w": jnp.array(10.0)}, tx.init(params), params)
    np.testing.assert_allclose(rj.apply_updates(params, updates)["w"], 9.683772, rtol=1e-7)


def test_flax_nnx_optimizer_trains_with_it() -> None:
    from flax import nnx

    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, rk.RMSprop(0.01, momentum=0.9), wrt=nnx.Param)
    x = jnp.ones((8, 3))

    @nnx.jit
    def step(model: Any, optimizer: Any) -> jax.Array:
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - 1.0) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    with warnings.catch_warnings():
        losses = [float(step(model, optimizer)) for _ in range(50)]
    assert losses[-1] < 0.05 * losses[0]


# --- recorded tf.keras / Keras 3 configs, schedules and a resumed run -------------------------

FRONTEND = recorded.load("keras_frontend")


def _with_numpy_scalars(config: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    """The config as tf.keras returned it: values it held as NumPy scalars become them again."""
    return {
        key: np.float32(value) if types.get(key) == "float32" else value
        for key, value in config.items()
    }


@pytest.mark.parametrize("entry", FRONTEND["schedules"], ids=lambda e: e["name"])
@pytest.mark.parametrize("library", ["tf_keras_serialized", "keras3_serialized"])
def test_schedules_reproduce_keras_values(entry: dict[str, Any], library: str) -> None:
    schedule = rk.schedules.deserialize(entry[library])
    got = jax.jit(jax.vmap(schedule))(jnp.arange(len(entry["values"]), dtype=jnp.float32))
    np.testing.assert_allclose(got, np.float32(entry["values"]), rtol=2e-6, atol=1e-9)
    assert rk.schedules.serialize(schedule)["config"] == entry[library]["config"]


@pytest.mark.parametrize("key", list(FRONTEND["optimizer_configs"]))
def test_from_config_accepts_real_tf_keras_and_keras3_configs(key: str) -> None:
    config = _with_numpy_scalars(
        FRONTEND["optimizer_configs"][key], FRONTEND["optimizer_config_types"][key]
    )
    opt = rk.RMSprop.from_config(config)
    for name in ("rho", "momentum", "epsilon", "centered"):
        assert opt.get_config()[name] == pytest.approx(config[name])
    if key.startswith("tf_keras"):  # the same keys, in the same order, as tf.keras returns
        assert list(opt.get_config()) == list(config)


@pytest.mark.parametrize("run", ["resume", "resume_plain"])
def test_resume_from_a_tf_keras_checkpoint_continues_identically(run: str) -> None:
    data = FRONTEND[run]
    opt = rk.RMSprop.from_config(_with_numpy_scalars(data["config"], data["config_types"]))
    variables = {
        name: rk.Variable(value, name=name)
        for name, value in recorded.as_arrays(data["params_after_3"]).items()
    }
    opt.build(list(variables.values()))
    opt.set_weights([np.asarray(w) for w in data["weights_after_3"]])
    assert int(opt.iterations.numpy()) == data["steps_first"]
    suffixes = [name.split("/", 1)[1].removesuffix(":0") for name in data["weight_names"][1:]]
    assert [w.name for w in opt.weights[1:]] == suffixes
    for step, want in enumerate(data["params_after"]):
        grads = recorded.as_arrays(data["grads"][data["steps_first"] + step])
        opt.apply_gradients([(grads[name], var) for name, var in variables.items()])
        for name, value in recorded.as_arrays(want).items():
            np.testing.assert_allclose(variables[name].numpy(), value, rtol=RTOL, atol=ATOL)


def test_docs_example_weights_and_config_match_tf_keras() -> None:
    data = FRONTEND["docs_example"]
    opt = rk.RMSprop(learning_rate=0.1)
    var1 = rk.Variable(10.0)
    assert opt.minimize(lambda: (var1**2) / 2.0, [var1]).numpy() == data["step_count"]
    np.testing.assert_allclose(var1.numpy(), data["var1"], rtol=1e-7)
    weights = opt.get_weights()
    assert weights[0] == data["weights"][0]
    np.testing.assert_allclose(weights[1], data["weights"][1], rtol=1e-7)
    assert opt.get_config() == pytest.approx(
        {
            k: (float(np.float32(v)) if isinstance(v, float) else v)
            for k, v in data["config"].items()
        }
    )


# --- bad configs and bad weights: a named error, nothing changed, nothing evaluated ----------

EXP_DECAY = {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5}


def _exp_decay(**changes: Any) -> dict[str, Any]:
    return {"class_name": "ExponentialDecay", "config": {**EXP_DECAY, **changes}}


@pytest.mark.parametrize(
    "config,error,message",
    [
        ({"rho": "0.9"}, TypeError, r"`rho` must be a number\. Received: rho='0\.9' of type str"),
        ({"centered": "yes"}, TypeError, r"`centered` must be True or False"),
        ({"momentum": None}, TypeError, r"`momentum` must be a number"),
        ({"name": 3}, TypeError, r"`name` must be a string\. Received: name=3"),
        (
            {"learning_rate": [0.1]},
            TypeError,
            r"Config value `learning_rate` must be a number or a serialized schedule dict "
            r"\(a config is data\)\. Received: learning_rate=\[0\.1\] of type list",
        ),
        ({"epsilon": np.array([1e-7])}, TypeError, r"Config value `epsilon` must be a number"),
        ({"rho": 1.5}, ValueError, r"`rho` must be in \[0, 1\]\. Received: rho=1\.5"),
        ({"skip_nonfinite": 1}, TypeError, r"`skip_nonfinite` must be True or False"),
        (
            {"learning_rate": _exp_decay(decay_rate="0.5")},
            TypeError,
            r"`decay_rate` of ExponentialDecay must be a number\. Received: decay_rate='0\.5'",
        ),
        (
            {"learning_rate": _exp_decay(staircase=1)},
            TypeError,
            r"`staircase` of ExponentialDecay must be True or False",
        ),
        (
            {"learning_rate": {"class_name": "ExponentialDecay", "config": {"decay_steps": 2}}},
            ValueError,
            r"The config of ExponentialDecay is missing \['initial_learning_rate', "
            r"'decay_rate'\]",
        ),
        (
            {"learning_rate": {"class_name": "keras.src.Lambda", "config": {}}},
            ValueError,
            r"Unknown learning-rate schedule class_name='keras\.src\.Lambda'\. Supported: ",
        ),
        ([("rho", 0.9)], TypeError, r"`config` must be a dict\. Received: list"),
    ],
)
def test_from_config_names_the_bad_value(config: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        rk.RMSprop.from_config(config)


def test_from_config_calls_and_imports_nothing() -> None:
    import sys

    called = []
    with pytest.raises(TypeError, match=r"Config value `learning_rate` must be a number"):
        rk.RMSprop.from_config({"learning_rate": lambda: called.append(1) or 0.1})
    assert not called  # a callable in a config is refused, never called
    # "module" is Keras's bookkeeping: read, not imported.
    config = {"module": "not_a_module_rmsprop_jax", "registered_name": None, **_exp_decay()}
    opt = rk.RMSprop.from_config({"learning_rate": config})
    assert "not_a_module_rmsprop_jax" not in sys.modules
    assert opt.learning_rate == rk.schedules.ExponentialDecay(0.1, 2, 0.5)


@pytest.mark.parametrize(
    "position,bad,error,message",
    [
        (
            0,
            np.float64(3.0),
            TypeError,
            r"'iter' is an integer count \(int32\); the weight given "
            r"for it has dtype float64\. Pass integers",
        ),
        (0, np.int64(-1), ValueError, r"'iter' must be in \[0, 2147483647\]\. Received: -1"),
        (0, np.int64(2**40), ValueError, r"'iter' must be in \[0, 2147483647\]"),
        (
            1,
            np.array(["a", "b", "c"]),
            TypeError,
            r"'a/rms' holds float32 numbers; the weight "
            r"given for it has dtype <U1\. Pass a real floating",
        ),
        (1, np.ones(3, np.complex64), TypeError, r"'a/rms' .* has dtype complex64"),
        (2, np.ones(3, bool), TypeError, r"'a/momentum' .* has dtype bool"),
        (
            2,
            np.array([0.0, np.nan, 1.0]),
            ValueError,
            r"'a/momentum' must be finite in float32; "
            r"the weight given for it has 1 NaN or Inf values",
        ),
        (1, np.array([1e39, 0.0, 0.0]), ValueError, r"'a/rms' must be finite in float32"),
        (
            2,
            object(),
            ValueError,
            r"'a/momentum' has shape \(3,\); the weight given for it has "
            r"shape \(\)",
        ),
    ],
)
def test_set_weights_refuses_bad_weights_and_changes_nothing(
    position: int, bad: Any, error: type, message: str
) -> None:
    opt = rk.RMSprop(0.1, momentum=0.9)
    a = rk.Variable(jnp.ones(3), "a")
    opt.apply_gradients([(jnp.ones(3), a)])
    before = opt.get_weights()
    weights = [np.int64(5), np.full(3, 7.0), np.full(3, 8.0)]  # valid, and different
    weights[position] = bad
    with pytest.raises(error, match=message):
        opt.set_weights(weights)
    chex.assert_trees_all_equal(opt.get_weights(), before)
    opt.set_weights([np.int64(5), np.full(3, 7.0), np.full(3, 8, np.int32)])  # casts, as tf.keras
    assert [w.dtype for w in opt.get_weights()] == [np.int64, np.float32, np.float32]
    np.testing.assert_array_equal(opt.get_weights()[2], [8.0, 8.0, 8.0])
