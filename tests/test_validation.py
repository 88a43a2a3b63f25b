"""Error messages for bad stage arguments, and for gradient trees that do not match the params.

Every message must name the argument and show the value received.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj

# -m "not slow" runs every other case of each parametrized test here (tests/conftest.py)
pytestmark = pytest.mark.fast_share(2)

FORMS = re.escape("must be one of 'ema', 'interpolate', 'lerp'")
MS_FORMS = re.escape("must be one of 'ema', 'interpolate', 'lerp', 'addcmul'")

BAD_ARGUMENTS = [
    # scale_by_rms
    (
        rj.scale_by_rms,
        {"decay": 1.5},
        ValueError,
        r"`decay` must be in \[0, 1\]. Received: decay=1.5",
    ),
    (
        rj.scale_by_rms,
        {"decay": -0.1},
        ValueError,
        r"`decay` must be in \[0, 1\]. Received: decay=-0.1",
    ),
    (
        rj.scale_by_rms,
        {"decay": float("nan")},
        ValueError,
        r"`decay` must be in \[0, 1\]. Received: decay=nan",
    ),
    (
        rj.scale_by_rms,
        {"decay": jnp.array(2.0)},
        ValueError,
        r"`decay` must be in \[0, 1\]. Received: decay=2.0",
    ),
    (
        rj.scale_by_rms,
        {"decay": "0.9"},
        TypeError,
        r"`decay` must be a number. Received: decay='0.9' of type str",
    ),
    (
        rj.scale_by_rms,
        {"decay": True},
        TypeError,
        r"`decay` must be a number. Received: decay=True of type bool",
    ),
    (
        rj.scale_by_rms,
        {"decay": np.ones(2)},
        ValueError,
        r"`decay` must be a scalar. Received: decay with shape \(2,\)",
    ),
    (
        rj.scale_by_rms,
        {"decay": 1 + 0j},
        TypeError,
        r"`decay` must be a number. Received: decay=\(1\+0j\)",
    ),
    (
        rj.scale_by_rms,
        {"eps": -1e-7},
        ValueError,
        r"`eps` must be >= 0. Received: eps=-1e-07",
    ),
    (
        rj.scale_by_rms,
        {"eps": float("inf")},
        ValueError,
        r"`eps` must be >= 0. Received: eps=inf",
    ),
    (
        rj.scale_by_rms,
        {"initial_scale": -1.0},
        ValueError,
        r"`initial_scale` must be >= 0. Received: initial_scale=-1.0",
    ),
    (
        rj.scale_by_rms,
        {"eps_in_sqrt": 1},
        TypeError,
        r"`eps_in_sqrt` must be True or False. Received: eps_in_sqrt=1 of type int",
    ),
    (
        rj.scale_by_rms,
        {"eps_in_sqrt": None},
        TypeError,
        r"`eps_in_sqrt` must be True or False. Received: eps_in_sqrt=None",
    ),
    (
        rj.scale_by_rms,
        {"ms_form": "tf"},
        ValueError,
        rf"`ms_form` {MS_FORMS}. Received: ms_form='tf'",
    ),
    (rj.scale_by_rms, {"ms_form": 0}, ValueError, rf"`ms_form` {MS_FORMS}. Received: ms_form=0"),
    (
        rj.scale_by_rms,
        {"state_dtype": jnp.int32},
        ValueError,
        r"`state_dtype` must be a floating or complex dtype .*Received: state_dtype=int32",
    ),
    (
        rj.scale_by_rms,
        {"state_dtype": "nope"},
        TypeError,
        r"`state_dtype` must be a floating dtype or None. Received: state_dtype='nope'",
    ),
    # scale_by_centered_rms
    (
        rj.scale_by_centered_rms,
        {"decay": 2},
        ValueError,
        r"`decay` must be in \[0, 1\]. Received: decay=2.0",
    ),
    (
        rj.scale_by_centered_rms,
        {"eps": -1.0},
        ValueError,
        r"`eps` must be >= 0. Received: eps=-1.0",
    ),
    (
        rj.scale_by_centered_rms,
        {"mg_form": "torch"},
        ValueError,
        rf"`mg_form` {FORMS}. Received: mg_form='torch'",
    ),
    (
        rj.scale_by_centered_rms,
        {"ms_form": "EMA"},
        ValueError,
        rf"`ms_form` {MS_FORMS}. Received: ms_form='EMA'",
    ),
    (
        rj.scale_by_centered_rms,
        {"eps_in_sqrt": "yes"},
        TypeError,
        r"`eps_in_sqrt` must be True or False. Received: eps_in_sqrt='yes'",
    ),
    (
        rj.scale_by_centered_rms,
        {"state_dtype": jnp.int8},
        ValueError,
        r"`state_dtype` must be a floating or complex dtype .*Received: state_dtype=int8",
    ),
    # trace_momentum
    (
        rj.trace_momentum,
        {"momentum": 1.5},
        ValueError,
        r"`momentum` must be in \[0, 1\]. Received: momentum=1.5",
    ),
    (
        rj.trace_momentum,
        {"momentum": -0.5},
        ValueError,
        r"`momentum` must be in \[0, 1\]. Received: momentum=-0.5",
    ),
    (
        rj.trace_momentum,
        {"momentum": lambda t: 0.9},
        TypeError,
        r"`momentum` must be a number, not a callable. Received: momentum=<function",
    ),
    (
        rj.trace_momentum,
        {"nesterov": 1},
        TypeError,
        r"`nesterov` must be True or False. Received: nesterov=1 of type int",
    ),
    (
        rj.trace_momentum,
        {"state_dtype": jnp.int32},
        ValueError,
        r"`state_dtype` must be a floating or complex dtype .*Received: state_dtype=int32",
    ),
    # scale_by_learning_rate
    (
        rj.scale_by_learning_rate,
        {"learning_rate": -0.1},
        ValueError,
        r"`learning_rate` must be >= 0. Received: learning_rate=-0.1",
    ),
    (
        rj.scale_by_learning_rate,
        {"learning_rate": "1e-3"},
        TypeError,
        r"`learning_rate` must be a number or an optax schedule. Received: learning_rate='1e-3'",
    ),
    (
        rj.scale_by_learning_rate,
        {"learning_rate": 0.1, "decay": -1.0},
        ValueError,
        r"`decay` must be >= 0. Received: decay=-1.0",
    ),
    (
        rj.scale_by_learning_rate,
        {"learning_rate": 0.1, "flip_sign": 0},
        TypeError,
        r"`flip_sign` must be True or False. Received: flip_sign=0",
    ),
    # clipping
    (
        rj.clip_by_value,
        {"clipvalue": -1.0},
        ValueError,
        r"`clipvalue` must be >= 0. Received: clipvalue=-1.0",
    ),
    (
        rj.clip_by_value,
        {"clipvalue": None},
        TypeError,
        r"`clipvalue` must be a number. Received: clipvalue=None",
    ),
    (
        rj.clip_by_norm,
        {"clipnorm": -0.5},
        ValueError,
        r"`clipnorm` must be >= 0. Received: clipnorm=-0.5",
    ),
    (
        rj.clip_by_global_norm,
        {"max_norm": float("-inf")},
        ValueError,
        r"`max_norm` must be >= 0. Received: max_norm=-inf",
    ),
    # weight decay
    (
        rj.add_l2_gradient,
        {"weight_decay": -0.1},
        ValueError,
        r"`weight_decay` must be >= 0. Received: weight_decay=-0.1",
    ),
    (
        rj.add_decoupled_weight_decay,
        {"weight_decay": -0.1, "learning_rate": 0.1},
        ValueError,
        r"`weight_decay` must be >= 0. Received: weight_decay=-0.1",
    ),
    (
        rj.add_decoupled_weight_decay,
        {"weight_decay": 0.1, "learning_rate": -1.0},
        ValueError,
        r"`learning_rate` must be >= 0. Received: learning_rate=-1.0",
    ),
    (
        rj.add_decoupled_weight_decay,
        {"weight_decay": 0.1, "learning_rate": 0.1, "decay": -2},
        ValueError,
        r"`decay` must be >= 0. Received: decay=-2.0",
    ),
]


@pytest.mark.parametrize(
    ("factory", "kwargs", "error", "message"),
    BAD_ARGUMENTS,
    ids=[f"{f.__name__}-{'-'.join(k)}-{i}" for i, (f, k, _, _) in enumerate(BAD_ARGUMENTS)],
)
def test_bad_argument_message(factory, kwargs, error, message):
    with pytest.raises(error, match=message):
        factory(**kwargs)


def test_range_errors_say_what_to_write_instead():
    with pytest.raises(
        ValueError, match=r"Received: decay=1.5. It is the decay of the mean square"
    ):
        rj.scale_by_rms(decay=1.5, eps_in_sqrt=False, rho_complement="rounded")
    with pytest.raises(
        ValueError, match=r"Received: momentum=2.0. Use 0.0 to switch momentum off."
    ):
        rj.trace_momentum(2.0)
    with pytest.raises(ValueError, match=r"Received: clipnorm=-1.0. Use None for no clipping."):
        rj.clip_by_norm(-1.0)


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [
        (rj.scale_by_rms, {"decay": 0.0, "eps": 0.0, "initial_scale": 0.0}),
        (rj.scale_by_rms, {"decay": 1, "state_dtype": "float32", "eps_in_sqrt": np.bool_(True)}),
        (
            rj.scale_by_centered_rms,
            {"decay": np.float32(0.5), "ms_form": "lerp", "mg_form": "lerp"},
        ),
        (rj.trace_momentum, {"momentum": 1.0, "state_dtype": jnp.bfloat16}),
        (rj.scale_by_learning_rate, {"learning_rate": lambda count: 0.1, "decay": 0}),
        (rj.clip_by_value, {"clipvalue": 0.0}),
        (rj.add_decoupled_weight_decay, {"weight_decay": 0, "learning_rate": lambda c: 0.1}),
    ],
)
def test_boundary_values_are_accepted(factory, kwargs):
    tx = factory(**kwargs)
    assert callable(tx.init)
    assert callable(tx.update)


def test_traced_hyperparameters_are_not_range_checked():
    # Inside jit the value is unknown when the stage is built: no check, no error.
    @jax.jit
    def build_and_run(rho):
        tx = rj.scale_by_rms(rho, 0.0, eps_in_sqrt=False, rho_complement="rounded")
        return tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0]

    np.testing.assert_allclose(build_and_run(jnp.float32(0.75)), [2.0], rtol=1e-6)


# --- gradient trees that do not match the params -------------------------------------------------

STAGES = {
    "scale_by_rms": rj.scale_by_rms,
    "scale_by_centered_rms": rj.scale_by_centered_rms,
    "trace_momentum": rj.trace_momentum,
}

PARAMS = {"a": jnp.ones(2), "b": jnp.ones(3)}


@pytest.mark.parametrize("stage", list(STAGES))
def test_missing_key_is_named(maybe_jit, stage):
    tx = STAGES[stage]()
    with pytest.raises(
        ValueError,
        match=rf"^{stage}: the gradient tree does not match the params given to init\(\)\. "
        r"Missing from the gradients: \[\"\['b'\]\"\]; not in the params: none\.",
    ):
        maybe_jit(tx.update)({"a": jnp.ones(2)}, tx.init(PARAMS))


@pytest.mark.parametrize("stage", list(STAGES))
def test_extra_key_is_named(maybe_jit, stage):
    tx = STAGES[stage]()
    grads = {"a": jnp.ones(2), "b": jnp.ones(3), "c": jnp.ones(1)}
    with pytest.raises(
        ValueError, match=r"Missing from the gradients: none; not in the params: \[\"\['c'\]\"\]"
    ):
        maybe_jit(tx.update)(grads, tx.init(PARAMS))


@pytest.mark.parametrize("stage", list(STAGES))
def test_wrong_leaf_shape_is_named(maybe_jit, stage):
    tx = STAGES[stage]()
    grads = {"a": jnp.ones(2), "b": jnp.ones((3, 1))}
    with pytest.raises(
        ValueError,
        match=rf"^{stage}: the gradient at \['b'\] has shape \(3, 1\), but the param it updates "
        r"has shape \(3,\)\.",
    ):
        maybe_jit(tx.update)(grads, tx.init(PARAMS))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"centered": True, "momentum": 0.9},
        {"global_clipnorm": 1.0, "clipvalue": 0.5},
        {"weight_decay": 0.1, "convention": "keras3"},
    ],
)
def test_rmsprop_tree_mismatch(maybe_jit, kwargs):
    tx = rj.rmsprop(**kwargs)
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"Missing from the gradients: \[\"\['b'\]\"\]"):
        maybe_jit(tx.update)({"a": jnp.ones(2)}, state, PARAMS)
    with pytest.raises(
        ValueError,
        match=r"the gradient at \['a'\] has shape \(1,\), but the param it updates has shape "
        r"\(2,\)",
    ):
        maybe_jit(tx.update)({"a": jnp.ones(1), "b": jnp.ones(3)}, state, PARAMS)


def test_rmsprop_torch_weight_decay_tree_mismatch(maybe_jit):
    tx = rj.rmsprop(weight_decay=0.1, convention="torch")
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"the gradient at \['a'\] has shape \(1,\)"):
        maybe_jit(tx.update)({"a": jnp.ones(1), "b": jnp.ones(3)}, state, PARAMS)
