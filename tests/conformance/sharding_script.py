"""Run by test_optax_sharding.py in a subprocess with 8 host devices; prints a JSON report.

Ported in this project's words from optax/_src/sharding_test.py
(``test_state_sharding_type_init_match_update``, ``test_state_sharding_type_preserved_with_jit``):
on an explicit-axes mesh, the state's types (shape, dtype and sharding) after ``update`` equal
those after ``init``, jitted or not, for every convention x momentum kind x centered.
"""

from __future__ import annotations

import json
import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
)

import jax
import jax.numpy as jnp

import rmsprop_jax as rj

MOMENTA = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
}


def main() -> None:
    mesh = jax.make_mesh((8,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
    sharding = jax.sharding.NamedSharding(mesh, jax.P(None, "x"))
    report = {"devices": jax.device_count(), "cases": {}}
    with jax.set_mesh(mesh):
        params = jnp.zeros((2, 8, 4), dtype=jnp.float16, out_sharding=sharding)
        for convention in rj.CONVENTIONS:
            for name, kwargs in MOMENTA.items():
                for centered in (False, True):
                    tx = rj.rmsprop(1.0, convention=convention, centered=centered, **kwargs)
                    types = lambda tree: jax.tree.map(lambda x: str(jax.typeof(x)), tree)  # noqa: E731
                    state0 = tx.init(params)
                    state_jit = jax.jit(tx.init)(params)
                    _, state1 = tx.update(params, state0, params)
                    _, state2 = jax.jit(tx.update)(params, state0, params)
                    t0, t1, t2, tj = (types(s) for s in (state0, state1, state2, state_jit))
                    key = f"{convention}-{name}{'-centered' if centered else ''}"
                    report["cases"][key] = {
                        "init_matches_update": t0 == t1,
                        "jit_init_matches": t0 == tj,
                        "jit_update_matches": t1 == t2,
                        "accumulators_sharded": all(
                            "x" in str(jax.typeof(leaf))
                            for leaf in jax.tree.leaves(state0)
                            if leaf.shape == params.shape
                        ),
                    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
