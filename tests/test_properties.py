"""Property tests: `rj.rmsprop` in float32 against the float64 NumPy reference, over random configs.

Every hyperparameter is rounded to a float32 number before both sides see it, so the comparison
measures float32 arithmetic, not the representation of, say, ``rho=0.999`` (whose ``1 - rho``
differs by 1e-5 relative between float32 and float64).
"""

from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from jax.experimental import checkify

import rmsprop_jax as rj
from tests.reference.numpy_rmsprop import CONVENTION_NAMES, reference_trajectory

STEPS = 6
SHAPES = [(), (3,), (2, 3), (4, 1, 2)]

# Reproducible in CI: the same examples on every run, no example database on disk.
PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def f32(x: float) -> float:
    """The float32 number nearest ``x``, as a Python float."""
    return float(np.float32(x))


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(np.log10(low), np.log10(high)).map(lambda e: f32(10.0**e))


@st.composite
def rmsprop_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Hyperparameters for `rj.rmsprop` and the reference, plus the data to run them on."""
    convention = draw(st.sampled_from(CONVENTION_NAMES))
    centered = draw(st.booleans())
    # Ranges where float32 is honestly accurate to ~1e-6 relative:
    # - uncentered, TF's "interpolate" order ms + (g*g - ms)*(1 - rho) loses ulp(ms_old) when the
    #   new value is ~rho*ms_old, a relative error up to eps32/rho, so rho >= 0.1;
    # - centered, v = ms - mg**2 cancels: Cauchy-Schwarz gives v >= rho**t * ms after t steps
    #   from zero, so the relative error of v grows like eps32 / rho**t. rho >= 0.5 keeps it below
    #   64 * eps32 over 6 steps; with rho near 0, v is pure round-off (recorded TF/torch runs
    #   disagree with float64 by 50% there, and so does this library).
    rho = draw(st.floats(0.5 if centered else 0.1, 0.999).map(f32))
    momentum = draw(st.one_of(st.just(0.0), st.floats(0.05, 0.95).map(f32)))
    nesterov = momentum > 0 and draw(st.booleans())
    gscale = draw(log_uniform(1e-3, 1e2))
    clip = draw(st.sampled_from(["none", "value", "norm", "global", "value+norm", "value+global"]))
    clipvalue = (
        draw(st.floats(0.2, 2.0).map(lambda c: f32(c * gscale))) if "value" in clip else None
    )
    clipnorm = draw(st.floats(0.3, 3.0).map(lambda c: f32(c * gscale))) if "norm" in clip else None
    global_clipnorm = (
        draw(st.floats(0.5, 5.0).map(lambda c: f32(c * gscale))) if "global" in clip else None
    )
    if draw(st.booleans()):
        learning_rate: float | list[float] = draw(log_uniform(1e-4, 1e-1))
    else:  # a different learning rate at every step, given to the library as an optax schedule
        learning_rate = draw(st.lists(log_uniform(1e-4, 1e-1), min_size=STEPS, max_size=STEPS))
    names = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True))
    return {
        "hyper": {
            "convention": convention,
            "rho": rho,
            "momentum": momentum,
            "epsilon": draw(log_uniform(1e-8, 1e-1)),
            "centered": centered,
            "nesterov": nesterov,
            "clipvalue": clipvalue,
            "clipnorm": clipnorm,
            "global_clipnorm": global_clipnorm,
            "inverse_time_decay": draw(st.one_of(st.just(0.0), st.floats(0.0, 0.5).map(f32))),
            "weight_decay": draw(st.one_of(st.none(), st.just(0.0), log_uniform(1e-4, 1e-1))),
            # torch and keras3 have a coupling of their own (None); the others need a choice
            "decoupled_weight_decay": draw(
                st.sampled_from([None, True, False])
                if convention in ("torch", "keras3")
                else st.booleans()
            ),
            "maximize": draw(st.booleans()),
        },
        "learning_rate": learning_rate,
        "shapes": {name: draw(st.sampled_from(SHAPES)) for name in names},
        "gscale": gscale,
        "zero_step": draw(st.integers(0, STEPS - 1)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def make_data(
    shapes: dict[str, tuple[int, ...]], gscale: float, zero_step: int, seed: int, dtype: Any
) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Params and STEPS gradient trees in ``dtype``, with step ``zero_step`` all zeros."""
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
    grads = []
    for t in range(STEPS):
        tree = {k: (rng.normal(size=s) * gscale).astype(dtype) for k, s in shapes.items()}
        if t == zero_step:
            tree = {k: np.zeros_like(v) for k, v in tree.items()}
        grads.append(tree)
    return params, grads


def library_learning_rate(learning_rate: float | list[float]) -> Any:
    if isinstance(learning_rate, list):
        table = jnp.asarray(learning_rate, jnp.float32)
        return lambda count: table[count]
    return learning_rate


def find_state(state: Any, kind: type) -> Any:
    """The first sub-state of type ``kind`` in a (nested) chain state, or None."""
    if isinstance(state, kind):
        return state
    if isinstance(state, tuple):
        for sub in state:
            found = find_state(sub, kind)
            if found is not None:
                return found
    return None


def jit_this(seed: int, every: int) -> bool:
    """Whether an example runs jitted: about one in ``every``, picked by the example's seed.

    The others run eagerly: the same Python, whose small ops JAX compiles once per shape for
    every example, where each jitted example compiles its whole step anew (the bulk of a
    property test's time). The jitted share checks that compiling changes nothing.
    """
    return seed % every == 0


def run_library(
    tx: Any, params: dict[str, Any], grads: list[dict[str, Any]], *, jit: bool
) -> tuple[list[dict], list[dict], list[Any]]:
    """Steps (jitted or eager); returns the params, the updates and the state after each step."""

    def step(params: Any, state: Any, grad: Any) -> tuple[Any, Any, Any]:
        updates, state = tx.update(grad, state, params)
        return rj.apply_updates(params, updates), updates, state

    if jit:
        step = jax.jit(step)

    params = jax.tree.map(jnp.asarray, params)
    state = tx.init(params)
    all_params, all_updates, all_states = [], [], []
    for grad in grads:
        params, updates, state = step(params, state, jax.tree.map(jnp.asarray, grad))
        all_params.append(params)
        all_updates.append(updates)
        all_states.append(state)
    return all_params, all_updates, all_states


def slots_of(state: Any) -> dict[str, dict[str, Any] | None]:
    """The ``ms``, ``mg`` and ``mom`` trees of an `rj.rmsprop` state (None when absent)."""
    rms = find_state(state, rj.ScaleByRmsState) or find_state(state, rj.ScaleByCenteredRmsState)
    mom = find_state(state, rj.TraceMomentumState)
    return {
        "ms": rms.ms,
        "mg": getattr(rms, "mg", None),
        "mom": None if mom is None else mom.mom,
    }


def assert_tree_close(
    actual: dict[str, Any],
    expected: dict[str, np.ndarray],
    *,
    rtol: float,
    atol_rel: float,
    what: str,
) -> None:
    """Elementwise ``|a - e| <= atol + rtol*|e|``, ``atol = atol_rel * max|e|`` over the tree."""
    scale = max(float(np.max(np.abs(v), initial=0.0)) for v in expected.values())
    for key, want in expected.items():
        got = np.asarray(actual[key], dtype=np.float64)
        np.testing.assert_allclose(
            got, want, rtol=rtol, atol=atol_rel * scale, err_msg=f"{what}, leaf {key!r}"
        )


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(config=rmsprop_configs())
def test_float32_rmsprop_matches_float64_reference(config: dict[str, Any]) -> None:
    hyper, learning_rate = config["hyper"], config["learning_rate"]
    params0, grads = make_data(
        config["shapes"], config["gscale"], config["zero_step"], config["seed"], np.float32
    )
    tx = rj.rmsprop(learning_rate=library_learning_rate(learning_rate), **hyper)
    jit = jit_this(config["seed"], every=8)
    got_params, got_updates, got_states = run_library(tx, params0, grads, jit=jit)

    as64 = lambda tree: {k: v.astype(np.float64) for k, v in tree.items()}  # noqa: E731
    want_params, want_slots = reference_trajectory(
        as64(params0), [as64(g) for g in grads], learning_rate=learning_rate, **hyper
    )

    previous = as64(params0)
    for t in range(STEPS):
        where = f"step {t}"
        for leaf in jax.tree.leaves(got_updates[t]):
            assert leaf.dtype == jnp.float32
        # The step itself, relative to the largest step of the tree (elements of an RMS-normalised
        # step are of comparable size, so a small atol still tests every element).
        want_step = {k: want_params[t][k] - previous[k] for k in previous}
        assert_tree_close(got_updates[t], want_step, rtol=1e-4, atol_rel=1e-5, what=f"{where} step")
        # The params accumulate one float32 rounding of |w| per step.
        assert_tree_close(
            got_params[t], want_params[t], rtol=1e-4, atol_rel=1e-6, what=f"{where} params"
        )
        slots = slots_of(got_states[t])
        assert_tree_close(
            slots["ms"], want_slots[t]["ms"], rtol=1e-4, atol_rel=1e-6, what=f"{where} ms"
        )
        assert (slots["mg"] is not None) == hyper["centered"]
        if hyper["centered"]:
            assert_tree_close(
                slots["mg"], want_slots[t]["mg"], rtol=1e-4, atol_rel=1e-5, what=f"{where} mg"
            )
        assert (slots["mom"] is not None) == (hyper["momentum"] > 0)
        if hyper["momentum"] > 0:
            assert_tree_close(
                slots["mom"], want_slots[t]["mom"], rtol=1e-4, atol_rel=1e-5, what=f"{where} mom"
            )
        previous = want_params[t]


BF16_EPS = 2.0**-8  # bfloat16 keeps 8 significant bits: one rounding is at most 2**-9 relative


@settings(PROPERTY_SETTINGS, max_examples=20)
@given(
    convention=st.sampled_from(CONVENTION_NAMES),
    centered=st.booleans(),
    rho=st.sampled_from([0.9, 0.99, 0.999]),
    momentum=st.sampled_from([0.0, 0.9]),
    maximize=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_bfloat16_params_with_float32_state_track_float64_reference(
    convention: str, centered: bool, rho: float, momentum: float, maximize: bool, seed: int
) -> None:
    # No clipping and no weight decay here: both round the gradient itself to bfloat16 (clipping
    # returns bfloat16, coupled decay reads the bfloat16 params), which moves ms by 2**-9.
    rho = f32(rho)
    params0, grads = make_data({"w": (2, 3), "b": (3,)}, 1.0, 2, seed, jnp.bfloat16)
    hyper = dict(
        rho=rho,
        momentum=momentum,
        epsilon=f32(1e-7),
        centered=centered,
        maximize=maximize,
        convention=convention,
    )
    tx = rj.rmsprop(learning_rate=1e-2, state_dtype=jnp.float32, **hyper)
    jit = jit_this(seed, every=4)
    got_params, got_updates, got_states = run_library(tx, params0, grads, jit=jit)

    as64 = lambda tree: {k: np.asarray(v, np.float64) for k, v in tree.items()}  # noqa: E731
    want_params, want_slots = reference_trajectory(
        as64(params0), [as64(g) for g in grads], learning_rate=1e-2, **hyper
    )
    for t in range(STEPS):
        for leaf in jax.tree.leaves(got_updates[t]):
            assert leaf.dtype == jnp.bfloat16  # updates.dtype == grads.dtype
        for leaf in jax.tree.leaves(got_params[t]):
            assert leaf.dtype == jnp.bfloat16
        slots = slots_of(got_states[t])
        for leaf in jax.tree.leaves(slots):
            assert leaf.dtype == jnp.float32
        # The gradients are exact in float32, and so are ms (and mg) up to float32 round-off: a
        # bfloat16 mean square (rho=0.999: ms + 0.001*g*g rounds back to ms) would fail this.
        assert_tree_close(
            slots["ms"], want_slots[t]["ms"], rtol=1e-5, atol_rel=1e-6, what=f"step {t} ms"
        )
        if centered:
            assert_tree_close(
                slots["mg"], want_slots[t]["mg"], rtol=1e-4, atol_rel=1e-5, what=f"step {t} mg"
            )
        # Each update is rounded to bfloat16 a few times, and each step rounds the params once.
        assert_tree_close(
            got_params[t],
            want_params[t],
            rtol=0.0,
            atol_rel=(t + 1) * BF16_EPS,
            what=f"step {t} params",
        )


@pytest.mark.fast_share(3)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("state_dtype", [None, jnp.float32])
@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_updates_keep_the_gradient_dtype(convention: str, state_dtype: Any, dtype: Any) -> None:
    params = {"w": jnp.ones((2, 3), dtype), "s": jnp.ones((), dtype)}
    grads = {"w": jnp.full((2, 3), 0.5, dtype), "s": jnp.asarray(-0.25, dtype)}
    tx = rj.rmsprop(
        learning_rate=1e-2,
        momentum=0.9,
        centered=True,
        weight_decay=0.01,
        decoupled_weight_decay=convention != "torch",
        clipnorm=1.0,
        state_dtype=state_dtype,
        convention=convention,
    )
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    assert {k: v.dtype for k, v in updates.items()} == {"w": dtype, "s": dtype}
    slots = slots_of(state)
    for leaf in jax.tree.leaves(slots):
        assert leaf.dtype == (state_dtype or dtype)
    assert all(np.all(np.isfinite(np.asarray(u, np.float32))) for u in updates.values())


# --- float32, bfloat16 and float16 params, low-precision state, random shapes ---------------

# One rounding to the dtype moves a number by at most half its spacing at 1: EPS / 2 relative.
EPS = {"float32": 2.0**-23, "bfloat16": 2.0**-7, "float16": 2.0**-10}
# Params after step t are within (t + 1) * PARAM_ROUNDINGS * EPS * W of the float64 run, W the
# largest |w| so far:
# each step rounds the params once, the update a few times (the gradient, ms and mg when they
# are stored in the dtype, the step itself), and momentum carries earlier updates' errors along.
# Measured worst case of |w - w64| / ((t + 1) * EPS * W) over 200 random examples: 0.45
# (bfloat16 params: 0.45 with float32 state, 0.44 with bfloat16 state; float16: 0.44, 0.42;
# float32: 0.42).
PARAM_ROUNDINGS = 2.0


@st.composite
def dtype_cases(draw: st.DrawFn) -> dict[str, Any]:
    """A config for params in float32, bfloat16 or float16, with the state in the same dtype or
    float32. Gradients are 0.5 to 2 in size, so g**2 * (1 - rho) is a normal float16 number;
    centered runs keep rho >= 0.9 (ms - mg**2 >= rho**t ms: little cancellation in 6 steps)."""
    centered = draw(st.booleans())
    momentum = draw(st.one_of(st.just(0.0), st.floats(0.1, 0.9).map(f32)))
    names = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True))
    return {
        "dtype": draw(st.sampled_from(["float32", "bfloat16", "float16"])),
        "state_dtype": draw(st.sampled_from([None, "float32"])),
        "hyper": {
            "convention": draw(st.sampled_from(CONVENTION_NAMES)),
            "rho": draw(st.floats(0.9 if centered else 0.5, 0.99).map(f32)),
            "momentum": momentum,
            "nesterov": momentum > 0 and draw(st.booleans()),
            "epsilon": draw(log_uniform(1e-7, 1e-2)),
            "centered": centered,
            "learning_rate": draw(log_uniform(1e-3, 1e-1)),
        },
        "shapes": {
            name: draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)) for name in names
        },
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@pytest.mark.slow
@settings(PROPERTY_SETTINGS, max_examples=60)
@given(case=dtype_cases())
def test_low_precision_params_track_float64_reference(case: dict[str, Any]) -> None:
    dtype, hyper = jnp.dtype(case["dtype"]), case["hyper"]
    rng = np.random.default_rng(case["seed"])
    shapes = case["shapes"]

    def draw_grad(shape: tuple[int, ...]) -> np.ndarray:
        magnitude = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        return np.asarray(jnp.asarray(magnitude, dtype))

    params0 = {k: np.asarray(jnp.asarray(rng.normal(size=s), dtype)) for k, s in shapes.items()}
    grads = [{k: draw_grad(s) for k, s in shapes.items()} for _ in range(STEPS)]
    tx = rj.rmsprop(state_dtype=case["state_dtype"], **hyper)
    jit = jit_this(case["seed"], every=6)
    got_params, got_updates, got_states = run_library(tx, params0, grads, jit=jit)

    as64 = lambda tree: {k: np.asarray(v, np.float64) for k, v in tree.items()}  # noqa: E731
    want_params, _ = reference_trajectory(as64(params0), [as64(g) for g in grads], **hyper)
    eps = EPS[case["dtype"]]
    largest = max(float(np.max(np.abs(v), initial=0.0)) for v in params0.values())
    for t in range(STEPS):
        # The params rounded so far were as large as `largest`: their rounding errors remain.
        largest = max([largest, *(float(np.max(np.abs(v))) for v in want_params[t].values())])
        assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(got_updates[t]))
        assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(got_params[t]))
        state_dtype = jnp.dtype(case["state_dtype"] or dtype)
        assert all(leaf.dtype == state_dtype for leaf in jax.tree.leaves(slots_of(got_states[t])))
        for key, want in want_params[t].items():
            np.testing.assert_allclose(
                np.asarray(got_params[t][key], np.float64),
                want,
                rtol=0.0,
                atol=(t + 1) * PARAM_ROUNDINGS * eps * largest,
                err_msg=f"{dtype} params, state {state_dtype}, step {t}, leaf {key!r}",
            )


# --- SparseRows index patterns ----------------------------------------------------------------

TABLE_ROWS, TABLE_DIM, SPARSE_STEPS = 8, 2, 4
PATTERNS = ["duplicates", "distinct", "empty", "out_of_range", "unsorted"]


@st.composite
def index_patterns(draw: st.DrawFn) -> np.ndarray:
    """Row indices of one sparse gradient, in one of the PATTERNS (int32, any length)."""
    pattern = draw(st.sampled_from(PATTERNS))
    if pattern == "empty":
        return np.zeros((0,), np.int32)
    if pattern == "duplicates":  # the same row, over and over
        row = draw(st.integers(0, TABLE_ROWS - 1))
        return np.full(draw(st.integers(2, 6)), row, np.int32)
    rows = st.integers(0, TABLE_ROWS - 1)
    if pattern == "distinct":
        return np.asarray(sorted(draw(st.sets(rows, min_size=1, max_size=TABLE_ROWS))), np.int32)
    if pattern == "unsorted":  # descending with repeats
        picked = draw(st.lists(rows, min_size=2, max_size=6))
        return np.asarray(sorted(picked, reverse=True), np.int32)
    bad = st.sampled_from([-TABLE_ROWS - 1, -1, TABLE_ROWS, TABLE_ROWS + 3, 2**31 - 1])
    mixed = draw(st.lists(st.one_of(rows, bad), min_size=1, max_size=6))
    return np.asarray([*mixed, draw(bad)], np.int32)  # at least one out of range


def _densify(indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The float64 dense gradient: values of in-range rows summed, out-of-range rows dropped."""
    dense = np.zeros((TABLE_ROWS, TABLE_DIM))
    for i, v in zip(indices, values, strict=True):
        if 0 <= i < TABLE_ROWS:
            dense[i] += v.astype(np.float64)
    return dense


@pytest.mark.slow
@settings(PROPERTY_SETTINGS, max_examples=30)
@given(
    patterns=st.lists(index_patterns(), min_size=SPARSE_STEPS, max_size=SPARSE_STEPS),
    mode=st.sampled_from(["dense", "lazy"]),
    convention=st.sampled_from(CONVENTION_NAMES),
    momentum=st.sampled_from([0.0, 0.9]),
    centered=st.booleans(),
    rho=st.floats(0.5, 0.99).map(f32),
    seed=st.integers(0, 2**32 - 1),
)
def test_sparse_index_patterns_match_float64_reference(
    patterns: list[np.ndarray],
    mode: str,
    convention: str,
    momentum: float,
    centered: bool,
    rho: float,
    seed: int,
) -> None:
    """Duplicates add up, out-of-range rows are dropped (and `check_indices` reports them under
    checkify), order does not matter, an empty gradient is a step with zero gradient. "dense"
    mode is the dense float64 algorithm fed the densified gradient; "lazy" mode is, row by row,
    the float64 algorithm run over only the steps that touch the row."""
    rng = np.random.default_rng(seed)
    hyper = dict(
        learning_rate=0.05,
        rho=rho,
        momentum=momentum,
        epsilon=1e-6,
        centered=centered,
        convention=convention,
    )
    tx = rj.rmsprop(**hyper, sparse_mode=mode, sparse_tables={"t": True})
    table0 = rng.normal(size=(TABLE_ROWS, TABLE_DIM)).astype(np.float32)
    steps = [(idx, rng.normal(size=(len(idx), TABLE_DIM)).astype(np.float32)) for idx in patterns]

    def train(params: Any, steps: Any) -> Any:
        state = tx.init(params)
        for indices, values in steps:
            grads = {"t": rj.SparseRows(indices, values, (TABLE_ROWS, TABLE_DIM))}
            updates, state = tx.update(grads, state, params)
            params = rj.apply_updates(params, updates)
        return rj.materialize(params, state)[0]

    def check(steps: Any) -> None:
        rj.check_indices([rj.SparseRows(i, v, (TABLE_ROWS, TABLE_DIM)) for i, v in steps])

    # Under jit a step drops out-of-range rows; checkify with check_indices reports the first.
    error, _ = checkify.checkify(jax.jit(check))([tuple(map(jnp.asarray, s)) for s in steps])
    bad = [k for k, (idx, _) in enumerate(steps) if np.any((idx < 0) | (idx >= TABLE_ROWS))]
    if bad:
        assert f"at [{bad[0]}] for a table of {TABLE_ROWS} rows" in str(error.get())
    else:
        assert error.get() is None
    # Eager SparseRows refuse out-of-range rows on the host, so those examples run jitted (one
    # compilation for all the steps), as does a share of the others.
    jitted = jax.jit(train) if bad or jit_this(seed, every=4) else train
    params = jitted({"t": jnp.asarray(table0)}, [tuple(map(jnp.asarray, s)) for s in steps])
    got = np.asarray(params["t"], np.float64)

    dense = [_densify(idx, val) for idx, val in steps]
    if mode == "dense":
        want, _ = reference_trajectory(
            {"t": table0.astype(np.float64)}, [{"t": g} for g in dense], **hyper
        )
        expected = want[-1]["t"]
    else:
        expected = table0.astype(np.float64)
        for row in range(TABLE_ROWS):
            touched = [
                {"r": g[row]} for g, (idx, _) in zip(dense, steps, strict=True) if row in idx
            ]
            if touched:
                want, _ = reference_trajectory({"r": expected[row]}, touched, **hyper)
                expected[row] = want[-1]["r"]
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)
    untouched = [r for r in range(TABLE_ROWS) if not any(r in idx for idx, _ in steps)]
    if mode == "lazy" or momentum == 0.0:  # no momentum to carry: untouched rows never move
        np.testing.assert_array_equal(got[untouched], table0[untouched])
