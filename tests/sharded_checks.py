"""Runs on 8 CPU devices in a subprocess of tests/test_sharding.py and prints one JSON report.

XLA_FLAGS must give 8 host devices before jax is imported, which a pytest process that already
imported jax cannot do; test_sharding.py launches this file with it and asserts on the report.
Each check runs the same computation sharded and on one device and reports the differences.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import rmsprop_jax as rj
from tests.hlo import collectives

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

ROWS, WIDTH, STEPS = 64, 4, 6
EXAMPLE_STEPS = 40
TABLES = {"table": True, "dense": False, "bias": False}
CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "momentum_centered": {"momentum": 0.9, "centered": True},
    "nesterov_clipped": {"momentum": 0.5, "nesterov": True, "global_clipnorm": 0.5},
    "torch": {"momentum": 0.9, "convention": "torch", "clipnorm": 1.0},
}
SPARSE_CONFIGS = {"plain": {}, "momentum_centered": {"momentum": 0.9, "centered": True}}


def make_mesh(kind: str) -> jax.sharding.Mesh:
    axis_type = AxisType.Explicit if kind == "explicit" else AxisType.Auto
    return jax.make_mesh((8,), ("x",), (axis_type,))


def param_specs() -> dict[str, P]:
    return {"table": P("x", None), "dense": P(None, "x"), "bias": P()}


def host_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "table": rng.normal(size=(ROWS, WIDTH)).astype(np.float32),
        "dense": rng.normal(size=(3, 16)).astype(np.float32),
        "bias": rng.normal(size=(5,)).astype(np.float32),
    }


def place(tree: dict[str, Any], mesh: jax.sharding.Mesh | None) -> dict[str, Any]:
    if mesh is None:
        return {k: jax.device_put(v, jax.devices()[0]) for k, v in tree.items()}
    return {k: jax.device_put(v, NamedSharding(mesh, param_specs()[k])) for k, v in tree.items()}


def dense_grads(step: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + step)
    return {k: rng.normal(size=v.shape).astype(np.float32) for k, v in host_params().items()}


def sparse_indices(step: int) -> np.ndarray:
    """Duplicates, rows in every shard, and one out-of-range index (dropped)."""
    rng = np.random.default_rng(200 + step)
    return np.concatenate([rng.integers(0, ROWS, 9), [5, 5, ROWS + 3]]).astype(np.int32)


def sparse_values(step: int) -> np.ndarray:
    rng = np.random.default_rng(300 + step)
    return rng.normal(size=(12, WIDTH)).astype(np.float32)


def max_diff(a: Any, b: Any) -> float:
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


def spec_of(x: jax.Array) -> str:
    return str(getattr(x.sharding, "spec", x.sharding))


def state_mismatches(tx: Any, params: dict[str, jax.Array], state: Any) -> list[str]:
    """Every per-param state leaf whose sharding differs from its param's (rows for row_steps)."""
    bad = []
    for stage in state:
        for name in ("ms", "mg", "mom", "row_steps"):
            tree = getattr(stage, name, None)
            if tree is None:
                continue
            for key, leaf in tree.items():
                if leaf is None:
                    continue
                want = params[key].sharding
                if name == "row_steps" and isinstance(want, NamedSharding):
                    want = NamedSharding(want.mesh, P(want.spec[0]))
                if not leaf.sharding.is_equivalent_to(want, leaf.ndim):
                    bad.append(f"{name}[{key}]: {spec_of(leaf)} vs {want}")
    del tx
    return bad


def gather_control(mesh: jax.sharding.Mesh) -> list[dict[str, Any]]:
    """The collectives of a program that does gather the table: the parser must see them."""
    table = place(host_params(), mesh)["table"]
    replicated = NamedSharding(mesh, P())
    with jax.set_mesh(mesh):
        compiled = jax.jit(lambda t: t * 2, out_shardings=replicated).lower(table).compile()
    return collectives(compiled.as_text())


def run_dense(config: dict[str, Any], mesh: jax.sharding.Mesh | None) -> dict[str, Any]:
    tx = rj.rmsprop(0.01, **config)
    params = place(host_params(), mesh)
    state = jax.jit(tx.init)(params)
    report: dict[str, Any] = {"init_jit": state_mismatches(tx, params, state)}
    report["init_eager"] = state_mismatches(tx, params, tx.init(params))
    abstract = {
        k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding) for k, v in params.items()
    }
    report["init_abstract"] = state_mismatches(tx, params, tx.init(abstract))

    @jax.jit
    def step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    for k in range(STEPS):
        params, state = step(params, state, place(dense_grads(k), mesh))
    report["after_steps"] = state_mismatches(tx, params, state)
    report["params_kept"] = (
        all(
            params[k].sharding.is_equivalent_to(NamedSharding(mesh, s), params[k].ndim)
            for k, s in param_specs().items()
        )
        if mesh is not None
        else True
    )
    report["result"] = jax.tree.map(np.asarray, (params, state))
    return report


def run_sparse(mode: str, config: dict[str, Any], mesh: jax.sharding.Mesh | None) -> dict[str, Any]:
    tx = rj.rmsprop(0.01, sparse_mode=mode, sparse_tables=TABLES, **config)  # type: ignore[arg-type]
    params = place(host_params(), mesh)
    state = jax.jit(tx.init)(params)
    report: dict[str, Any] = {"init_jit": state_mismatches(tx, params, state)}

    def step(params: Any, state: Any, indices: jax.Array, values: jax.Array, rest: Any) -> Any:
        grads = {"table": rj.SparseRows(indices, values, (ROWS, WIDTH)), **rest}
        updates, state = tx.update(grads, state, params)
        return rj.apply_updates(params, updates), state

    jitted = jax.jit(step, donate_argnums=(0, 1))
    rest = {k: v for k, v in dense_grads(0).items() if k != "table"}
    if mesh is not None:
        compiled = jitted.lower(
            params, state, sparse_indices(0), sparse_values(0), place_rest(rest, mesh)
        ).compile()
        report["collectives"] = collectives(compiled.as_text())
    for k in range(STEPS):
        rest = {key: v for key, v in dense_grads(k).items() if key != "table"}
        params, state = jitted(
            params, state, sparse_indices(k), sparse_values(k), place_rest(rest, mesh)
        )
    report["after_steps"] = state_mismatches(tx, params, state)
    params, state = jax.jit(lambda p, s: rj.materialize(p, s))(params, state)
    report["after_materialize"] = state_mismatches(tx, params, state)
    report["result"] = jax.tree.map(np.asarray, (params, state))
    return report


def place_rest(rest: dict[str, Any], mesh: jax.sharding.Mesh | None) -> dict[str, Any]:
    if mesh is None:
        return rest
    return {k: jax.device_put(v, NamedSharding(mesh, param_specs()[k])) for k, v in rest.items()}


def clip_check(mesh: jax.sharding.Mesh) -> dict[str, float]:
    clip = rj.clip_by_global_norm(1.0)
    grads = dense_grads(7)
    with jax.set_mesh(mesh):
        sharded = jax.jit(lambda g: clip.update(g, None)[0])(place(grads, mesh))
    single = jax.jit(lambda g: clip.update(g, None)[0])(place(grads, None))
    return {
        "norm_before": float(
            np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values()))
        ),
        "norm_sharded": float(
            np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in sharded.values()))
        ),
        "max_diff": max_diff(sharded, single),
    }


def keras_check(mesh: jax.sharding.Mesh) -> dict[str, Any]:
    """rj.keras.RMSprop on sharded variables: slot and row shardings, and one-device equality."""

    def run(sharded: bool) -> tuple[Any, Any]:
        params = place(host_params(), mesh if sharded else None)
        variables = {name: rj.keras.Variable(value) for name, value in params.items()}
        opt = rj.keras.RMSprop(0.01, momentum=0.9, centered=True)
        table = rj.keras.RMSprop(0.01)  # momentum 0: sparse rows keep per-row bookkeeping
        for step in range(4):
            grads = place(dense_grads(step), mesh if sharded else None)
            opt.apply_gradients((grads[n], variables[n]) for n in variables if n != "table")
            rows = rj.SparseRows(
                jnp.asarray(sparse_indices(step)[:-1]),  # in range: checked eagerly
                jnp.asarray(sparse_values(step)[:-1]),
                variables["table"].shape,
            )
            table.apply_gradients([(rows, variables["table"])])
        return variables, (opt, table)

    variables, (opt, table) = run(True)
    single, _ = run(False)
    mismatches = []
    for name, var in variables.items():
        for slot_owner in (opt, table):
            for slot in slot_owner.get_slot_names():
                try:
                    value = slot_owner.get_slot(var, slot).value
                except (KeyError, ValueError):
                    continue
                if spec_of(value) != spec_of(var.value):
                    mismatches.append(f"{name}/{slot}: {spec_of(value)} vs {spec_of(var.value)}")
    rows = table._row_steps.get(id(variables["table"]))
    return {
        "slot_mismatches": mismatches,
        "row_steps_spec": None if rows is None else spec_of(rows),
        "table_spec": spec_of(variables["table"].value),
        "max_diff": max_diff(
            {n: v.value for n, v in variables.items()}, {n: v.value for n, v in single.items()}
        ),
    }


def strip_results(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "result"}


def main() -> None:
    out: dict[str, Any] = {"device_count": jax.device_count(), "meshes": {}}
    for kind in ("auto", "explicit"):
        mesh = make_mesh(kind)
        section: dict[str, Any] = {"dense": {}, "sparse": {}}
        for name, config in CONFIGS.items():
            with jax.set_mesh(mesh):
                sharded = run_dense(config, mesh)
            single = run_dense(config, None)
            section["dense"][name] = {
                **strip_results(sharded),
                "max_diff": max_diff(sharded["result"], single["result"]),
            }
        for mode in ("keras", "lazy", "dense"):
            for name, config in SPARSE_CONFIGS.items():
                with jax.set_mesh(mesh):
                    sharded = run_sparse(mode, config, mesh)
                single = run_sparse(mode, config, None)
                section["sparse"][f"{mode}/{name}"] = {
                    **strip_results(sharded),
                    "max_diff": max_diff(sharded["result"], single["result"]),
                }
        section["clip"] = clip_check(mesh)
        if kind == "auto":
            section["keras"] = keras_check(mesh)
        section["control"] = gather_control(mesh)
        out["meshes"][kind] = section
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
    import data_parallel  # pyright: ignore[reportMissingImports]

    losses, _ = data_parallel.train(EXAMPLE_STEPS)
    single_losses, _ = data_parallel.train(
        EXAMPLE_STEPS, data_parallel.make_mesh(jax.devices()[:1])
    )
    mesh = data_parallel.make_mesh()
    params = data_parallel.init_params(mesh)
    state = jax.jit(data_parallel.TX.init)(params)
    step = data_parallel.train_step.lower(params, state, *data_parallel.batch(mesh, 0))
    example_collectives = collectives(step.compile().as_text())
    explicit = data_parallel.make_mesh(axis_type=AxisType.Explicit)
    with jax.set_mesh(explicit):
        explicit_losses, _ = data_parallel.train(EXAMPLE_STEPS, explicit)
    out["example"] = {
        "losses": losses,
        "explicit_mesh_losses": explicit_losses,
        "single_device_losses": single_losses,
        "collectives": example_collectives,
        "table_size": data_parallel.ROWS * data_parallel.WIDTH,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
