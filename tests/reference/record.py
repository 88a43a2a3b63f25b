"""Record reference RMSprop trajectories from the real frameworks.

This script is NOT imported by the test-suite; the tests only read the JSON
files it writes next to itself:

* ``keras.json``  -- ``tf_keras.optimizers.legacy.RMSprop`` (Keras 2 / OptimizerV2)
* ``keras3.json`` -- ``keras.optimizers.RMSprop`` (Keras 3, TensorFlow backend)
* ``tf1.json``    -- ``tf.compat.v1.train.RMSPropOptimizer``
* ``torch.json``  -- ``torch.optim.RMSprop`` (``foreach=False``)
* ``keras_sparse.json`` -- ``tf_keras.optimizers.legacy.RMSprop`` fed
  ``tf.IndexedSlices`` gradients (its sparse path; see ``record_keras_sparse``)
* ``torch_long.json`` / ``tf_long.json`` -- 200-step runs of ``torch.optim.RMSprop`` (every
  config of PyTorch's ``optim_inputs_func_rmsprop``, alpha 0.999 / 0.9999, weight decay) and of
  tf_keras legacy, TF1 and Keras 3 (rho 0.99 / 0.999 / 0.9999), in float32 and float64, with
  complex64 runs and TF1 sparse runs; gradients come from ``long_gradients.py`` (see
  ``record_long``)
* ``keras_frontend.json`` -- the Keras front end: learning-rate schedules as
  serialized by tf_keras and Keras 3 with their values, optimizer ``get_config()``
  dicts, ``get_weights()`` / weight names of a tf_keras legacy RMSprop resumed
  after 3 steps, and the tf.keras docs example (see ``record_keras_frontend``)
* ``keras_generations.json`` -- both generations of ``tf.keras.optimizers.RMSprop``: the legacy
  optimizer (``tf_keras.optimizers.legacy.RMSprop``), tf-keras's new optimizer
  (``tf_keras.optimizers.RMSprop``) and Keras 3 (``keras.optimizers.RMSprop``; TensorFlow
  backend, plus torch and JAX backends for configs and a few runs): dense and sparse runs,
  variables added in a later call, configs, resume weights, epsilon 0 / None, float64 (legacy)
  and hyperparameters assigned between sparse steps (see ``record_keras_generations``)

Every case drives the optimizer for ``STEPS`` steps on three float32 variables
``w`` (2, 3), ``b`` (3,) and ``s`` () with gradients that are fed directly (no
loss).  Gradients are ``rng.normal(size) * gscale`` in float32, except that steps
2 and 5 are all-zero and at step 6 only ``b`` is zero.  Each case uses its own
``numpy.random.default_rng`` seed (CRC32 of the case name), so a case with the
same name in two files sees the same data.  Everything runs on the CPU in
float32.  For every step the file holds the gradients fed, the variables and the
optimizer slots after the step (``ms`` / ``mg`` / ``mom``), and the learning rate
the framework used (``lr_per_step``; for tf_keras, the schedule alone, before the
inverse-time ``decay``).  Numbers are the exact float32 values written as Python
floats.

Usage (each framework runs in its own subprocess, so backends do not clash)::

    pip install tensorflow-cpu tf-keras keras torch numpy
    python tests/reference/record.py {keras,keras3,tf1,torch,keras_sparse,keras_frontend,
                                      torch_long,tf_long,keras_generations,all}
    python tests/reference/record.py check      # only validate existing files

Recorded with: Python 3.11, numpy 2.4.6, tensorflow 2.21.0 (CPU), tf_keras 2.21.0,
keras 3.15.1, torch 2.13.0+cpu (keras_generations: also jax 0.10.2 for Keras 3's JAX
backend).  The exact versions are stored in every file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

# Set before any framework import (those happen inside the record_* functions).
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ["KERAS_BACKEND"] = "tensorflow"

HERE = Path(__file__).resolve().parent
STEPS = 8
SHAPES = {"w": (2, 3), "b": (3,), "s": ()}
NAMES = ("w", "b", "s")
FRAMEWORKS = (
    "keras",
    "keras3",
    "tf1",
    "torch",
    "keras_sparse",
    "keras_frontend",
    "torch_long",
    "tf_long",
    "keras_generations",
)

# (rho, epsilon, lr, gscale)
BASE_HYPERS = [
    (0.9, 1e-7, 0.01, 1.0),
    (0.0, 1e-7, 0.01, 1.0),
    (0.95, 1e-3, 0.1, 1.0),
    (0.9, 1e-7, 0.01, 1e-4),
]


# --------------------------------------------------------------------------
# Shared helpers (numpy only)
# --------------------------------------------------------------------------


def f32(x):
    """float32 value(s) as (nested lists of) Python floats, exactly."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 0:
        return float(a)
    return a.tolist()


def sparse_grads_json(grads: list[dict]) -> list[dict]:
    """Sparse-case gradients as stored: the table's (indices, values) and the dense leaf."""
    return [
        {
            "table": {"indices": [int(i) for i in g["table"][0]], "values": f32(g["table"][1])},
            "dense": f32(g["dense"]),
        }
        for g in grads
    ]


def tree_f32(d):
    return {k: f32(v) for k, v in d.items()}


def make_config(
    convention,
    rho,
    momentum,
    epsilon,
    centered,
    *,
    clipnorm=None,
    clipvalue=None,
    global_clipnorm=None,
    decay=0.0,
    weight_decay=None,
    maximize=False,
):
    return {
        "convention": convention,
        "rho": rho,
        "momentum": momentum,
        "epsilon": epsilon,
        "centered": centered,
        "clipnorm": clipnorm,
        "clipvalue": clipvalue,
        "global_clipnorm": global_clipnorm,
        "inverse_time_decay": decay,
        "weight_decay": weight_decay,
        "maximize": maximize,
    }


def case_name(prefix, momentum, centered, rho, eps, lr, gscale):
    lr_s = "sched" if lr is None else f"{lr:g}"
    base = (
        f"m{momentum:g}_{'centered' if centered else 'uncentered'}"
        f"_rho{rho:g}_eps{eps:g}_lr{lr_s}_g{gscale:g}"
    )
    return f"{prefix}_{base}" if prefix else base


def make_data(name, gscale):
    """params0 and the STEPS gradients for a case, float32 numpy arrays."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params0 = {k: rng.normal(size=SHAPES[k]).astype(np.float32) for k in NAMES}
    grads = []
    for step in range(STEPS):
        g = {k: (rng.normal(size=SHAPES[k]) * gscale).astype(np.float32) for k in NAMES}
        if step in (2, 5):
            g = {k: np.zeros(SHAPES[k], np.float32) for k in NAMES}
        if step == 6:
            g["b"] = np.zeros(SHAPES["b"], np.float32)
        grads.append(g)
    return params0, grads


def base_grid(prefix=""):
    """The 16 shared cases: (name, momentum, centered, rho, eps, lr, gscale)."""
    out = []
    for momentum in (0.0, 0.9):
        for centered in (False, True):
            for rho, eps, lr, gscale in BASE_HYPERS:
                name = case_name(prefix, momentum, centered, rho, eps, lr, gscale)
                out.append((name, momentum, centered, rho, eps, lr, gscale))
    return out


def new_case(name, config, learning_rate, schedule, gscale):
    params0, grads = make_data(name, gscale)
    case = {
        "name": name,
        "config": config,
        "learning_rate": learning_rate,
        "schedule": schedule,
        "lr_per_step": [],
        "params0": tree_f32(params0),
        "grads": [tree_f32(g) for g in grads],
        "params": [],
        "slots": [],
    }
    return case, params0, grads


def write_file(framework, fw_label, versions, cases, steps=STEPS):
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    sep = (",", ":")
    head = json.dumps({"framework": fw_label, "versions": versions, "steps": steps}, separators=sep)
    body = ",\n".join(json.dumps(c, separators=sep, allow_nan=True) for c in cases)
    text = head[:-1] + ',"cases":[\n' + body + "\n]}\n"
    path = HERE / f"{framework}.json"
    path.write_text(text)
    print(f"wrote {path} ({len(cases)} cases, {len(text.encode())} bytes)")


def base_versions():
    return {"python": platform.python_version(), "numpy": np.__version__}


# --------------------------------------------------------------------------
# tf_keras legacy (OptimizerV2)
# --------------------------------------------------------------------------


def record_keras():
    import tensorflow as tf
    import tf_keras

    tf.config.set_visible_devices([], "GPU")
    sched = tf_keras.optimizers.schedules
    Opt = tf_keras.optimizers.legacy.RMSprop

    # Docs example: var=10, loss=var**2/2 (grad=var), lr=0.1 -> 9.683772.
    var = tf.Variable(10.0)
    opt = Opt(learning_rate=0.1)
    opt.apply_gradients([(tf.convert_to_tensor(var), var)])
    print(f"tf_keras docs example: {var.numpy():.6f} (expected 9.683772)")
    assert abs(float(var.numpy()) - 9.683772) < 1e-6

    specs = []  # (name, momentum, centered, rho, eps, lr_or_schedule, gscale, extra)
    for name, m, c, rho, eps, lr, gs in base_grid():
        specs.append((name, m, c, rho, eps, lr, gs, {}))
    clips = [
        ("clipvalue0.5", {"clipvalue": 0.5}),
        ("clipnorm1", {"clipnorm": 1.0}),
        ("globalclipnorm1", {"global_clipnorm": 1.0}),
        ("clipvalue0.5_clipnorm1", {"clipvalue": 0.5, "clipnorm": 1.0}),
        ("clipvalue0.5_globalclipnorm1", {"clipvalue": 0.5, "global_clipnorm": 1.0}),
    ]
    for prefix, kw in clips:
        specs.append(
            (
                case_name(prefix, 0.5, False, 0.9, 1e-7, 0.01, 2.0),
                0.5,
                False,
                0.9,
                1e-7,
                0.01,
                2.0,
                kw,
            )
        )
    for m in (0.0, 0.9):
        specs.append(
            (
                case_name("decay0.1", m, False, 0.9, 1e-7, 0.1, 1.0),
                m,
                False,
                0.9,
                1e-7,
                0.1,
                1.0,
                {"decay": 0.1},
            )
        )
    schedules = [
        lambda: sched.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5),
        lambda: sched.PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),
        lambda: sched.InverseTimeDecay(0.1, decay_steps=2, decay_rate=0.5),
        lambda: sched.PolynomialDecay(0.1, decay_steps=6, end_learning_rate=0.01, power=2.0),
        lambda: sched.CosineDecay(0.1, decay_steps=6, alpha=0.1),
    ]
    for i, mk in enumerate(schedules):
        c = i % 2 == 1
        cls = type(mk()).__name__
        specs.append(
            (case_name(f"sched{cls}", 0.9, c, 0.9, 1e-7, None, 1.0), 0.9, c, 0.9, 1e-7, mk, 1.0, {})
        )
    for mk in schedules[:2]:
        cls = type(mk()).__name__
        specs.append(
            (
                case_name(f"sched{cls}", 0.0, False, 0.9, 1e-7, None, 1.0),
                0.0,
                False,
                0.9,
                1e-7,
                mk,
                1.0,
                {},
            )
        )
    specs.append(
        (
            case_name("schedExponentialDecay_decay0.05", 0.9, False, 0.9, 1e-7, None, 1.0),
            0.9,
            False,
            0.9,
            1e-7,
            schedules[0],
            1.0,
            {"decay": 0.05},
        )
    )

    cases = []
    for name, m, c, rho, eps, lr, gs, extra in specs:
        decay = extra.get("decay", 0.0)
        clip_kw = {k: v for k, v in extra.items() if k != "decay"}
        config = make_config("keras", rho, m, eps, c, decay=decay, **clip_kw)
        if callable(lr):
            schedule_obj = lr()
            schedule = {
                "class_name": type(schedule_obj).__name__,
                "config": schedule_obj.get_config(),
            }
            learning_rate = None
            opt_lr = schedule_obj
        else:
            schedule_obj, schedule, learning_rate, opt_lr = None, None, lr, lr
        case, params0, grads = new_case(name, config, learning_rate, schedule, gs)
        variables = {k: tf.Variable(params0[k], dtype=tf.float32, name=k) for k in NAMES}
        opt = Opt(
            learning_rate=opt_lr,
            rho=rho,
            momentum=m,
            epsilon=eps,
            centered=c,
            decay=decay,
            **clip_kw,
        )
        for g in grads:
            if schedule_obj is not None:
                lr_now = schedule_obj(tf.cast(opt.iterations, tf.float32))
            else:
                lr_now = np.float32(lr)
            case["lr_per_step"].append(f32(lr_now))
            opt.apply_gradients([(tf.constant(g[k]), variables[k]) for k in NAMES])
            case["params"].append({k: f32(variables[k].numpy()) for k in NAMES})
            slots = {"ms": {k: f32(opt.get_slot(variables[k], "rms").numpy()) for k in NAMES}}
            if c:
                slots["mg"] = {k: f32(opt.get_slot(variables[k], "mg").numpy()) for k in NAMES}
            if m > 0:
                slots["mom"] = {
                    k: f32(opt.get_slot(variables[k], "momentum").numpy()) for k in NAMES
                }
            case["slots"].append(slots)
        assert int(opt.iterations.numpy()) == STEPS
        cases.append(case)

    versions = {**base_versions(), "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__}
    write_file("keras", "tf_keras.optimizers.legacy.RMSprop", versions, cases)


# --------------------------------------------------------------------------
# Keras 3 (TensorFlow backend)
# --------------------------------------------------------------------------


def record_keras3():
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    import keras

    assert keras.backend.backend() == "tensorflow"
    sched = keras.optimizers.schedules

    specs = []
    for name, m, c, rho, eps, lr, gs in base_grid():
        specs.append((name, m, c, rho, eps, lr, gs, {}))
    for m in (0.0, 0.9):
        specs.append(
            (
                case_name("wd0.01", m, False, 0.9, 1e-7, 0.01, 1.0),
                m,
                False,
                0.9,
                1e-7,
                0.01,
                1.0,
                {"weight_decay": 0.01},
            )
        )
    for prefix, kw in [
        ("clipvalue0.5", {"clipvalue": 0.5}),
        ("clipnorm1", {"clipnorm": 1.0}),
        ("globalclipnorm1", {"global_clipnorm": 1.0}),
    ]:
        specs.append(
            (
                case_name(prefix, 0.5, False, 0.9, 1e-7, 0.01, 2.0),
                0.5,
                False,
                0.9,
                1e-7,
                0.01,
                2.0,
                kw,
            )
        )
    schedules = [
        lambda: sched.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5),
        lambda: sched.PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),
        lambda: sched.InverseTimeDecay(0.1, decay_steps=2, decay_rate=0.5),
        lambda: sched.PolynomialDecay(0.1, decay_steps=6, end_learning_rate=0.01, power=2.0),
        lambda: sched.CosineDecay(0.1, decay_steps=6, alpha=0.1),
    ]
    for i, mk in enumerate(schedules):
        c = i % 2 == 1
        cls = type(mk()).__name__
        specs.append(
            (case_name(f"sched{cls}", 0.9, c, 0.9, 1e-7, None, 1.0), 0.9, c, 0.9, 1e-7, mk, 1.0, {})
        )

    cases = []
    for name, m, c, rho, eps, lr, gs, extra in specs:
        config = make_config("keras3", rho, m, eps, c, **extra)
        if callable(lr):
            schedule_obj = lr()
            schedule = {
                "class_name": type(schedule_obj).__name__,
                "config": schedule_obj.get_config(),
            }
            learning_rate, opt_lr = None, schedule_obj
        else:
            schedule_obj, schedule, learning_rate, opt_lr = None, None, lr, lr
        case, params0, grads = new_case(name, config, learning_rate, schedule, gs)
        variables = {k: keras.Variable(params0[k], dtype="float32", name=k) for k in NAMES}
        opt = keras.optimizers.RMSprop(
            learning_rate=opt_lr, rho=rho, momentum=m, epsilon=eps, centered=c, **extra
        )
        for step, g in enumerate(grads):
            assert int(opt.iterations.numpy()) == step
            lr_now = f32(np.asarray(opt.learning_rate))
            if schedule_obj is not None:
                # Keras 3 evaluates the schedule at the pre-increment `iterations`.
                assert lr_now == f32(schedule_obj(step)), (name, step)
            case["lr_per_step"].append(lr_now)
            opt.apply_gradients([(tf.constant(g[k]), variables[k]) for k in NAMES])
            case["params"].append({k: f32(np.asarray(variables[k])) for k in NAMES})

            def slot(lst, k, opt=opt, variables=variables):
                return f32(np.asarray(lst[opt._get_variable_index(variables[k])]))

            slots = {"ms": {k: slot(opt._velocities, k) for k in NAMES}}
            if c:
                slots["mg"] = {k: slot(opt._average_gradients, k) for k in NAMES}
            if m > 0:
                slots["mom"] = {k: slot(opt._momentums, k) for k in NAMES}
            case["slots"].append(slots)
        assert int(opt.iterations.numpy()) == STEPS
        cases.append(case)

    versions = {
        **base_versions(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "keras_backend": keras.backend.backend(),
    }
    write_file("keras3", "keras.optimizers.RMSprop", versions, cases)


# --------------------------------------------------------------------------
# TF1 tf.compat.v1.train.RMSPropOptimizer
# --------------------------------------------------------------------------


def geometric_lr(k):
    return np.float32(0.1 * 0.7**k)


GEOMETRIC_SCHEDULE = {
    "class_name": "Geometric",
    "config": {"expression": "float32(0.1 * 0.7**k)", "k": "steps done so far"},
}


def record_tf1():
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    assert tf.executing_eagerly()

    specs = []
    for name, m, c, rho, eps, lr, gs in base_grid():
        specs.append((name, m, c, rho, eps, lr, gs))
    for m in (0.0, 0.9):
        specs.append(
            (case_name("", m, False, 0.9, 1e-10, 0.01, 1.0), m, False, 0.9, 1e-10, 0.01, 1.0)
        )
    for m in (0.9, 0.0):
        specs.append(
            (
                case_name("schedGeometric0.7", m, False, 0.9, 1e-7, None, 1.0),
                m,
                False,
                0.9,
                1e-7,
                "geometric",
                1.0,
            )
        )

    cases = []
    for name, m, c, rho, eps, lr, gs in specs:
        config = make_config("tf1", rho, m, eps, c)
        sched = lr == "geometric"
        case, params0, grads = new_case(
            name, config, None if sched else lr, GEOMETRIC_SCHEDULE if sched else None, gs
        )
        variables = {k: tf.Variable(params0[k], dtype=tf.float32, name=k) for k in NAMES}
        counter = [0]
        used = []

        def lr_fn(counter=counter, used=used):
            v = geometric_lr(counter[0])
            used.append(v)
            return tf.constant(v, tf.float32)

        opt = tf.compat.v1.train.RMSPropOptimizer(
            lr_fn if sched else lr, decay=rho, momentum=m, epsilon=eps, centered=c
        )
        for step, g in enumerate(grads):
            counter[0] = step
            n_used = len(used)
            opt.apply_gradients([(tf.constant(g[k]), variables[k]) for k in NAMES])
            if sched:
                assert len(used) == n_used + 1, "callable lr not called once per step"
                case["lr_per_step"].append(f32(used[-1]))
            else:
                case["lr_per_step"].append(f32(lr))
            case["params"].append({k: f32(variables[k].numpy()) for k in NAMES})
            slots = {"ms": {k: f32(opt.get_slot(variables[k], "rms").numpy()) for k in NAMES}}
            if c:
                slots["mg"] = {k: f32(opt.get_slot(variables[k], "mg").numpy()) for k in NAMES}
            slots["mom"] = {k: f32(opt.get_slot(variables[k], "momentum").numpy()) for k in NAMES}
            case["slots"].append(slots)
        cases.append(case)

    versions = {**base_versions(), "tensorflow": tf.__version__}
    write_file("tf1", "tf.compat.v1.train.RMSPropOptimizer", versions, cases)


# --------------------------------------------------------------------------
# torch.optim.RMSprop
# --------------------------------------------------------------------------


def record_torch():
    import torch

    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)

    specs = []  # name, m, c, rho, eps, lr, gs, wd, maximize
    for name, m, c, rho, eps, lr, gs in base_grid():
        specs.append((name, m, c, rho, eps, lr, gs, None, False))
    for m in (0.0, 0.9):
        specs.append(
            (
                case_name("wd0.01", m, False, 0.9, 1e-7, 0.01, 1.0),
                m,
                False,
                0.9,
                1e-7,
                0.01,
                1.0,
                0.01,
                False,
            )
        )
    for m, c in ((0.0, False), (0.9, True)):
        specs.append(
            (
                case_name("maximize", m, c, 0.9, 1e-7, 0.01, 1.0),
                m,
                c,
                0.9,
                1e-7,
                0.01,
                1.0,
                None,
                True,
            )
        )
    for c in (False, True):
        specs.append(
            (
                case_name("schedGeometric0.7", 0.9, c, 0.9, 1e-7, None, 1.0),
                0.9,
                c,
                0.9,
                1e-7,
                "geometric",
                1.0,
                None,
                False,
            )
        )

    cases = []
    for name, m, c, rho, eps, lr, gs, wd, maximize in specs:
        config = make_config("torch", rho, m, eps, c, weight_decay=wd, maximize=maximize)
        sched = lr == "geometric"
        case, params0, grads = new_case(
            name, config, None if sched else lr, GEOMETRIC_SCHEDULE if sched else None, gs
        )
        params = {
            k: torch.tensor(params0[k], dtype=torch.float32, requires_grad=True) for k in NAMES
        }
        opt = torch.optim.RMSprop(
            [params[k] for k in NAMES],
            lr=0.1 if sched else lr,
            alpha=rho,
            eps=eps,
            weight_decay=0.0 if wd is None else wd,
            momentum=m,
            centered=c,
            maximize=maximize,
            foreach=False,
        )
        for step, g in enumerate(grads):
            if sched:
                opt.param_groups[0]["lr"] = float(geometric_lr(step))
            case["lr_per_step"].append(f32(opt.param_groups[0]["lr"]))
            for k in NAMES:
                params[k].grad = torch.tensor(g[k], dtype=torch.float32)
            opt.step()
            case["params"].append({k: f32(params[k].detach().numpy()) for k in NAMES})
            st = {k: opt.state[params[k]] for k in NAMES}
            slots = {"ms": {k: f32(st[k]["square_avg"].numpy()) for k in NAMES}}
            if c:
                slots["mg"] = {k: f32(st[k]["grad_avg"].numpy()) for k in NAMES}
            if m > 0:
                slots["mom"] = {k: f32(st[k]["momentum_buffer"].numpy()) for k in NAMES}
            else:
                assert all("momentum_buffer" not in st[k] for k in NAMES)
            case["slots"].append(slots)
        cases.append(case)

    versions = {**base_versions(), "torch": torch.__version__}
    write_file("torch", "torch.optim.RMSprop", versions, cases)


# --------------------------------------------------------------------------
# tf_keras legacy (OptimizerV2), sparse path: tf.IndexedSlices gradients
# --------------------------------------------------------------------------
#
# Two variables: ``table`` (12, 3) gets an IndexedSlices gradient, ``dense``
# (4,) a dense one; both go through one ``apply_gradients`` call per step.
# What OptimizerV2 does with the IndexedSlices (verified by the asserts below):
#
# * clipvalue / clipnorm / global_clipnorm act on the raw ``values`` (norms over
#   the raw values, duplicates counted separately), BEFORE deduplication;
# * ``_resource_apply_sparse_duplicate_indices`` then sums duplicate indices
#   (``tf.unique`` + ``unsorted_segment_sum``) and calls ``_resource_apply_sparse``;
# * momentum == 0: ``rms`` (and ``mg``) are multiplied by rho on EVERY row, even
#   for an empty IndexedSlices, then (1 - rho) * g**2 (and (1 - rho) * g) is
#   scatter-added on the touched rows; only the touched rows of the table move;
# * momentum > 0: the ``ResourceSparseApply[Centered]RMSProp`` kernel changes only
#   the touched rows of var, ms, mg and mom; untouched rows keep their values.

SPARSE_STEPS = 20
SPARSE_SHAPES = {"table": (12, 3), "dense": (4,)}
SPARSE_NAMES = ("table", "dense")
# Number of (possibly duplicated) indices at each step; steps 2 and 12 are empty.
SPARSE_COUNTS = (5, 3, 0, 6, 4, 2, 1, 6, 3, 5, 4, 2, 0, 6, 3, 5, 1, 4, 6, 2)
SPARSE_DENSE_ZERO_STEPS = (4, 9)
SPARSE_ROW_SKIPPED = 11  # touched at step 0, then not again until step 15
SPARSE_ROW_SKIPPED_AGAIN = 15
SPARSE_ROW_NEVER = 10  # never touched


def sparse_indices(rng, step):
    """int32 indices for one step: duplicates, unsorted, rows 10/11 as documented."""
    n = SPARSE_COUNTS[step]
    if n == 0:
        return np.zeros((0,), np.int32)
    pool = np.arange(10)  # rows 0..9; row 10 never, row 11 only when forced
    if n == 1:
        idx = list(rng.choice(pool, size=1))
    else:
        reps = 3 if n >= 5 else 2  # one row repeated (3 times when n >= 5)
        r = int(rng.choice(pool))
        others = [int(x) for x in rng.choice(pool, size=n - reps)]
        if step == 0:
            others[0] = SPARSE_ROW_SKIPPED  # touched once at step 0
        if step == SPARSE_ROW_SKIPPED_AGAIN:
            r = SPARSE_ROW_SKIPPED  # touched again (3 times) after 14 steps away
        idx = [r] * reps + others
        idx = [idx[i] for i in rng.permutation(n)]
    return np.asarray(idx, np.int32)


def make_sparse_data(name, gscale):
    """params0 and SPARSE_STEPS gradients (table: (indices, values); dense: array)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params0 = {k: rng.normal(size=SPARSE_SHAPES[k]).astype(np.float32) for k in SPARSE_NAMES}
    grads = []
    for step in range(SPARSE_STEPS):
        idx = sparse_indices(rng, step)
        vals = (rng.normal(size=(len(idx), 3)) * gscale).astype(np.float32).reshape(len(idx), 3)
        dense = (rng.normal(size=SPARSE_SHAPES["dense"]) * gscale).astype(np.float32)
        if step in SPARSE_DENSE_ZERO_STEPS:
            dense = np.zeros(SPARSE_SHAPES["dense"], np.float32)
        grads.append({"table": (idx, vals), "dense": dense})
    touched = [set(g["table"][0].tolist()) for g in grads]
    assert any(len(g["table"][0]) == 0 for g in grads)
    assert SPARSE_ROW_NEVER not in set().union(*touched)
    assert [s for s, t in enumerate(touched) if SPARSE_ROW_SKIPPED in t][:2] == [
        0,
        SPARSE_ROW_SKIPPED_AGAIN,
    ]
    return params0, grads


def sparse_specs():
    """(name, momentum, centered, rho, eps, lr, gscale, clip_kwargs)."""
    specs = []
    for momentum in (0.0, 0.9):
        for centered in (False, True):
            name = case_name("sparse", momentum, centered, 0.9, 1e-7, 0.01, 1.0)
            specs.append((name, momentum, centered, 0.9, 1e-7, 0.01, 1.0, {}))
    for momentum in (0.0, 0.9):
        name = case_name("sparse", momentum, False, 0.95, 1e-3, 0.1, 1.0)
        specs.append((name, momentum, False, 0.95, 1e-3, 0.1, 1.0, {}))
    for prefix, kw in [
        ("clipvalue0.5", {"clipvalue": 0.5}),
        ("clipnorm1", {"clipnorm": 1.0}),
        ("globalclipnorm1", {"global_clipnorm": 1.0}),
    ]:
        name = case_name(f"sparse_{prefix}", 0.5, False, 0.9, 1e-7, 0.01, 2.0)
        specs.append((name, 0.5, False, 0.9, 1e-7, 0.01, 2.0, kw))
    return specs


def record_keras_sparse():
    import tensorflow as tf
    import tf_keras

    tf.config.set_visible_devices([], "GPU")
    assert tf.executing_eagerly()
    Opt = tf_keras.optimizers.legacy.RMSprop

    cases = []
    for name, m, c, rho, eps, lr, gs, clip_kw in sparse_specs():
        config = make_config("keras", rho, m, eps, c, **clip_kw)
        params0, grads = make_sparse_data(name, gs)
        case = {
            "name": name,
            "config": config,
            "learning_rate": lr,
            "schedule": None,
            "lr_per_step": [],
            "params0": tree_f32(params0),
            "grads": sparse_grads_json(grads),
            "params": [],
            "slots": [],
        }
        variables = {k: tf.Variable(params0[k], dtype=tf.float32, name=k) for k in SPARSE_NAMES}
        opt = Opt(learning_rate=lr, rho=rho, momentum=m, epsilon=eps, centered=c, **clip_kw)
        slot_names = {"ms": "rms"}
        if c:
            slot_names["mg"] = "mg"
        if m > 0:
            slot_names["mom"] = "momentum"
        prev = None
        for g in grads:
            idx, vals = g["table"]
            sparse = tf.IndexedSlices(
                tf.constant(vals, tf.float32),
                tf.constant(idx, tf.int32),
                tf.constant(SPARSE_SHAPES["table"], tf.int32),
            )
            case["lr_per_step"].append(f32(lr))
            opt.apply_gradients(
                [(sparse, variables["table"]), (tf.constant(g["dense"]), variables["dense"])]
            )
            now = {"params": {k: variables[k].numpy() for k in SPARSE_NAMES}}
            for key, slot in slot_names.items():
                now[key] = {k: opt.get_slot(variables[k], slot).numpy() for k in SPARSE_NAMES}
            # Structural checks on the table's untouched rows (see the note above).
            if prev is None:
                prev = {"params": {"table": params0["table"]}}
                prev.update({key: {"table": np.zeros((12, 3), np.float32)} for key in slot_names})
            untouched = np.setdiff1d(np.arange(12), idx)
            assert np.array_equal(
                now["params"]["table"][untouched], prev["params"]["table"][untouched]
            ), name
            for key in slot_names:
                old = prev[key]["table"][untouched]
                new = now[key]["table"][untouched]
                if m == 0:  # ms / mg decay by rho on every row
                    assert np.array_equal(new, old * np.float32(rho)), (name, key)
                else:  # sparse kernel: untouched rows untouched
                    assert np.array_equal(new, old), (name, key)
            prev = now
            case["params"].append({k: f32(now["params"][k]) for k in SPARSE_NAMES})
            case["slots"].append(
                {key: {k: f32(now[key][k]) for k in SPARSE_NAMES} for key in slot_names}
            )
        assert int(opt.iterations.numpy()) == SPARSE_STEPS
        cases.append(case)

    versions = {**base_versions(), "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__}
    write_file(
        "keras_sparse",
        "tf_keras.optimizers.legacy.RMSprop (IndexedSlices)",
        versions,
        cases,
        steps=SPARSE_STEPS,
    )


# --------------------------------------------------------------------------
# Keras front end: schedules, optimizer configs, weights, resume (tf_keras / Keras 3)
# --------------------------------------------------------------------------
#
# ``keras_frontend.json`` holds what a user-facing Keras front end needs:
#
# * ``schedules``: each learning-rate schedule serialized by tf_keras
#   (``tf_keras.optimizers.schedules.serialize``) and by Keras 3
#   (``keras.optimizers.schedules.serialize``), with its float32 values at steps
#   0..FRONTEND_SCHEDULE_STEPS-1 evaluated the way OptimizerV2 does
#   (``schedule(tf.cast(iterations, tf.float32))``, tf_keras object);
# * ``optimizer_configs``: ``get_config()`` of a few optimizers, JSON-converted
#   (numpy scalars -> Python scalars, the exact float32 value for float32), and
#   ``optimizer_config_types``: the ``type(value).__name__`` of each raw value;
# * ``resume`` / ``resume_plain``: a tf_keras legacy RMSprop driven for
#   FRONTEND_RESUME_FIRST steps (config, ``get_weights()`` and weight names,
#   params), then FRONTEND_RESUME_MORE further steps (params after each);
#   gradients are fed, the bias gradient is all zeros at the first step;
# * ``docs_example``: the tf.keras docs example (``minimize`` on var1 = 10,
#   loss = var1**2 / 2, lr 0.1).

FRONTEND_SCHEDULE_STEPS = 25
FRONTEND_RESUME_SHAPES = {"kernel": (3, 2), "bias": (2,)}
FRONTEND_RESUME_NAMES = ("kernel", "bias")
FRONTEND_RESUME_FIRST = 3
FRONTEND_RESUME_MORE = 4
FRONTEND_CONFIG_KEYS = (
    "tf_keras_legacy",
    "tf_keras_legacy_plain",
    "tf_keras_legacy_global",
    "keras3",
    "keras3_schedule",
)

# (name, class name, args, kwargs); the same for tf_keras and Keras 3.
FRONTEND_SCHEDULES = [
    ("exponential", "ExponentialDecay", (0.1,), {"decay_steps": 3, "decay_rate": 0.5}),
    (
        "exponential_staircase",
        "ExponentialDecay",
        (0.1,),
        {"decay_steps": 3, "decay_rate": 0.5, "staircase": True},
    ),
    ("piecewise", "PiecewiseConstantDecay", ([2, 5], [0.1, 0.05, 0.01]), {}),
    (
        "polynomial_power2",
        "PolynomialDecay",
        (0.1,),
        {"decay_steps": 6, "end_learning_rate": 0.01, "power": 2.0},
    ),
    (
        "polynomial_cycle",
        "PolynomialDecay",
        (0.1,),
        {"decay_steps": 4, "end_learning_rate": 0.01, "power": 1.0, "cycle": True},
    ),
    ("inverse_time", "InverseTimeDecay", (0.1,), {"decay_steps": 2, "decay_rate": 0.5}),
    (
        "inverse_time_staircase",
        "InverseTimeDecay",
        (0.1,),
        {"decay_steps": 2, "decay_rate": 0.5, "staircase": True},
    ),
    ("cosine", "CosineDecay", (0.1,), {"decay_steps": 6, "alpha": 0.1}),
    (
        "cosine_warmup",
        "CosineDecay",
        (0.1,),
        {"decay_steps": 6, "alpha": 0.1, "warmup_target": 0.2, "warmup_steps": 3},
    ),
    (
        "cosine_restarts",
        "CosineDecayRestarts",
        (0.1,),
        {"first_decay_steps": 3, "t_mul": 2.0, "m_mul": 0.5, "alpha": 0.05},
    ),
    (
        "cosine_restarts_constant",
        "CosineDecayRestarts",
        (0.1,),
        {"first_decay_steps": 4, "t_mul": 1.0, "m_mul": 1.0, "alpha": 0.0},
    ),
]


def to_json(x):
    """A get_config()/serialize() value as plain JSON (numpy scalars -> Python)."""
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_json(x.tolist())
    if isinstance(x, np.generic):
        return x.item()  # np.float32 -> its exact value as a Python float
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"not JSON-convertible: {type(x).__name__} {x!r}")


def config_types(config):
    return {k: type(v).__name__ for k, v in config.items()}


def make_resume_data(name, shapes=None, names=None, steps=None):
    """params0 and the fed gradients of a resume case; bias gradient zero at the first step.

    Defaults: the front-end resume case (FIRST + MORE steps on kernel and bias); the
    generations recorder passes its own shapes, names and step count.
    """
    shapes = shapes or FRONTEND_RESUME_SHAPES
    names = names or FRONTEND_RESUME_NAMES
    steps = steps or FRONTEND_RESUME_FIRST + FRONTEND_RESUME_MORE
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params0 = {k: rng.normal(size=shapes[k]).astype(np.float32) for k in names}
    grads = []
    for step in range(steps):
        g = {k: rng.normal(size=shapes[k]).astype(np.float32) for k in names}
        if step == 0:
            g["bias"] = np.zeros(shapes["bias"], np.float32)
        grads.append(g)
    return params0, grads


def record_keras_frontend():
    import tensorflow as tf
    import tf_keras

    tf.config.set_visible_devices([], "GPU")
    import keras

    assert keras.backend.backend() == "tensorflow"
    assert tf.executing_eagerly()
    tk_sched = tf_keras.optimizers.schedules
    k3_sched = keras.optimizers.schedules
    Legacy = tf_keras.optimizers.legacy.RMSprop

    # ---- schedules
    schedules = []
    for name, cls, args, kwargs in FRONTEND_SCHEDULES:
        s = getattr(tk_sched, cls)(*args, **kwargs)
        s3 = getattr(k3_sched, cls)(*args, **kwargs)
        values = [
            f32(s(tf.constant(step, tf.float32)).numpy()) for step in range(FRONTEND_SCHEDULE_STEPS)
        ]
        # Keras 3 (its optimizer calls the schedule on the int `iterations`).
        v3 = [f32(np.asarray(s3(step))) for step in range(FRONTEND_SCHEDULE_STEPS)]
        diff = max(abs(a - b) for a, b in zip(values, v3, strict=True))
        print(f"schedule {name}: max |tf_keras - keras3| = {diff:.3g}")
        assert diff < 1e-6, (name, values, v3)
        schedules.append(
            {
                "name": name,
                "class_name": cls,
                "tf_keras_serialized": to_json(tk_sched.serialize(s)),
                "keras3_serialized": to_json(k3_sched.serialize(s3)),
                "values": values,
            }
        )

    # ---- optimizer configs
    raw = {
        "tf_keras_legacy": Legacy(
            learning_rate=tk_sched.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5),
            rho=0.8,
            momentum=0.5,
            epsilon=1e-6,
            centered=True,
            clipnorm=1.0,
            decay=0.01,
        ).get_config(),
        "tf_keras_legacy_plain": Legacy().get_config(),
        "tf_keras_legacy_global": Legacy(0.01, global_clipnorm=2.0, clipvalue=0.5).get_config(),
        "keras3": keras.optimizers.RMSprop(
            learning_rate=0.01, rho=0.8, momentum=0.5, centered=True, clipnorm=1.0
        ).get_config(),
        "keras3_schedule": keras.optimizers.RMSprop(
            learning_rate=k3_sched.CosineDecay(0.1, 10)
        ).get_config(),
    }
    assert tuple(raw) == FRONTEND_CONFIG_KEYS
    optimizer_configs = {k: to_json(v) for k, v in raw.items()}
    optimizer_config_types = {k: config_types(v) for k, v in raw.items()}

    # ---- resume
    def resume(name, make_opt):
        params0, grads = make_resume_data(name)
        variables = {
            k: tf.Variable(params0[k], dtype=tf.float32, name=k) for k in FRONTEND_RESUME_NAMES
        }
        opt = make_opt()

        def step(g):
            opt.apply_gradients(
                zip(
                    [tf.constant(g[k]) for k in FRONTEND_RESUME_NAMES],
                    [variables[k] for k in FRONTEND_RESUME_NAMES],
                    strict=True,
                )
            )

        def params():
            return {k: f32(variables[k].numpy()) for k in FRONTEND_RESUME_NAMES}

        for g in grads[:FRONTEND_RESUME_FIRST]:
            step(g)
        assert int(opt.iterations.numpy()) == FRONTEND_RESUME_FIRST
        config = opt.get_config()
        weights = opt.get_weights()
        out = {
            "name": name,
            "steps_first": FRONTEND_RESUME_FIRST,
            "steps_more": FRONTEND_RESUME_MORE,
            "params0": tree_f32(params0),
            "grads": [tree_f32(g) for g in grads],
            "config": to_json(config),
            "config_types": config_types(config),
            "weight_names": [w.name for w in opt.weights],
            "weights_after_3": [to_json(np.asarray(w)) for w in weights],
            "weight_dtypes": [str(np.asarray(w).dtype) for w in weights],
            "params_after_3": params(),
            "params_after": [],
        }
        assert len(out["weight_names"]) == len(weights)
        for g in grads[FRONTEND_RESUME_FIRST:]:
            step(g)
            out["params_after"].append(params())
        assert int(opt.iterations.numpy()) == FRONTEND_RESUME_FIRST + FRONTEND_RESUME_MORE
        return out

    resume_main = resume(
        "resume",
        lambda: Legacy(
            learning_rate=tk_sched.ExponentialDecay(0.05, 2, 0.7),
            rho=0.85,
            momentum=0.6,
            epsilon=1e-6,
            centered=True,
            clipnorm=1.5,
        ),
    )
    resume_plain = resume(
        "resume_plain",
        lambda: Legacy(learning_rate=0.01, rho=0.9, momentum=0.0, centered=False),
    )

    # ---- tf.keras docs example
    opt = Legacy(learning_rate=0.1)
    var1 = tf.Variable(10.0)

    def loss():
        return (var1**2) / 2.0

    step_count = opt.minimize(loss, [var1]).numpy()
    value = var1.numpy()
    print(f"docs example: step_count={step_count!r} var1={value!r} (docs: 9.683772)")
    assert abs(float(value) - 9.683772) < 1e-6
    config = opt.get_config()
    weights = opt.get_weights()
    docs_example = {
        "learning_rate": 0.1,
        "var1_initial": 10.0,
        "loss": "(var1 ** 2) / 2.0",
        "step_count": to_json(step_count),
        "step_count_type": type(step_count).__name__,
        "var1": f32(value),
        "config": to_json(config),
        "config_types": config_types(config),
        "weights": [to_json(np.asarray(w)) for w in weights],
        "weight_names": [w.name for w in opt.weights],
    }

    versions = {
        **base_versions(),
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
    }
    sep = (",", ":")
    parts = [
        '"versions":' + json.dumps(versions, separators=sep),
        '"schedules":[\n' + ",\n".join(json.dumps(s, separators=sep) for s in schedules) + "\n]",
        '"optimizer_configs":' + json.dumps(optimizer_configs, separators=sep),
        '"optimizer_config_types":' + json.dumps(optimizer_config_types, separators=sep),
        '"resume":' + json.dumps(resume_main, separators=sep),
        '"resume_plain":' + json.dumps(resume_plain, separators=sep),
        '"docs_example":' + json.dumps(docs_example, separators=sep),
    ]
    text = "{" + ",\n".join(parts) + "}\n"
    json.loads(text)
    path = HERE / "keras_frontend.json"
    path.write_text(text)
    print(f"wrote {path} ({len(schedules)} schedules, {len(text.encode())} bytes)")


# --------------------------------------------------------------------------
# Validation of the written files (numpy only)
# --------------------------------------------------------------------------

CONFIG_KEYS = {
    "convention",
    "rho",
    "momentum",
    "epsilon",
    "centered",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "decay",
    "weight_decay",
    "maximize",
}


def _check_tree(tree, where):
    assert set(tree) == set(NAMES), where
    for k in NAMES:
        shape = np.asarray(tree[k], dtype=np.float64).shape
        assert shape == SHAPES[k], (where, k, shape)


def check_file(framework):
    path = HERE / f"{framework}.json"
    size = path.stat().st_size
    with path.open() as fh:
        data = json.load(fh)
    assert set(data) == {"framework", "versions", "steps", "cases"}, path
    assert data["steps"] == STEPS
    names = [c["name"] for c in data["cases"]]
    assert len(names) == len(set(names)), path
    n_nonfinite = 0
    for case in data["cases"]:
        n = case["name"]
        cfg = case["config"]
        assert set(cfg) == CONFIG_KEYS, n
        assert cfg["convention"] == framework, n
        assert (case["learning_rate"] is None) == (case["schedule"] is not None), n
        assert len(case["lr_per_step"]) == STEPS, n
        _check_tree(case["params0"], n)
        for key in ("grads", "params", "slots"):
            assert len(case[key]) == STEPS, (n, key)
        for step in range(STEPS):
            _check_tree(case["grads"][step], n)
            _check_tree(case["params"][step], n)
            slots = case["slots"][step]
            want = {"ms"}
            if cfg["centered"]:
                want.add("mg")
            if cfg["momentum"] > 0 or framework == "tf1":
                want.add("mom")
            assert set(slots) == want, (n, set(slots))
            for s in slots.values():
                _check_tree(s, n)
            for k in NAMES:
                if not np.all(np.isfinite(case["params"][step][k])):
                    n_nonfinite += 1
    print(
        f"{path.name}: {len(names)} cases, {size} bytes, shapes OK"
        + (f", {n_nonfinite} non-finite param arrays" if n_nonfinite else "")
    )
    return data


def check_sparse_file(framework="keras_sparse"):
    path = HERE / f"{framework}.json"
    size = path.stat().st_size
    with path.open() as fh:
        data = json.load(fh)
    assert set(data) == {"framework", "versions", "steps", "cases"}, path
    assert data["steps"] == SPARSE_STEPS
    names = [c["name"] for c in data["cases"]]
    assert len(names) == len(set(names)), path

    def tree(t, where):
        assert set(t) == set(SPARSE_NAMES), where
        for k in SPARSE_NAMES:
            shape = np.asarray(t[k], dtype=np.float64).shape
            assert shape == SPARSE_SHAPES[k], (where, k, shape)

    for case in data["cases"]:
        n = case["name"]
        cfg = case["config"]
        assert set(cfg) == CONFIG_KEYS and cfg["convention"] == "keras", n
        assert case["schedule"] is None and case["learning_rate"] is not None, n
        assert len(case["lr_per_step"]) == SPARSE_STEPS, n
        tree(case["params0"], n)
        for key in ("grads", "params", "slots"):
            assert len(case[key]) == SPARSE_STEPS, (n, key)
        for step in range(SPARSE_STEPS):
            g = case["grads"][step]
            assert set(g) == set(SPARSE_NAMES), n
            idx = g["table"]["indices"]
            vals = np.asarray(g["table"]["values"], dtype=np.float64).reshape(-1, 3)
            assert len(idx) == len(vals) and all(0 <= i < 12 for i in idx), (n, step)
            assert np.asarray(g["dense"]).shape == SPARSE_SHAPES["dense"], (n, step)
            tree(case["params"][step], n)
            slots = case["slots"][step]
            want = {"ms"} | ({"mg"} if cfg["centered"] else set())
            want |= {"mom"} if cfg["momentum"] > 0 else set()
            assert set(slots) == want, (n, set(slots))
            for s in slots.values():
                tree(s, n)
            assert all(np.all(np.isfinite(case["params"][step][k])) for k in SPARSE_NAMES), n
    print(f"{path.name}: {len(names)} cases, {size} bytes, shapes OK")
    return data


def check_frontend_file(framework="keras_frontend"):
    path = HERE / f"{framework}.json"
    size = path.stat().st_size
    with path.open() as fh:
        data = json.load(fh)
    assert set(data) == {
        "versions",
        "schedules",
        "optimizer_configs",
        "optimizer_config_types",
        "resume",
        "resume_plain",
        "docs_example",
    }, path
    names = [s["name"] for s in data["schedules"]]
    assert len(names) == len(set(names)), path
    for s in data["schedules"]:
        assert len(s["values"]) == FRONTEND_SCHEDULE_STEPS, s["name"]
        assert all(isinstance(v, float) and np.isfinite(v) for v in s["values"]), s["name"]
        for key in ("tf_keras_serialized", "keras3_serialized"):
            assert s[key]["class_name"] == s["class_name"], (s["name"], key)
            assert isinstance(s[key]["config"], dict), (s["name"], key)
    assert tuple(data["optimizer_configs"]) == FRONTEND_CONFIG_KEYS, path
    for k, cfg in data["optimizer_configs"].items():
        assert set(data["optimizer_config_types"][k]) == set(cfg), k
    steps = FRONTEND_RESUME_FIRST + FRONTEND_RESUME_MORE
    for key in ("resume", "resume_plain"):
        r = data[key]

        def tree(t, where, key=key):
            assert set(t) == set(FRONTEND_RESUME_NAMES), (key, where)
            for k in FRONTEND_RESUME_NAMES:
                shape = np.asarray(t[k], dtype=np.float64).shape
                assert shape == FRONTEND_RESUME_SHAPES[k], (key, where, k, shape)
                assert np.all(np.isfinite(t[k])), (key, where, k)

        tree(r["params0"], "params0")
        tree(r["params_after_3"], "params_after_3")
        assert len(r["grads"]) == steps and len(r["params_after"]) == FRONTEND_RESUME_MORE, key
        for i, g in enumerate(r["grads"]):
            tree(g, f"grads[{i}]")
        for i, p in enumerate(r["params_after"]):
            tree(p, f"params_after[{i}]")
        assert len(r["weight_names"]) == len(r["weights_after_3"]), key
        assert r["weights_after_3"][0] == FRONTEND_RESUME_FIRST, key  # iterations first
    d = data["docs_example"]
    assert abs(d["var1"] - 9.683772) < 1e-6, d["var1"]
    assert len(d["weight_names"]) == len(d["weights"])
    print(f"{path.name}: {len(names)} schedules, {size} bytes, shapes OK")
    return data


# --------------------------------------------------------------------------
# Long runs (200 steps): torch_long.json and tf_long.json
# --------------------------------------------------------------------------
#
# One param ``w`` of shape (7,) whose gradient elements span 1e-4 .. 1e2 (``long_gradients``),
# 200 steps, in float32, float64 and (some cases) complex64 (imaginary parts from salt 1).
# Params are recorded after the steps in ``CHECKPOINTS``, every slot after the last step.
# Sparse TF1 runs use a (4, 2) table fed IndexedSlices of two distinct rows per step.
# ``config`` holds the rj.rmsprop keyword arguments that reproduce the run.


def _long_gradients():
    sys.path.insert(0, str(HERE))
    import long_gradients

    return long_gradients


def encode(array):
    """Real arrays as nested lists of exact floats; complex ones as {"re": ..., "im": ...}."""
    a = np.asarray(array)
    if np.iscomplexobj(a):
        return {"re": a.real.astype(np.float64).tolist(), "im": a.imag.astype(np.float64).tolist()}
    return a.astype(np.float64).tolist()


def long_inputs(dtype):
    """params0 and the gradients of every step, as NumPy arrays of ``dtype``."""
    lg = _long_gradients()
    if np.dtype(dtype).kind == "c":
        p0 = (lg.params0(0) + 1j * lg.params0(1)).astype(dtype)
        grads = [(lg.dense(t, 0) + 1j * lg.dense(t, 1)).astype(dtype) for t in range(lg.STEPS)]
    else:
        p0 = lg.params0(0).astype(dtype)
        grads = [lg.dense(t, 0).astype(dtype) for t in range(lg.STEPS)]
    return p0, grads


def write_long(framework, versions, cases):
    lg = _long_gradients()
    sep = (",", ":")
    head = {
        "framework": framework,
        "versions": versions,
        "steps": lg.STEPS,
        "checkpoints": list(lg.CHECKPOINTS),
    }
    body = ",\n".join(json.dumps(c, separators=sep) for c in cases)
    text = json.dumps(head, separators=sep)[:-1] + ',"cases":[\n' + body + "\n]}\n"
    path = HERE / f"{framework}.json"
    path.write_text(text)
    print(f"wrote {path} ({len(cases)} cases, {len(text.encode())} bytes)")


TORCH_LONG = [
    # PyTorch's optim_inputs_func_rmsprop (torch/testing/_internal/common_optimizers.py), CPU
    ("default", {}),
    ("non-default lr", {"lr": 1e-3}),
    ("nonzero weight_decay", {"weight_decay": 0.1}),
    ("maximize", {"maximize": True}),
    ("centered", {"weight_decay": 0.1, "centered": True}),
    ("maximize, weight_decay", {"maximize": True, "weight_decay": 0.1}),
    ("momentum", {"weight_decay": 0.1, "centered": True, "momentum": 0.1}),
    (
        "maximize, centered, weight_decay, w/ momentum",
        {"weight_decay": 0.1, "centered": True, "momentum": 0.1, "maximize": True},
    ),
    # rho corners and weight decay
    ("alpha 0.999", {"alpha": 0.999}),
    ("alpha 0.9999", {"alpha": 0.9999}),
    ("alpha 0.999, momentum 0.9", {"alpha": 0.999, "momentum": 0.9}),
    (
        "alpha 0.9999, centered, momentum 0.9, weight_decay 0.01",
        {"alpha": 0.9999, "centered": True, "momentum": 0.9, "weight_decay": 0.01},
    ),
]


def record_torch_long():
    import torch

    lg = _long_gradients()
    torch.use_deterministic_algorithms(True)
    defaults = {
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
        "maximize": False,
    }
    complex_descs = ("default", "maximize, centered, weight_decay, w/ momentum", "alpha 0.999")
    cases = []
    for desc, kwargs in TORCH_LONG:
        hp = {**defaults, **kwargs}
        config = {
            "convention": "torch",
            "learning_rate": hp["lr"],
            "rho": hp["alpha"],
            "epsilon": hp["eps"],
            "momentum": hp["momentum"],
            "centered": hp["centered"],
            "weight_decay": hp["weight_decay"] or None,
            "maximize": hp["maximize"],
        }
        dtypes = ["float32", "float64"] + (["complex64"] if desc in complex_descs else [])
        for dtype in dtypes:
            p0, grads = long_inputs(dtype)
            param = torch.tensor(p0, requires_grad=True)
            opt = torch.optim.RMSprop([param], foreach=False, **hp)
            case = {
                "name": f"torch {desc} {dtype}",
                "config": config,
                "dtype": dtype,
                "params0": encode(p0),
                "params": {},
            }
            for step, g in enumerate(grads, start=1):
                param.grad = torch.tensor(g)
                opt.step()
                if step in lg.CHECKPOINTS:
                    case["params"][str(step)] = encode(param.detach().numpy())
            state = opt.state[param]
            slots = {"ms": encode(state["square_avg"].numpy())}
            if hp["centered"]:
                slots["mg"] = encode(state["grad_avg"].numpy())
            if hp["momentum"] > 0:
                slots["mom"] = encode(state["momentum_buffer"].numpy())
            case["slots"] = slots
            cases.append(case)
    write_long("torch_long", {**base_versions(), "torch": torch.__version__}, cases)


TF_LONG_SETTINGS = [
    ("plain", {"momentum": 0.0, "centered": False}),
    ("centered momentum", {"momentum": 0.9, "centered": True}),
]


def record_tf_long():
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    import keras
    import tf_keras

    lg = _long_gradients()
    cases = []

    def run(framework, make_opt, dtype, rho, setting, kwargs):
        p0, grads = long_inputs(dtype)
        conv = {"tf_keras": "keras", "tf1": "tf1", "keras3": "keras3"}[framework]
        config = {"convention": conv, "learning_rate": 1e-2, "rho": rho, "epsilon": 1e-7, **kwargs}
        case = {
            "name": f"{framework} rho{rho:g} {setting} {dtype}",
            "config": config,
            "dtype": dtype,
            "params0": encode(p0),
            "params": {},
        }
        var = (
            keras.Variable(p0, dtype=dtype)
            if framework == "keras3"
            else tf.Variable(p0, dtype=dtype)
        )
        opt = make_opt(rho, **kwargs)
        for step, g in enumerate(grads, start=1):
            opt.apply_gradients([(tf.constant(g, dtype=dtype), var)])
            if step in lg.CHECKPOINTS:
                case["params"][str(step)] = encode(np.asarray(var))
        if framework == "keras3":
            index = opt._get_variable_index(var)
            slots = {"ms": encode(np.asarray(opt._velocities[index]))}
            if kwargs["centered"]:
                slots["mg"] = encode(np.asarray(opt._average_gradients[index]))
            if kwargs["momentum"] > 0:
                slots["mom"] = encode(np.asarray(opt._momentums[index]))
        else:
            slots = {"ms": encode(opt.get_slot(var, "rms").numpy())}
            if kwargs["centered"]:
                slots["mg"] = encode(opt.get_slot(var, "mg").numpy())
            if kwargs["momentum"] > 0:
                slots["mom"] = encode(opt.get_slot(var, "momentum").numpy())
        case["slots"] = slots
        cases.append(case)

    makers = {
        "tf_keras": lambda rho, momentum, centered: tf_keras.optimizers.legacy.RMSprop(
            1e-2, rho=rho, momentum=momentum, epsilon=1e-7, centered=centered
        ),
        "tf1": lambda rho, momentum, centered: tf.compat.v1.train.RMSPropOptimizer(
            1e-2, decay=rho, momentum=momentum, epsilon=1e-7, centered=centered
        ),
        "keras3": lambda rho, momentum, centered: keras.optimizers.RMSprop(
            1e-2, rho=rho, momentum=momentum, epsilon=1e-7, centered=centered
        ),
    }
    for framework, make_opt in makers.items():
        for rho in (0.99, 0.999, 0.9999):
            for setting, kwargs in TF_LONG_SETTINGS:
                for dtype in ("float32", "float64"):
                    run(framework, make_opt, dtype, rho, setting, kwargs)
        for setting, kwargs in TF_LONG_SETTINGS:
            run(framework, make_opt, "complex64", 0.9, setting, kwargs)

    # TF1's sparse kernels (SparseApplyRMSProp / SparseApplyCenteredRMSProp): untouched rows of
    # ms, mg and mom do not change.
    t0 = lg.table0().astype(np.float32)
    for rho in (0.9, 0.999):
        for setting, kwargs in [
            ("plain", {"momentum": 0.0, "centered": False}),
            ("momentum", {"momentum": 0.9, "centered": False}),
            ("centered", {"momentum": 0.0, "centered": True}),
            ("centered momentum", {"momentum": 0.9, "centered": True}),
        ]:
            config = {
                "convention": "tf1",
                "learning_rate": 1e-2,
                "rho": rho,
                "epsilon": 1e-7,
                **kwargs,
            }
            case = {
                "name": f"tf1 sparse rho{rho:g} {setting} float32",
                "config": config,
                "dtype": "float32",
                "sparse": True,
                "params0": encode(t0),
                "params": {},
            }
            var = tf.Variable(t0)
            opt = makers["tf1"](rho, **kwargs)
            for step in range(1, lg.STEPS + 1):
                rows, values = lg.sparse(step - 1)
                grad = tf.IndexedSlices(
                    tf.constant(values.astype(np.float32)),
                    tf.constant(rows),
                    tf.constant([lg.TABLE_ROWS, 2]),
                )
                opt.apply_gradients([(grad, var)])
                if step in lg.CHECKPOINTS:
                    case["params"][str(step)] = encode(var.numpy())
            slots = {"ms": encode(opt.get_slot(var, "rms").numpy())}
            if kwargs["centered"]:
                slots["mg"] = encode(opt.get_slot(var, "mg").numpy())
            if kwargs["momentum"] > 0:
                slots["mom"] = encode(opt.get_slot(var, "momentum").numpy())
            case["slots"] = slots
            cases.append(case)

    versions = {
        **base_versions(),
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
    }
    write_long("tf_long", versions, cases)


def check_long_file(framework):
    lg = _long_gradients()
    data = json.loads((HERE / f"{framework}.json").read_text())
    for case in data["cases"]:
        assert sorted(map(int, case["params"])) == list(lg.CHECKPOINTS), case["name"]
        assert "ms" in case["slots"], case["name"]
    size = (HERE / f"{framework}.json").stat().st_size
    print(f"{framework}.json: {len(data['cases'])} cases, {size} bytes, checkpoints OK")
    return data


# --------------------------------------------------------------------------
# Both generations of tf.keras's RMSprop: keras_generations.json
# --------------------------------------------------------------------------
#
# ``keras_generations.json`` holds, for each generation of ``tf.keras.optimizers.RMSprop``:
#
# * ``legacy``: ``tf_keras.optimizers.legacy.RMSprop`` (OptimizerV2; ``tf.keras`` in TF 1.15-2.10);
# * ``tf_keras``: ``tf_keras.optimizers.RMSprop``, tf-keras's new optimizer (``tf.keras`` in
#   TF 2.11-2.15);
# * ``keras3``: ``keras.optimizers.RMSprop`` on the TensorFlow backend (``tf.keras`` from TF 2.16);
#   ``keras3_torch`` / ``keras3_jax``: the same on the torch and JAX backends (configs, the
#   one-step case and a few dense runs only, to show that the backends agree).
#
# Each generation is recorded in its own subprocess (``record.py keras_generations_part NAME
# OUT``) and the parent merges the parts. Sections (``generation`` names the part):
#
# * ``dense``: STEPS steps on ``w`` (2, 3), ``b`` (3,), ``s`` () with gradients fed directly
#   (``make_data``; the same case name sees the same data in every generation); ``kwargs`` are the
#   constructor arguments (``learning_rate`` may be ``{"class_name", "config"}``, a schedule);
#   params and slots (``ms`` / ``mg`` / ``mom``) after every step;
# * ``one_step``: w = 1, g = 1e-4, lr = 0.01, defaults otherwise: w after one step;
# * ``sparse``: SPARSE_STEPS steps of ``make_sparse_data`` (IndexedSlices with duplicate and
#   empty indices on ``table``, a dense gradient on ``dense``), params and slots after every step;
# * ``later_variables``: ``a`` and ``b`` of shape (2,); step 1 updates ``a`` only, steps 2 and 3
#   update both with the same gradients; legacy: weight names / values after step 2 and params
#   after every step; the modern generations refuse ``b`` (error recorded) unless built with
#   both first (``build_first``: ``build([a, b])``, then the same steps);
# * ``configs``: ``get_config()`` (JSON-converted, with the Python type of each raw value) and,
#   where the library has it, ``serialize()`` of a default and non-default optimizers;
# * ``resume``: 3 steps, then config, weights (legacy ``get_weights()`` with ``weights`` names;
#   modern ``[v.numpy() for v in optimizer.variables]`` with names and paths) and params, then
#   RESUME_MORE steps more (params after each);
# * ``epsilon``: epsilon 0, 0.0 and None with and without momentum: w = [1, 2], g = [0, 1],
#   lr = 0.1; the result or the error, ``get_config()["epsilon"]`` and ``optimizer.epsilon``;
# * ``float64``: legacy on float64 variables (gradients cast from ``make_data``), exact float64;
# * ``sparse_hyper_change``: legacy, RMSprop(0.1, rho=0.9[, momentum]) on a (3, 1) Variable of
#   ones; IndexedSlices of ones on row 0, then on row 1; then ``opt.rho = 0.5`` (or a callable
#   rho switched to 0.5); then row 1, then row 0. Var and slots after every step.

GEN_PARTS = ("legacy", "tf_keras", "keras3", "keras3_torch", "keras3_jax")
GEN_LABELS = {
    "legacy": "tf_keras.optimizers.legacy.RMSprop (OptimizerV2; tf.keras in TF 1.15-2.10)",
    "tf_keras": "tf_keras.optimizers.RMSprop (tf-keras's new optimizer; tf.keras in TF 2.11-2.15)",
    "keras3": "keras.optimizers.RMSprop, TensorFlow backend (tf.keras from TF 2.16)",
    "keras3_torch": "keras.optimizers.RMSprop, torch backend",
    "keras3_jax": "keras.optimizers.RMSprop, JAX backend",
}
GEN_MODERN = ("tf_keras", "keras3", "keras3_torch", "keras3_jax")
GEN_DEFAULTS = {"learning_rate": 0.01, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}
GEN_SCHEDULE = {
    "class_name": "ExponentialDecay",
    "config": {"initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5},
}
# (name, kwargs over GEN_DEFAULTS, gscale, modern only)
GEN_DENSE = [
    ("plain", {}, 1.0, False),
    ("momentum", {"momentum": 0.9}, 1.0, False),
    ("centered", {"centered": True}, 1.0, False),
    ("centered_momentum", {"momentum": 0.9, "centered": True}, 1.0, False),
    ("rho0.95_eps1e-3_lr0.1", {"rho": 0.95, "epsilon": 1e-3, "learning_rate": 0.1}, 1.0, False),
    ("small_grads", {}, 1e-4, False),
    ("small_grads_momentum", {"momentum": 0.9}, 1e-4, False),
    ("schedule", {"learning_rate": GEN_SCHEDULE}, 1.0, False),
    (
        "schedule_centered_momentum",
        {"learning_rate": GEN_SCHEDULE, "momentum": 0.9, "centered": True},
        1.0,
        False,
    ),
    ("clipnorm", {"momentum": 0.5, "clipnorm": 1.0}, 2.0, False),
    ("clipvalue", {"momentum": 0.5, "clipvalue": 0.5}, 2.0, False),
    ("global_clipnorm", {"momentum": 0.5, "global_clipnorm": 1.0}, 2.0, False),
    ("weight_decay", {"weight_decay": 0.01}, 1.0, True),
    ("weight_decay_momentum", {"weight_decay": 0.01, "momentum": 0.9}, 1.0, True),
    (
        "weight_decay_centered_schedule",
        {"weight_decay": 0.05, "centered": True, "learning_rate": GEN_SCHEDULE},
        1.0,
        True,
    ),
]
GEN_BACKEND_DENSE = ("plain", "momentum", "centered_momentum", "weight_decay_momentum")
GEN_SPARSE = [
    ("plain", {}),
    ("momentum", {"momentum": 0.9}),
    ("centered", {"centered": True}),
    ("centered_momentum", {"momentum": 0.9, "centered": True}),
]
GEN_LATER = [
    ("momentum", {"learning_rate": 0.1, "momentum": 0.9}),
    ("centered_momentum", {"learning_rate": 0.1, "momentum": 0.9, "centered": True}),
    ("plain", {"learning_rate": 0.1}),
]
GEN_LATER_DATA = {
    "a0": [1.0, 2.0],
    "b0": [3.0, 4.0],
    "grads": [
        {"a": [0.5, -1.0]},
        {"a": [0.25, 2.0], "b": [2.0, 0.25]},
        {"a": [0.25, 2.0], "b": [2.0, 0.25]},
    ],
}
GEN_RESUME_SHAPES = {"kernel": (3, 2), "bias": (2,), "scale": (2,)}
GEN_RESUME_NAMES = ("kernel", "bias", "scale")
GEN_RESUME_FIRST, GEN_RESUME_MORE = 3, 2
GEN_RESUME = [
    (
        "centered_momentum",
        {
            "learning_rate": 0.05,
            "rho": 0.85,
            "momentum": 0.6,
            "epsilon": 1e-6,
            "centered": True,
            "clipnorm": 1.5,
        },
        False,
    ),
    ("plain", {"learning_rate": 0.01}, False),
    ("schedule_momentum", {"learning_rate": GEN_SCHEDULE, "momentum": 0.9}, False),
    ("weight_decay_momentum", {"learning_rate": 0.02, "momentum": 0.9, "weight_decay": 0.01}, True),
]
GEN_FLOAT64 = [
    ("plain", {}, 1.0),
    ("momentum", {"momentum": 0.9}, 1.0),
    ("centered_momentum", {"momentum": 0.9, "centered": True}, 1.0),
    ("small_grads", {}, 1e-5),
    ("small_grads_momentum", {"momentum": 0.9}, 1e-5),
    ("small_grads_centered", {"centered": True}, 1e-5),
]
GEN_HYPER_CHANGE = [
    ("rho", {}, "assign"),
    ("rho_momentum0.5", {"momentum": 0.5}, "assign"),
    ("callable_rho", {}, "callable"),
    ("callable_rho_momentum0.5", {"momentum": 0.5}, "callable"),
]
GEN_HYPER_SEQUENCE = [[0], [1], "rho=0.5", [1], [0]]


def _gen_kwargs(kwargs):
    return {**GEN_DEFAULTS, **kwargs}


class _GenFramework:
    """What differs between the generations: construction, variables, slots, weights."""

    def __init__(self, part):
        self.part = part
        if part in ("keras3_torch", "keras3_jax"):
            os.environ["KERAS_BACKEND"] = part.removeprefix("keras3_")
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
        self.tf = tf
        if part in ("legacy", "tf_keras"):
            import tf_keras

            self.lib = tf_keras
            self.opt_cls = (
                tf_keras.optimizers.legacy.RMSprop
                if part == "legacy"
                else tf_keras.optimizers.RMSprop
            )
            self.schedules = tf_keras.optimizers.schedules
            self.versions = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__}
        else:
            import keras

            self.lib = keras
            self.opt_cls = keras.optimizers.RMSprop
            self.schedules = keras.optimizers.schedules
            self.versions = {
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "keras_backend": keras.backend.backend(),
            }
            assert keras.backend.backend() == {"keras3": "tensorflow"}.get(
                part, part.removeprefix("keras3_")
            )
            if part == "keras3_torch":
                import torch

                self.versions["torch"] = torch.__version__
            if part == "keras3_jax":
                import jax

                self.versions["jax"] = jax.__version__

    @property
    def modern(self):
        return self.part != "legacy"

    @property
    def tf_backend(self):
        return self.part in ("legacy", "tf_keras", "keras3")

    def schedule(self, spec):
        return getattr(self.schedules, spec["class_name"])(**spec["config"])

    def make_opt(self, kwargs):
        kw = dict(kwargs)
        if isinstance(kw.get("learning_rate"), dict):
            kw["learning_rate"] = self.schedule(kw["learning_rate"])
        return self.opt_cls(**kw)

    def variable(self, value, name, dtype="float32"):
        value = np.asarray(value, dtype=dtype)
        if self.part in ("legacy", "tf_keras"):
            return self.tf.Variable(value, dtype=dtype, name=name)
        return self.lib.Variable(value, dtype=dtype, name=name)

    def tensor(self, value, dtype="float32"):
        value = np.asarray(value, dtype=dtype)
        if self.tf_backend:
            return self.tf.constant(value)
        return self.lib.ops.convert_to_tensor(value)

    def sparse(self, indices, values, shape):
        tf = self.tf
        return tf.IndexedSlices(
            tf.constant(np.asarray(values, np.float32)),
            tf.constant(np.asarray(indices, np.int32)),
            tf.constant(shape, tf.int32),
        )

    def value(self, var):
        return np.asarray(var.numpy() if hasattr(var, "numpy") else var)

    def slots(self, opt, var, centered, momentum):
        """{"ms", "mg", "mom"} of one variable (only those the optimizer has)."""
        if self.part == "legacy":
            names = {"ms": "rms", "mg": "mg", "mom": "momentum"}
            have = set(opt.get_slot_names())
            return {k: self.value(opt.get_slot(var, s)) for k, s in names.items() if s in have}
        if self.part == "tf_keras":
            index = opt._index_dict[opt._var_key(var)]
        else:
            index = opt._get_variable_index(var)
        out = {"ms": self.value(opt._velocities[index])}
        if centered:
            out["mg"] = self.value(opt._average_gradients[index])
        if momentum > 0:
            out["mom"] = self.value(opt._momentums[index])
        return out

    def weights(self, opt):
        """(names, paths, values) of what a resumed run needs, in the library's order."""
        if self.part == "legacy":
            return [w.name for w in opt.weights], None, [np.asarray(w) for w in opt.get_weights()]
        variables = list(opt.variables)
        paths = [getattr(v, "path", None) for v in variables]
        return (
            [v.name for v in variables],
            paths if any(p is not None for p in paths) else None,
            [self.value(v) for v in variables],
        )

    def iterations(self, opt):
        return int(self.value(opt.iterations))

    def apply(self, opt, pairs):
        opt.apply_gradients(pairs)


def _exact(x, dtype="float32"):
    """Exact values of a float32 (or float64) array/scalar as Python floats."""
    a = np.asarray(x, dtype=dtype)
    return float(a) if a.ndim == 0 else a.tolist()


def _error(e):
    return {"type": type(e).__name__, "message": str(e)}


def _gen_dense(fw):
    cases = []
    for name, kwargs, gscale, modern_only in GEN_DENSE:
        if modern_only and not fw.modern:
            continue
        if fw.part in ("keras3_torch", "keras3_jax") and name not in GEN_BACKEND_DENSE:
            continue
        kw = _gen_kwargs(kwargs)
        params0, grads = make_data(f"generations_{name}", gscale)
        opt = fw.make_opt(kw)
        variables = {k: fw.variable(params0[k], k) for k in NAMES}
        case = {
            "name": name,
            "generation": fw.part,
            "kwargs": kw,
            "gscale": gscale,
            "params0": tree_f32(params0),
            "grads": [tree_f32(g) for g in grads],
            "lr_per_step": [],
            "params": [],
            "slots": [],
        }
        for g in grads:
            if isinstance(kw["learning_rate"], dict):
                sched = fw.schedule(kw["learning_rate"])
                step = fw.iterations(opt)
                arg = fw.tf.constant(step, fw.tf.float32) if fw.part == "legacy" else step
                case["lr_per_step"].append(f32(np.asarray(sched(arg))))
            else:
                case["lr_per_step"].append(f32(kw["learning_rate"]))
            fw.apply(opt, [(fw.tensor(g[k]), variables[k]) for k in NAMES])
            case["params"].append({k: f32(fw.value(variables[k])) for k in NAMES})
            per_var = {
                k: fw.slots(opt, variables[k], kw.get("centered", False), kw["momentum"])
                for k in NAMES
            }
            case["slots"].append(
                {s: {k: f32(per_var[k][s]) for k in NAMES} for s in per_var[NAMES[0]]}
            )
        assert fw.iterations(opt) == STEPS
        cases.append(case)
    return cases


def _gen_one_step(fw):
    opt = fw.make_opt({"learning_rate": 0.01})
    var = fw.variable(1.0, "w")
    fw.apply(opt, [(fw.tensor(1e-4), var)])
    return {"w0": 1.0, "g": f32(1e-4), "learning_rate": 0.01, "w": f32(fw.value(var))}


def _gen_sparse(fw):
    cases = []
    for name, kwargs in GEN_SPARSE:
        kw = _gen_kwargs(kwargs)
        params0, grads = make_sparse_data(f"generations_sparse_{name}", 1.0)
        opt = fw.make_opt(kw)
        variables = {k: fw.variable(params0[k], k) for k in SPARSE_NAMES}
        case = {
            "name": name,
            "generation": fw.part,
            "kwargs": kw,
            "params0": tree_f32(params0),
            "grads": sparse_grads_json(grads),
            "params": [],
            "slots": [],
        }
        for g in grads:
            idx, vals = g["table"]
            fw.apply(
                opt,
                [
                    (fw.sparse(idx, vals, SPARSE_SHAPES["table"]), variables["table"]),
                    (fw.tensor(g["dense"]), variables["dense"]),
                ],
            )
            case["params"].append({k: f32(fw.value(variables[k])) for k in SPARSE_NAMES})
            per_var = {
                k: fw.slots(opt, variables[k], kw.get("centered", False), kw["momentum"])
                for k in SPARSE_NAMES
            }
            case["slots"].append(
                {s: {k: f32(per_var[k][s]) for k in SPARSE_NAMES} for s in per_var["table"]}
            )
        assert fw.iterations(opt) == SPARSE_STEPS
        cases.append(case)
    return cases


def _gen_later(fw):
    out = []
    data = GEN_LATER_DATA
    for name, kwargs in GEN_LATER:
        kw = _gen_kwargs(kwargs)
        for build_first in (False, True) if fw.modern else (False,):
            opt = fw.make_opt(kw)
            a = fw.variable(data["a0"], "a")
            b = fw.variable(data["b0"], "b")
            variables = {"a": a, "b": b}
            entry = {
                "name": name,
                "generation": fw.part,
                "kwargs": kw,
                "build_first": build_first,
                **data,
                "params": [],
                "error": None,
            }
            if build_first:
                opt.build([a, b])
            for step, g in enumerate(data["grads"]):
                try:
                    fw.apply(opt, [(fw.tensor(g[k]), variables[k]) for k in g])
                except Exception as e:  # the modern generations refuse a variable not built
                    assert fw.modern and not build_first and step == 1, (fw.part, e)
                    entry["error"] = _error(e)
                    break
                entry["params"].append({k: f32(fw.value(v)) for k, v in variables.items()})
                if step == 1:
                    names, paths, values = fw.weights(opt)
                    entry["weight_names_after_2"] = names
                    entry["weight_paths_after_2"] = paths
                    entry["weights_after_2"] = [to_json(np.asarray(w)) for w in values]
                    entry["slots_after_2"] = {
                        k: {
                            s: f32(v)
                            for s, v in fw.slots(
                                opt, var, kw.get("centered", False), kw["momentum"]
                            ).items()
                        }
                        for k, var in variables.items()
                    }
            out.append(entry)
    return out


def _gen_configs(fw):
    out = {}
    specs = [("default", {})]
    if fw.part == "legacy":
        specs += [
            (
                "nondefault",
                {
                    "learning_rate": GEN_SCHEDULE,
                    "rho": 0.8,
                    "momentum": 0.5,
                    "epsilon": 1e-6,
                    "centered": True,
                    "clipnorm": 1.0,
                    "decay": 0.01,
                },
            ),
            ("global_clipnorm", {"learning_rate": 0.01, "global_clipnorm": 2.0, "clipvalue": 0.5}),
        ]
    else:
        specs += [
            (
                "nondefault",
                {
                    "learning_rate": 0.01,
                    "rho": 0.8,
                    "momentum": 0.5,
                    "epsilon": 1e-6,
                    "centered": True,
                    "clipnorm": 1.0,
                    "weight_decay": 0.004,
                },
            ),
            ("schedule", {"learning_rate": GEN_SCHEDULE, "global_clipnorm": 2.0}),
        ]
    for key, kwargs in specs:
        opt = fw.make_opt(kwargs)
        config = opt.get_config()
        serialized = None
        serialize = getattr(fw.lib.optimizers, "serialize", None)
        if serialize is not None:
            serialized = to_json(serialize(opt))
        out[key] = {
            "kwargs": kwargs,
            "config": to_json(config),
            "config_types": config_types(config),
            "serialized": serialized,
        }
    return out


def _gen_resume(fw):
    out = []
    for name, kwargs, modern_only in GEN_RESUME:
        if modern_only and not fw.modern:
            continue
        kw = _gen_kwargs(kwargs)
        params0, grads = make_resume_data(
            f"generations_resume_{name}",
            GEN_RESUME_SHAPES,
            GEN_RESUME_NAMES,
            GEN_RESUME_FIRST + GEN_RESUME_MORE,
        )
        opt = fw.make_opt(kw)
        variables = {k: fw.variable(params0[k], k) for k in GEN_RESUME_NAMES}

        def step(g, opt=opt, variables=variables):
            fw.apply(opt, [(fw.tensor(g[k]), variables[k]) for k in GEN_RESUME_NAMES])

        for g in grads[:GEN_RESUME_FIRST]:
            step(g)
        config = opt.get_config()
        names, paths, values = fw.weights(opt)
        entry = {
            "name": name,
            "generation": fw.part,
            "kwargs": kw,
            "steps_first": GEN_RESUME_FIRST,
            "steps_more": GEN_RESUME_MORE,
            "params0": tree_f32(params0),
            "grads": [tree_f32(g) for g in grads],
            "config": to_json(config),
            "config_types": config_types(config),
            "weight_names": names,
            "weight_paths": paths,
            "weights_after_3": [to_json(np.asarray(w)) for w in values],
            "weight_dtypes": [str(np.asarray(w).dtype) for w in values],
            "params_after_3": {k: f32(fw.value(v)) for k, v in variables.items()},
            "params_after": [],
        }
        for g in grads[GEN_RESUME_FIRST:]:
            step(g)
            entry["params_after"].append({k: f32(fw.value(v)) for k, v in variables.items()})
        assert fw.iterations(opt) == GEN_RESUME_FIRST + GEN_RESUME_MORE
        out.append(entry)
    return out


def _gen_epsilon(fw):
    out = []
    for eps in (0, 0.0, None):
        for momentum in (0.0, 0.9):
            entry = {
                "generation": fw.part,
                "epsilon": eps,
                "epsilon_type": type(eps).__name__,
                "momentum": momentum,
                "learning_rate": 0.1,
                "w0": [1.0, 2.0],
                "g": [0.0, 1.0],
                "w": None,
                "error": None,
                "construct_error": None,
            }
            try:
                opt = fw.make_opt({"learning_rate": 0.1, "epsilon": eps, "momentum": momentum})
            except Exception as e:
                entry["construct_error"] = _error(e)
                out.append(entry)
                continue
            config = opt.get_config()
            entry["config_epsilon"] = to_json(config["epsilon"])
            entry["config_epsilon_type"] = type(config["epsilon"]).__name__
            entry["attribute_epsilon"] = to_json(opt.epsilon)
            var = fw.variable(entry["w0"], "w")
            try:
                fw.apply(opt, [(fw.tensor(entry["g"]), var)])
                entry["w"] = f32(fw.value(var))
            except Exception as e:
                entry["error"] = _error(e)
            out.append(entry)
    return out


def _gen_float64(fw):
    out = []
    for name, kwargs, gscale in GEN_FLOAT64:
        kw = _gen_kwargs(kwargs)
        params0, grads = make_data(f"generations_float64_{name}", gscale)
        opt = fw.make_opt(kw)
        variables = {k: fw.variable(params0[k], k, "float64") for k in NAMES}
        case = {
            "name": name,
            "generation": fw.part,
            "kwargs": kw,
            "dtype": "float64",
            "params0": {k: _exact(v, "float64") for k, v in params0.items()},
            "grads": [{k: _exact(v, "float64") for k, v in g.items()} for g in grads],
            "params": [],
            "slots": [],
        }
        for g in grads:
            fw.apply(opt, [(fw.tensor(g[k], "float64"), variables[k]) for k in NAMES])
            value = {k: fw.value(variables[k]) for k in NAMES}
            assert all(v.dtype == np.float64 for v in value.values())
            case["params"].append({k: _exact(v, "float64") for k, v in value.items()})
            per_var = {
                k: fw.slots(opt, variables[k], kw.get("centered", False), kw["momentum"])
                for k in NAMES
            }
            case["slots"].append(
                {s: {k: _exact(per_var[k][s], "float64") for k in NAMES} for s in per_var[NAMES[0]]}
            )
        out.append(case)
    return out


def _gen_hyper_change(fw):
    out = []
    for name, kwargs, how in GEN_HYPER_CHANGE:
        box = {"rho": 0.9}
        kw = {"learning_rate": 0.1, "rho": 0.9, **kwargs}
        if how == "callable":
            opt = fw.opt_cls(**{**kw, "rho": lambda box=box: box["rho"]})
        else:
            opt = fw.opt_cls(**kw)
        var = fw.variable(np.ones((3, 1)), "v")
        entry = {
            "name": name,
            "generation": fw.part,
            "kwargs": kw,
            "how": how,
            "var0": [[1.0], [1.0], [1.0]],
            "sequence": GEN_HYPER_SEQUENCE,
            "var": [],
            "slots": [],
        }
        for item in GEN_HYPER_SEQUENCE:
            if item == "rho=0.5":
                if how == "callable":
                    box["rho"] = 0.5
                else:
                    opt.rho = 0.5
                continue
            grad = fw.sparse(item, np.ones((len(item), 1)), (3, 1))
            fw.apply(opt, [(grad, var)])
            entry["var"].append(f32(fw.value(var)))
            entry["slots"].append(
                {k: f32(v) for k, v in fw.slots(opt, var, False, kw.get("momentum", 0.0)).items()}
            )
        out.append(entry)
    return out


def record_keras_generations_part(part, out_path):
    """One generation (one library / backend) in this process; JSON to ``out_path``."""
    fw = _GenFramework(part)
    data = {
        "generation": part,
        "label": GEN_LABELS[part],
        "versions": {**base_versions(), **fw.versions},
        "one_step": _gen_one_step(fw),
        "dense": _gen_dense(fw),
        "configs": _gen_configs(fw),
    }
    if part in ("legacy", "tf_keras", "keras3"):
        data["sparse"] = _gen_sparse(fw)
        data["later_variables"] = _gen_later(fw)
        data["resume"] = _gen_resume(fw)
        data["epsilon"] = _gen_epsilon(fw)
    if part == "legacy":
        data["float64"] = _gen_float64(fw)
        data["sparse_hyper_change"] = _gen_hyper_change(fw)
    Path(out_path).write_text(json.dumps(data, allow_nan=True))


def _max_diff(x, y):
    """Largest |x - y| over two equally structured JSON trees (NaN == NaN)."""
    if isinstance(x, dict):
        assert set(x) == set(y)
        return max((_max_diff(x[k], y[k]) for k in x), default=0.0)
    if isinstance(x, list):
        assert len(x) == len(y)
        return max((_max_diff(a, b) for a, b in zip(x, y, strict=True)), default=0.0)
    if isinstance(x, float) and np.isnan(x) and np.isnan(y):
        return 0.0
    return abs(float(x) - float(y))


def _gen_agreement(parts):
    """How far tf-keras's new optimizer and the Keras 3 backends are from Keras 3 on TF."""
    ref = parts["keras3"]
    out = {}
    for other in ("tf_keras", "keras3_torch", "keras3_jax"):
        report = {"one_step": _max_diff(parts[other]["one_step"], ref["one_step"])}
        for section in ("dense", "sparse"):
            if section not in parts[other]:
                continue
            theirs = {c["name"]: c for c in parts[other][section]}
            per_case = {}
            for case in ref[section]:
                if case["name"] in theirs:
                    per_case[case["name"]] = {
                        key: _max_diff(theirs[case["name"]][key], case[key])
                        for key in ("params", "slots")
                    }
            report[section] = per_case
        out[other] = report
    return out


def record_keras_generations():
    import tempfile

    parts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for part in GEN_PARTS:
            out = Path(tmp) / f"{part}.json"
            env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
            subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "keras_generations_part",
                    part,
                    str(out),
                ],
                check=True,
                env=env,
            )
            parts[part] = json.loads(out.read_text())
    agreement = _gen_agreement(parts)
    for other, report in agreement.items():
        worst = {
            s: max((max(v.values()) for v in report[s].values()), default=0.0)
            for s in ("dense", "sparse")
            if s in report
        }
        print(f"max |{other} - keras3 (TF)|: one_step {report['one_step']:.3g}, {worst}")
    merged = {
        "versions": {part: parts[part]["versions"] for part in GEN_PARTS},
        "generations": GEN_LABELS,
        "agreement_with_keras3": agreement,
    }
    for section in ("one_step", "configs"):
        merged[section] = {part: parts[part][section] for part in GEN_PARTS}
    for section in (
        "dense",
        "sparse",
        "later_variables",
        "resume",
        "epsilon",
        "float64",
        "sparse_hyper_change",
    ):
        merged[section] = [c for part in GEN_PARTS for c in parts[part].get(section, [])]
    sep = (",", ":")
    head_keys = ("versions", "generations", "agreement_with_keras3", "one_step", "configs")
    lines = [f'"{k}":' + json.dumps(merged[k], separators=sep) for k in head_keys]
    for key in (
        "dense",
        "sparse",
        "later_variables",
        "resume",
        "epsilon",
        "float64",
        "sparse_hyper_change",
    ):
        body = ",\n".join(json.dumps(c, separators=sep, allow_nan=True) for c in merged[key])
        lines.append(f'"{key}":[\n{body}\n]')
    text = "{" + ",\n".join(lines) + "}\n"
    json.loads(text)
    path = HERE / "keras_generations.json"
    path.write_text(text)
    print(f"wrote {path} ({len(text.encode())} bytes)")


def check_generations_file(framework="keras_generations"):
    path = HERE / f"{framework}.json"
    size = path.stat().st_size
    data = json.loads(path.read_text())
    assert set(data["versions"]) == set(GEN_PARTS), path
    assert data["one_step"]["legacy"]["w"] == f32(0.9684769), data["one_step"]
    for part in GEN_MODERN:
        assert data["one_step"][part]["w"] == f32(0.9968534), (part, data["one_step"])
    for section, steps in (("dense", STEPS), ("sparse", SPARSE_STEPS)):
        seen = set()
        for case in data[section]:
            key = (case["generation"], case["name"])
            assert key not in seen, key
            seen.add(key)
            assert len(case["params"]) == len(case["slots"]) == len(case["grads"]) == steps, key
            for slots in case["slots"]:
                want = {"ms"} | ({"mg"} if case["kwargs"].get("centered") else set())
                want |= {"mom"} if case["kwargs"]["momentum"] > 0 else set()
                assert set(slots) == want, (key, set(slots))
    legacy_later = [e for e in data["later_variables"] if e["generation"] == "legacy"]
    assert all(e["error"] is None and len(e["params"]) == 3 for e in legacy_later)
    for e in data["later_variables"]:
        if e["generation"] != "legacy" and not e["build_first"]:
            assert e["error"] is not None, (e["generation"], e["name"])
    for entry in data["resume"]:
        assert len(entry["weight_names"]) == len(entry["weights_after_3"]), entry["name"]
        assert len(entry["params_after"]) == GEN_RESUME_MORE, entry["name"]
    hyper = {e["name"]: e for e in data["sparse_hyper_change"]}
    got = np.asarray(hyper["rho"]["slots"][-1]["ms"], np.float32).ravel()
    assert np.array_equal(got, np.float32([0.5225, 0.275, 0.0])), got
    got = np.asarray(hyper["rho"]["var"][-1], np.float32).ravel()
    assert np.array_equal(got, np.float32([0.54542947, 0.5489324, 1.0])), got
    print(
        f"{path.name}: {len(data['dense'])} dense, {len(data['sparse'])} sparse, "
        f"{len(data['resume'])} resume cases, {size} bytes, OK"
    )
    return data


def _timm_rmsprop_tf():
    """timm's ``RMSpropTF`` without timm's package import (which needs torchvision)."""
    import importlib
    import importlib.util
    import types

    root = Path(importlib.util.find_spec("timm").origin).parent
    for name, path in (("timm", root), ("timm.optim", root / "optim")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    return importlib.import_module("timm.optim.rmsprop_tf").RMSpropTF


def _record_recipe_runs(rng, rms_prop_tf):
    """Eight steps of five recipes on a (4, 3) weight and a (3,) bias, recorded gradients."""
    import numpy as np
    import tensorflow as tf
    import torch

    shapes = {"w": (4, 3), "b": (3,)}
    params0 = {k: rng.normal(size=v).astype(np.float32) for k, v in shapes.items()}
    grads = [
        {k: (rng.normal(size=v) * 30).astype(np.float32) for k, v in shapes.items()}
        for _ in range(STEPS)
    ]

    def torch_run(make, clip=None, value_clip=None):
        w = torch.nn.Parameter(torch.tensor(params0["w"]))
        b = torch.nn.Parameter(torch.tensor(params0["b"]))
        opt, scheduler = make(w, b)
        out = []
        for g in grads:
            w.grad, b.grad = torch.tensor(g["w"]), torch.tensor(g["b"])
            if clip is not None:
                torch.nn.utils.clip_grad_norm_([w, b], clip)
            if value_clip is not None:
                for q in (w, b):
                    q.grad.data.clamp_(-value_clip, value_clip)
            opt.step()
            if scheduler is not None:
                scheduler.step()
            out.append({"w": w.detach().numpy().tolist(), "b": b.detach().numpy().tolist()})
        return out

    def timm_optimizer(w, b, **options):
        # timm's EfficientNet-B0 settings: rmsproptf, eps 1e-3, momentum 0.9, decay 1e-5 off the
        # 1-d params (timm's parameter groups).
        groups = [{"params": [w], "weight_decay": 1e-5}, {"params": [b], "weight_decay": 0.0}]
        return rms_prop_tf(groups, lr=0.016, alpha=0.9, eps=1e-3, momentum=0.9, **options)

    def timm_efficientnet(w, b):
        # the recipe scaled down: warm-up from 1e-6 over 3 steps, then 0.97 every 2 steps.
        opt = timm_optimizer(w, b)

        def factor(t):
            if t < 3:
                return (1e-6 + t * (0.016 - 1e-6) / 3) / 0.016
            return 0.97 ** (t // 2)

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def impala(w, b):
        # torchbeast monobeast: RMSprop(lr=4.8e-4, momentum=0, eps=0.01, alpha=0.99), a linear
        # LambdaLR to 0 over total_steps / (T * B) = 10 updates, clip_grad_norm_(40).
        opt = torch.optim.RMSprop([w, b], lr=4.8e-4, momentum=0.0, eps=0.01, alpha=0.99)
        return opt, torch.optim.lr_scheduler.LambdaLR(
            opt, lambda epoch: 1 - min(epoch * 640, 6400) / 6400
        )

    def dqn_torch(w, b):
        # A PyTorch DQN port: RMSprop(lr=2.5e-4, alpha=0.95, eps=0.01), grads clamped to [-1, 1].
        return torch.optim.RMSprop([w, b], lr=2.5e-4, alpha=0.95, eps=0.01), None

    def timm_lr_outside(w, b):
        # RMSpropTF(lr_in_momentum=False): the learning rate multiplies the buffer afterwards.
        return timm_optimizer(w, b, lr_in_momentum=False), None

    recipes = {
        "timm_efficientnet": torch_run(timm_efficientnet),
        "timm_lr_outside_momentum": torch_run(timm_lr_outside),
        "torchbeast_impala": torch_run(impala, clip=40.0),
        "pytorch_dqn": torch_run(dqn_torch, value_clip=1.0),
    }

    # Dopamine's DQN: tf.compat.v1.train.RMSPropOptimizer(2.5e-4, decay=0.95, momentum=0.0,
    # epsilon=1e-5, centered=True).
    tf_vars = {k: tf.Variable(v) for k, v in params0.items()}
    opt = tf.compat.v1.train.RMSPropOptimizer(
        2.5e-4, decay=0.95, momentum=0.0, epsilon=1e-5, centered=True
    )
    out = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g[k]), tf_vars[k]) for k in ("w", "b")])
        out.append({k: v.numpy().tolist() for k, v in tf_vars.items()})
    recipes["dopamine_dqn"] = out

    # The Keras MNIST MLP example: model.compile(optimizer=RMSprop()) in tf.keras >= 2.11
    # (Keras 3): the defaults lr 1e-3, rho 0.9, epsilon 1e-7.
    import keras

    k_vars = {k: keras.Variable(v) for k, v in params0.items()}
    opt = keras.optimizers.RMSprop()
    out = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g[k]), k_vars[k]) for k in ("w", "b")])
        out.append({k: np.asarray(v.numpy()).tolist() for k, v in k_vars.items()})
    recipes["keras_mnist_mlp"] = out
    return {
        "params0": {k: v.tolist() for k, v in params0.items()},
        "grads": [{k: v.tolist() for k, v in g.items()} for g in grads],
        "runs": recipes,
    }


def record_recipes():
    """PyTorch's clip_grad_norm_, timm's RMSpropTF with masked decay, torch at |g| = 1e20."""
    import importlib.metadata

    import numpy as np
    import torch

    rng = np.random.default_rng(21)
    unit = {"a": rng.normal(size=(3,)), "b": rng.normal(size=(2, 2))}
    unit_norm = np.sqrt(sum(np.sum(v * v) for v in unit.values()))
    clip = []
    for max_norm in (40.0, 0.01, 1e-4):  # a gradient of norm 1.5 * max_norm: clipped
        tree = {k: (v * 1.5 * max_norm / unit_norm).astype(np.float32) for k, v in unit.items()}
        tensors = {k: torch.nn.Parameter(torch.zeros(v.shape)) for k, v in tree.items()}
        for k, t in tensors.items():
            t.grad = torch.tensor(tree[k])
        total = torch.nn.utils.clip_grad_norm_(list(tensors.values()), max_norm)
        per_tensor = {}
        for k, v in tree.items():
            t = torch.nn.Parameter(torch.zeros(v.shape))
            t.grad = torch.tensor(v)
            torch.nn.utils.clip_grad_norm_([t], max_norm)
            per_tensor[k] = t.grad.numpy().tolist()
        clip.append(
            {
                "grads": {k: v.tolist() for k, v in tree.items()},
                "max_norm": max_norm,
                "total_norm": float(total),
                "clipped": {k: t.grad.numpy().tolist() for k, t in tensors.items()},
                "per_tensor": per_tensor,
            }
        )

    rms_prop_tf = _timm_rmsprop_tf()
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    b0 = rng.normal(size=(3,)).astype(np.float32)
    grads = [
        {
            "w": rng.normal(size=(4, 3)).astype(np.float32),
            "b": rng.normal(size=(3,)).astype(np.float32),
        }
        for _ in range(STEPS)
    ]
    timm_cases = []
    for decoupled in (False, True):
        w, b = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
        opt = rms_prop_tf(
            [{"params": [w], "weight_decay": 0.05}, {"params": [b], "weight_decay": 0.0}],
            lr=0.01,
            alpha=0.9,
            eps=1e-3,
            momentum=0.9,
            decoupled_decay=decoupled,
        )
        params = []
        for g in grads:
            w.grad, b.grad = torch.tensor(g["w"]), torch.tensor(g["b"])
            opt.step()
            params.append({"w": w.detach().numpy().tolist(), "b": b.detach().numpy().tolist()})
        timm_cases.append({"decoupled_decay": decoupled, "params": params})

    overflow = []
    for g0 in (1e20, -1e20):
        for centered in (False, True):
            p = torch.nn.Parameter(torch.tensor([1.0]))
            opt = torch.optim.RMSprop([p], lr=0.1, alpha=0.99, eps=1e-8, centered=centered)
            for _ in range(2):
                p.grad = torch.tensor([g0])
                opt.step()
            overflow.append(
                {
                    "grad": g0,
                    "centered": centered,
                    "param": p.item(),
                    "square_avg": opt.state[p]["square_avg"].item(),
                }
            )

    def plain_state(state_dict):
        """A state dict as JSON: tensors as lists, param indices as strings."""
        state = {
            str(i): {k: np.asarray(v).tolist() for k, v in entry.items()}
            for i, entry in state_dict["state"].items()
        }
        return {"state": state, "param_groups": state_dict["param_groups"]}

    w_init = rng.normal(size=(3, 4)).astype(np.float32)
    b_init = rng.normal(size=(3,)).astype(np.float32)
    resume_grads = [
        [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)]
        for _ in range(STEPS)
    ]
    settings = {
        "plain": [{"lr": 0.01}],
        "momentum": [{"lr": 0.01, "momentum": 0.9}],
        "centered": [{"lr": 0.01, "centered": True, "alpha": 0.9}],
        "weight_decay": [{"lr": 0.01, "weight_decay": 0.1, "eps": 1e-6}],
        "two_groups": [
            {"lr": 0.01, "weight_decay": 0.05, "momentum": 0.5},
            {"lr": 0.1, "weight_decay": 0.0, "centered": True},
        ],
    }
    resume = []
    for name, groups in settings.items():
        w = torch.nn.Parameter(torch.tensor(w_init))
        b = torch.nn.Parameter(torch.tensor(b_init))
        if len(groups) == 1:
            opt = torch.optim.RMSprop([w, b], **groups[0])
        else:
            opt = torch.optim.RMSprop([{"params": [w], **groups[0]}, {"params": [b], **groups[1]}])
        params, snapshots = [], {}
        for step, (gw, gb) in enumerate(resume_grads, start=1):
            w.grad, b.grad = torch.tensor(gw), torch.tensor(gb)
            opt.step()
            params.append([w.detach().numpy().tolist(), b.detach().numpy().tolist()])
            if step in (4, STEPS):
                snapshots[step] = plain_state(opt.state_dict())
        resume.append(
            {
                "name": name,
                "params": params,
                "state_at_4": snapshots[4],
                "state_at_end": snapshots[STEPS],
            }
        )
    recipes = _record_recipe_runs(rng, rms_prop_tf)
    data = {
        "recipes": recipes,
        "versions": {
            "torch": torch.__version__,
            "timm": importlib.metadata.version("timm"),
            "tensorflow": importlib.metadata.version("tensorflow-cpu"),
            "keras": importlib.metadata.version("keras"),
        },
        "torch_resume": {
            "params0": [w_init.tolist(), b_init.tolist()],
            "grads": [[g.tolist() for g in pair] for pair in resume_grads],
            "cases": resume,
        },
        "clip_grad_norm": {"cases": clip},
        "timm_rmsprop_tf": {
            "settings": {
                "lr": 0.01,
                "alpha": 0.9,
                "eps": 1e-3,
                "momentum": 0.9,
                "weight_decay": {"w": 0.05, "b": 0.0},
            },
            "params0": {"w": w0.tolist(), "b": b0.tolist()},
            "grads": [{k: v.tolist() for k, v in g.items()} for g in grads],
            "cases": timm_cases,
        },
        "torch_overflow": overflow,
    }
    (HERE / "recipes.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")


def check_any(framework):
    if framework == "keras_sparse":
        return check_sparse_file(framework)
    if framework == "keras_frontend":
        return check_frontend_file(framework)
    if framework.endswith("_long"):
        return check_long_file(framework)
    if framework == "keras_generations":
        return check_generations_file(framework)
    if framework == "recipes":
        return None  # read by tests/test_recipe_defects.py, which checks its shape as it goes
    return check_file(framework)


def main(argv):
    which = argv[1] if len(argv) > 1 else "all"
    recorders = {
        "keras": record_keras,
        "keras3": record_keras3,
        "tf1": record_tf1,
        "torch": record_torch,
        "keras_sparse": record_keras_sparse,
        "keras_frontend": record_keras_frontend,
        "torch_long": record_torch_long,
        "tf_long": record_tf_long,
        "keras_generations": record_keras_generations,
        "recipes": record_recipes,
    }
    if which == "keras_generations_part":  # one generation, in a subprocess of keras_generations
        record_keras_generations_part(argv[2], argv[3])
    elif which in recorders:
        recorders[which]()
        check_any(which)
    elif which == "all":
        for fw in FRAMEWORKS:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), fw], check=True)
        for fw in FRAMEWORKS:
            check_any(fw)
    elif which == "check":
        for fw in FRAMEWORKS:
            check_any(fw)
    else:
        raise SystemExit(f"usage: {argv[0]} {{{','.join(FRAMEWORKS)},all,check}}")


if __name__ == "__main__":
    main(sys.argv)
