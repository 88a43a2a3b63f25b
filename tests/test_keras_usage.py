"""rj.keras as a tf.keras user types it (issue 14): hyperparameters as attributes, callables,
Variables that behave like tf.Variable, tf.keras's method signatures, and errors that say what
to pass.

Expected numbers are closed forms of the tf.keras update (``rho = 0`` and ``epsilon = 0`` make a
step exactly ``lr * sign(g)`` without momentum) or a float64 NumPy restatement.
"""

from __future__ import annotations

import json
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj
from rmsprop_jax import keras as rk

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)


def _sign_steps(**kwargs: Any) -> rk.RMSprop:
    """An optimizer whose step without momentum is exactly ``lr * sign(g)``."""
    return rk.RMSprop(rho=0.0, epsilon=0.0, **kwargs)


def _step(opt: rk.RMSprop, var: rk.Variable, grad: float = 1.0) -> None:
    opt.apply_gradients([(jnp.full(var.shape, grad, jnp.float32), var)])


# --- 1. hyperparameters are attributes: read, assigned, effective at the next step ------------


def test_every_hyperparameter_reads_as_a_number() -> None:
    opt = rk.RMSprop(0.01, rho=0.8, momentum=0.5, epsilon=1e-6, decay=0.1)
    want = {"learning_rate": 0.01, "lr": 0.01, "rho": 0.8, "momentum": 0.5, "epsilon": 1e-6}
    for name, value in {**want, "decay": 0.1}.items():
        assert float(getattr(opt, name)) == pytest.approx(value, rel=1e-7), name
        assert getattr(opt, name).numpy().dtype == np.float32  # tf.keras: float32 variables
    assert not opt.centered and opt.clipnorm is None


def test_assigning_the_learning_rate_takes_effect_without_recompiling() -> None:
    opt = _sign_steps(learning_rate=0.1)
    var = rk.Variable(jnp.zeros(2))
    _step(opt, var)
    np.testing.assert_allclose(var.numpy(), [-0.1, -0.1], rtol=1e-6)
    opt.learning_rate = 0.0
    _step(opt, var)
    np.testing.assert_allclose(var.numpy(), [-0.1, -0.1], rtol=1e-6)  # lr 0: no move
    opt.lr = 0.5  # the deprecated alias assigns the same hyperparameter
    _step(opt, var)
    np.testing.assert_allclose(var.numpy(), [-0.6, -0.6], rtol=1e-6)
    opt.learning_rate.assign(0.25)  # tf.keras code also writes the hyperparameter variable
    _step(opt, var)
    np.testing.assert_allclose(var.numpy(), [-0.85, -0.85], rtol=1e-6)
    assert float(opt.lr) == 0.25 and opt.get_config()["learning_rate"] == 0.25
    assert opt._step._cache_size() == 1  # a new number is an argument, not a new program


def test_assigning_momentum_rho_epsilon_and_decay_takes_effect() -> None:
    opt = rk.RMSprop(0.1, rho=0.0, momentum=0.9, epsilon=0.0)
    var = rk.Variable(jnp.zeros(1))
    _step(opt, var)  # momentum path: m = 0.9 * 0 + 0.1 * g / sqrt(g**2) = 0.1
    opt.momentum = 0.5
    _step(opt, var)  # m = 0.5 * 0.1 + 0.1 = 0.15
    np.testing.assert_allclose(var.numpy(), [-0.25], rtol=1e-6)
    np.testing.assert_allclose(opt.get_slot(var, "momentum").numpy(), [0.15], rtol=1e-6)
    assert opt.get_config()["momentum"] == 0.5

    opt = _sign_steps(learning_rate=0.1)
    var = rk.Variable(jnp.zeros(1))
    opt.epsilon = 1.0  # step: 0.1 * 1 / (sqrt(1) + 1)
    _step(opt, var)
    np.testing.assert_allclose(var.numpy(), [-0.05], rtol=1e-6)
    opt.epsilon = 0.0
    opt.decay = 1.0  # step 1: lr / (1 + 1 * 1)
    _step(opt, var)
    np.testing.assert_allclose(var.numpy(), [-0.1], rtol=1e-6)
    opt.rho = 0.5  # ms: 0.5 * 1 + 0.5 * 4 = 2.5; step 2: 0.1 / 3 * 2 / sqrt(2.5)
    _step(opt, var, grad=2.0)
    np.testing.assert_allclose(var.numpy(), [-0.1 - 0.1 / 3 * 2 / math.sqrt(2.5)], rtol=1e-6)
    config = opt.get_config()
    assert (config["rho"], config["epsilon"], config["decay"]) == (0.5, 0.0, 1.0)
    assert opt._step._cache_size() == 1


def test_momentum_assigned_after_building_without_it_keeps_tf_keras_path() -> None:
    # OptimizerV2 decides `_momentum` at construction: a later value has no slot to act on.
    opt = _sign_steps(learning_rate=0.1)
    var = rk.Variable(jnp.zeros(1))
    with pytest.warns(UserWarning, match=r"built without momentum .* has no effect"):
        opt.momentum = 0.9
    _step(opt, var)
    _step(opt, var)
    np.testing.assert_allclose(var.numpy(), [-0.2], rtol=1e-6)  # two plain steps
    assert opt.get_slot_names() == ["rms"] and float(opt.momentum) == pytest.approx(0.9)


def test_bad_assignments_are_refused_and_change_nothing() -> None:
    opt = rk.RMSprop(0.1, rho=0.9)
    with pytest.raises(ValueError, match=r"`rho` must be in \[0, 1\]\. Received: rho=1\.5"):
        opt.rho = 1.5
    with pytest.raises(TypeError, match=r"`learning_rate` must be a number, a schedule"):
        opt.learning_rate = "0.01"
    with pytest.raises(AttributeError, match=r"`centered` of RMSprop is fixed at construction"):
        opt.centered = True
    assert float(opt.rho) == pytest.approx(0.9) and float(opt.lr) == pytest.approx(0.1)


# --- 2. callables: read at every apply_gradients, without recompiling ------------------------


def test_callable_hyperparameters_are_called_at_every_step() -> None:
    box = {"lr": 0.1, "momentum": 0.9, "epsilon": 0.0, "rho": 0.0, "decay": 0.0}
    opt = rk.RMSprop(
        lambda: box["lr"],
        rho=lambda: box["rho"],
        momentum=lambda: box["momentum"],
        epsilon=lambda: box["epsilon"],
        decay=lambda: box["decay"],
    )
    assert opt.has_momentum and opt.get_slot_names() == ["rms", "momentum"]
    var = rk.Variable(jnp.zeros(1))
    _step(opt, var)  # m = 0.1
    box.update(lr=0.2, momentum=0.5)
    _step(opt, var)  # m = 0.5 * 0.1 + 0.2 = 0.25
    np.testing.assert_allclose(var.numpy(), [-0.35], rtol=1e-6)
    box.update(decay=1.0)  # step 2: lr / (1 + 2)
    _step(opt, var)  # m = 0.5 * 0.25 + 0.2 / 3
    np.testing.assert_allclose(var.numpy(), [-0.35 - 0.125 - 0.2 / 3], rtol=1e-6)
    assert opt._step._cache_size() == 1
    assert opt.get_config()["momentum"] == 0.5  # a callable's current value, as tf.keras
    assert float(opt.momentum) == 0.5


def test_a_callable_momentum_returning_zero_still_takes_the_momentum_path() -> None:
    # tf.keras: a callable momentum enables momentum; epsilon then sits inside the root.
    opt = rk.RMSprop(0.1, rho=0.0, momentum=lambda: 0.0, epsilon=1.0)
    var = rk.Variable(jnp.zeros(1))
    _step(opt, var, grad=1.0)
    np.testing.assert_allclose(var.numpy(), [-0.1 / math.sqrt(2.0)], rtol=1e-6)


# --- 3. a Variable owns its buffer: a user's array is never deleted ---------------------------


def test_variable_copies_its_value_and_steps_leave_the_users_arrays_alive() -> None:
    params = {"w": jnp.array([1.0, 2.0])}
    var = rk.Variable(params["w"])
    held = var.value  # held by the user across steps
    opt = rk.RMSprop(0.1)
    opt.apply_gradients([(jnp.ones(2), var)])
    opt.minimize(lambda: jnp.sum(var * var), [var])
    np.testing.assert_array_equal(params["w"], [1.0, 2.0])
    np.testing.assert_array_equal(held, [1.0, 2.0])
    assigned = jnp.array([5.0, 6.0])
    var.assign(assigned)
    opt.apply_gradients([(jnp.ones(2), var)])
    np.testing.assert_array_equal(assigned, [5.0, 6.0])
    assert not np.array_equal(var.numpy(), [5.0, 6.0])
    rms = opt.get_slot(var, "rms").value
    opt.apply_gradients([(jnp.ones(2), var)])
    assert np.all(np.isfinite(np.asarray(rms)))  # a slot read before the step survives it


# --- 4. Variables behave like tf.Variable ------------------------------------------------------


def test_variable_python_protocols_and_methods() -> None:
    v = rk.Variable(-3.0, name="v")
    assert float(v) == -3.0 and int(v) == -3 and float(abs(v)) == 3.0 and v.trainable
    assert v.assign_add(1.0) is v and float(v) == -2.0
    v.assign_sub(0.5)
    snapshot = v.read_value()
    v.assign(7.0)
    assert float(snapshot) == -2.5 and float(v) == 7.0
    assert not rk.Variable(1.0, trainable=False).trainable
    opt = rk.RMSprop()
    opt.apply_gradients([(jnp.ones(()), v)])
    assert int(opt.iterations) == 1 and float(opt.iterations) == 1.0


def test_jnp_functions_and_jit_take_variables_and_gradients_flow() -> None:
    w = rk.Variable(jnp.array([1.0, -2.0]))
    np.testing.assert_allclose(jnp.sum(jnp.square(w)), 5.0)
    np.testing.assert_allclose(jnp.sin(w), np.sin([1.0, -2.0]), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda x: jnp.tanh(x) * 2)(w), 2 * np.tanh([1, -2]))
    grad = jax.grad(lambda x: jnp.sum(jnp.square(x)))(w)
    np.testing.assert_allclose(jnp.asarray(grad), [2.0, -4.0])


def test_minimize_of_the_natural_port_of_reduce_sum_square() -> None:
    w = rk.Variable(jnp.array([1.0, -2.0]))
    opt = rk.RMSprop(0.01)
    for _ in range(2):
        opt.minimize(lambda: jnp.sum(jnp.square(w)), [w])
    want, ms = np.array([1.0, -2.0]), np.zeros(2)  # float64 restatement of the keras update
    for _ in range(2):
        g = 2 * want
        ms = 0.9 * ms + 0.1 * g * g
        want = want - 0.01 * g / (np.sqrt(ms) + 1e-7)
    np.testing.assert_allclose(w.numpy(), want, rtol=1e-6)


# --- 5. tf.keras's method signatures ----------------------------------------------------------


def test_minimize_accepts_a_tuple_a_callable_var_list_grad_loss_and_name() -> None:
    created: list[rk.Variable] = []

    def loss() -> jax.Array:
        if not created:  # the variable is created on the first call, as in a Keras layer
            created.append(rk.Variable(jnp.array([3.0, -1.0]), "kernel"))
        return jnp.square(created[0])  # not a scalar: TF differentiates its sum

    opt = _sign_steps(learning_rate=0.5)
    assert int(opt.minimize(loss, lambda: created, name="train")) == 1
    np.testing.assert_allclose(created[0].numpy(), [2.5, -0.5], rtol=1e-6)
    opt.minimize(loss, tuple(created), grad_loss=jnp.array([-1.0, -1.0]))  # flips the sign
    np.testing.assert_allclose(created[0].numpy(), [3.0, -1.0], rtol=1e-6)


def test_a_variable_the_loss_does_not_read_gets_no_gradient() -> None:
    a, b = rk.Variable(jnp.ones(2), "a"), rk.Variable(jnp.ones(2), "b")
    opt = rk.RMSprop(0.1)
    with pytest.warns(UserWarning, match=r"Gradients do not exist for variables \['b'\]"):
        opt.minimize(lambda: jnp.sum(a * a), [a, b])
    np.testing.assert_array_equal(b.numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"Variable 'b' has `None` for gradient"):
        opt.get_gradients(lambda: jnp.sum(a), [a, b])


def test_apply_gradients_empty_is_a_no_op_and_all_none_raises() -> None:
    opt = rk.RMSprop(0.1)
    assert int(opt.apply_gradients([])) == 0
    assert int(opt.apply_gradients(zip([], [], strict=True))) == 0
    a = rk.Variable(jnp.ones(2), "a")
    with pytest.raises(ValueError, match=r"No gradients provided for any variable: \['a'\]"):
        opt.apply_gradients([(None, a)])
    assert int(opt.iterations) == 0


def test_get_gradients_get_updates_variables_and_weights() -> None:
    opt = _sign_steps(learning_rate=0.1, momentum=0.5)
    a = rk.Variable(jnp.array([1.0, 2.0]), "a")
    grads = opt.get_gradients(lambda: jnp.sum(a * a), [a])
    np.testing.assert_allclose(grads[0], [2.0, 4.0])
    (iterations,) = opt.get_updates(lambda: jnp.sum(a * a), [a])  # eager: the step runs now
    assert iterations is opt.iterations and int(iterations) == 1
    np.testing.assert_allclose(a.numpy(), [0.9, 1.9], rtol=1e-6)
    assert [w.name for w in opt.variables()] == ["iter", "a/rms", "a/momentum"]
    assert [w.name for w in opt.weights] == ["iter", "a/rms", "a/momentum"]


# --- 6. errors that say what to pass ---------------------------------------------------------


def test_a_raw_array_in_place_of_a_variable_says_to_wrap_it() -> None:
    opt = rk.RMSprop(0.1)
    with pytest.raises(TypeError, match=r"holds a jax\.Array of shape \(2,\), not a rj\.keras\.V"):
        opt.apply_gradients([(jnp.ones(2), jnp.ones(2))])
    with pytest.raises(TypeError, match=r"`w = rj\.keras\.Variable\(array\)`"):
        opt.minimize(lambda: 0.0, [jnp.ones(2)])
    with pytest.raises(TypeError, match=r"The pairs are \(gradient, variable\), in that order"):
        opt.apply_gradients([(rk.Variable(jnp.ones(2)), jnp.ones(2))])


def test_gradients_without_variables_say_to_zip_them() -> None:
    opt = rk.RMSprop(0.1)
    with pytest.raises(TypeError, match=r"must be \(gradient, Variable\) pairs, e\.g\. `opt\."):
        opt.apply_gradients([jnp.ones(2), jnp.ones(2)])
    with pytest.raises(TypeError, match=r"must be \(gradient, Variable\) pairs"):
        opt.apply_gradients(jnp.ones((2, 2)))
    a = rk.Variable(jnp.ones(2), "a")
    with pytest.raises(ValueError, match=r"gradient of pair 0 has shape \(3,\); its variable 'a'"):
        opt.apply_gradients([(jnp.ones(3), a)])


def test_a_string_learning_rate_names_schedules() -> None:
    with pytest.raises(
        TypeError,
        match=r"`learning_rate` must be a number, a schedule from rj\.keras\.schedules .* "
        r"Received: learning_rate='0\.1' of type str",
    ):
        rk.RMSprop("0.1")
    with pytest.raises(TypeError, match=r"`rho` must be a number"):
        rk.RMSprop(0.1, rho="0.9")


def test_the_optax_face_uses_the_current_hyperparameters() -> None:
    opt = _sign_steps(learning_rate=0.1)
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    opt.learning_rate = 0.3
    updates, _ = opt.update({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(rj.apply_updates(params, updates)["w"], [-0.3, -0.3], rtol=1e-6)


def test_a_hyperparameter_assigned_through_its_variable_stays_plain_data() -> None:
    opt = rk.RMSprop(0.1)
    opt.lr.assign(0.5)
    opt.rho = jnp.float32(0.8)
    config = json.loads(json.dumps(opt.get_config()))  # a config is JSON data
    assert config["learning_rate"] == 0.5 and config["rho"] == pytest.approx(0.8)


def test_slots_and_iterations_are_views_of_the_optimizer_state() -> None:
    schedule = rk.schedules.PiecewiseConstantDecay(boundaries=[4.0], values=[0.1, 0.5])
    opt = rk.RMSprop(schedule, rho=0.5, epsilon=0.0)
    var = rk.Variable(jnp.zeros(1))
    _step(opt, var)  # ms = 0.5; step 0.1 / sqrt(0.5)
    opt.iterations.assign(5)  # the schedule reads the step count from the state
    opt.get_slot(var, "rms").assign(jnp.array([3.0]))
    _step(opt, var)  # ms = 0.5 * 3 + 0.5 * 1 = 2; lr is the step-5 value 0.5
    np.testing.assert_allclose(
        var.numpy(), [-0.1 / math.sqrt(0.5) - 0.5 / math.sqrt(2.0)], rtol=1e-6
    )
    assert int(opt.iterations) == 6 and opt.get_weights()[0] == 6
    np.testing.assert_allclose(opt.get_slot(var, "rms").numpy(), [2.0])


def test_a_callable_that_needs_arguments_is_refused_naming_schedules() -> None:
    with pytest.raises(TypeError, match=r"`learning_rate` as a callable must take no arguments"):
        rk.RMSprop(lambda count: 0.1 * 0.9**count)
    opt = rk.RMSprop(0.1)
    with pytest.raises(TypeError, match=r"`rho` as a callable must take no arguments .*\['x'\]"):
        opt.rho = lambda x: x
    assert float(opt.rho) == pytest.approx(0.9)
