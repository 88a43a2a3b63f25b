"""The documentation site: every public name has an API entry, the pages' code runs and gives
the numbers the pages state, and the site that ``mkdocs build --strict`` writes (docs extra
installed) shows each example script's code and loads nothing from the network (MathJax is
served with it)."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rmsprop_jax as rj
from rmsprop_jax import keras as rk
from tests.reference import recorded

ROOT = pathlib.Path(__file__).parents[1]
DOCS = ROOT / "docs"


def code_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.DOTALL)


def run_page(page: str) -> dict[str, Any]:
    """Runs a page's code blocks in order, in one namespace, with JAX's default promotion."""
    blocks = code_blocks(page)
    assert blocks, page
    namespace: dict[str, Any] = {}
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        for block in blocks:  # their own assertions check the numbers they state
            exec(compile(block, page, "exec"), namespace)
    return namespace


def api_directives() -> set[str]:
    text = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)$", text, flags=re.MULTILINE))


def test_every_public_name_has_an_api_entry() -> None:
    documented = api_directives()
    missing = {f"rmsprop_jax.{n}" for n in rj.__all__ if n != "keras"} - documented
    missing |= {f"rmsprop_jax.keras.{n}" for n in rk.__all__} - documented
    assert not missing, f"no `::: name` entry in docs/api/ for {sorted(missing)}"


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages and all(f": {page}\n" in nav for page in pages), pages


@pytest.mark.parametrize("page", ["quickstart.md", "stages.md", "conventions.md", "api/core.md"])
def test_page_code_runs(page: str) -> None:
    namespace = run_page(page)
    if page == "quickstart.md":
        assert namespace["losses"][-1] < 0.1 * namespace["losses"][0]
    if page == "conventions.md":
        np.testing.assert_allclose(namespace["first_step"]["keras"], -0.01e-4 / (1e-9**0.5 + 1e-7))


@pytest.mark.parametrize(
    "name",
    ["m0.9_centered_rho0.9_eps1e-07_lr0.01_g1", "wd0.01_m0.9_uncentered_rho0.9_eps1e-07_lr0.01_g1"],
)
def test_pytorch_page_resumes_a_recorded_pytorch_run(name: str) -> None:
    namespace = run_page("pytorch.md")
    (case,) = [c for c in recorded.cases("torch") if c["name"] == name]
    config, resume_at = case["config"], 4
    named = recorded.as_arrays(case["params"][resume_at - 1])
    slots = case["slots"][resume_at - 1]
    torch_names = {"ms": "square_avg", "mg": "grad_avg", "mom": "momentum_buffer"}
    group = {
        "lr": case["learning_rate"],
        "alpha": config["rho"],
        "eps": config["epsilon"],
        "weight_decay": config["weight_decay"] or 0,
        "momentum": config["momentum"],
        "centered": config["centered"],
        "maximize": False,
        "params": list(range(len(named))),
    }
    torch_state = {
        "state": {
            i: {"step": np.float32(resume_at)}
            | {torch_names[s]: np.float32(slots[s][n]) for s in slots if slots[s] is not None}
            for i, n in enumerate(named)
        },
        "param_groups": [group],
    }
    tx, state, params, _ = namespace["resume_from_torch"](torch_state, named)
    for step in range(resume_at, len(case["params"])):
        grads = {k: jnp.asarray(v) for k, v in recorded.as_arrays(case["grads"][step]).items()}
        updates, state = tx.update(grads, state, params)
        params = rj.apply_updates(params, updates)
        for k, want in recorded.as_arrays(case["params"][step]).items():
            np.testing.assert_allclose(params[k], want, rtol=1e-5, atol=1e-6)


def test_pytorch_page_groups_and_masks_run() -> None:
    namespace = run_page("pytorch.md")
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    groups, no_bias_decay = namespace["groups"], namespace["no_bias_decay"]
    updates, _ = groups.update(grads, groups.init(params), params)
    # one step of torch's RMSprop from zero state: -lr * g / (sqrt(0.01 g^2) + eps) = -10 lr
    np.testing.assert_allclose(updates["w"], -0.1, rtol=1e-6)
    np.testing.assert_allclose(updates["b"], -1.0, rtol=1e-6)
    updates, _ = no_bias_decay.update(grads, no_bias_decay.init(params), params)
    clipped = 1.0 / (np.sqrt(6.0) + 1e-6)  # clip_grad_norm_ of six ones to norm 1
    w_grad = clipped + 1e-4  # then the coupled decay of the weight (1.0), not of the bias
    np.testing.assert_allclose(updates["b"], -0.01 * clipped / (0.1 * clipped + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(updates["w"], -0.01 * w_grad / (0.1 * w_grad + 1e-8), rtol=1e-5)


RECIPES = json.loads((ROOT / "tests" / "reference" / "recipes.json").read_text())["recipes"]


@pytest.mark.parametrize("name", sorted(RECIPES["runs"]))
def test_recipes_page_gives_the_recorded_framework_runs(name: str) -> None:
    tx = run_page("recipes.md")[name]
    params = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in RECIPES["params0"].items()}
    state = tx.init(params)
    for step, (g, want) in enumerate(zip(RECIPES["grads"], RECIPES["runs"][name], strict=True)):
        grads = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in g.items()}
        with jax.numpy_dtype_promotion("standard"):  # the page's schedules mix Python floats
            updates, state = tx.update(grads, state, params)
        params = rj.apply_updates(params, updates)
        for k, value in want.items():
            np.testing.assert_allclose(
                params[k], value, rtol=2e-6, atol=1e-7, err_msg=f"{name}: {k} at step {step}"
            )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The site as ``mkdocs build --strict`` writes it (the docs extra must be installed)."""
    for module, distribution in (("mkdocs", "mkdocs"), ("mathjax", "django-static-mathjax")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'{distribution} is not installed (pip install -e ".[docs]")')
    home = tmp_path_factory.mktemp("home")
    site = home / "site"
    env = {"NO_MKDOCS_2_WARNING": "1", "PATH": "", "HOME": str(home)}
    if "PYTHONPATH" in os.environ:  # a checkout on the path comes first, as in the tests
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return site


def page_text(html_page: pathlib.Path) -> str:
    """A built page's text: tags dropped (highlighting splits code into spans), entities read."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_page.read_text()))


@pytest.mark.slow
def test_mkdocs_build_strict_passes(site: pathlib.Path) -> None:
    # the benchmark page shows benchmarks/RESULTS.md and its plots
    results = (site / "benchmarks" / "index.html").read_text()
    assert "Dense step suite" in results and 'src="sparse.png"' in results
    for plot in (ROOT / "benchmarks").glob("*.png"):
        assert (site / "benchmarks" / plot.name).read_bytes() == plot.read_bytes()
    # the API pages are rendered from the docstrings, maths included
    api = (site / "api" / "core" / "index.html").read_text()
    assert "Scales updates by the root of the running mean of their squares" in api
    assert 'class="arithmatex"' in api and ":math:" not in api


SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', flags=re.MULTILINE)


def test_examples_page_includes_each_script_with_a_valid_snippet_marker() -> None:
    page = (DOCS / "examples.md").read_text()
    scripts = SNIPPET.findall(page)
    assert scripts == [
        "docs/examples/flax_nnx.py",
        "docs/examples/flax_linen.py",
        "docs/examples/recommender.py",
        "docs/examples/resume_tf_keras.py",
        "docs/examples/multi_process.py",
    ]
    # any other line starting like a marker is a marker the formatter mangled
    assert page.count("--8") == len(scripts), 'a snippet marker is not written --8<-- "path"'


@pytest.mark.slow
def test_examples_page_shows_each_scripts_code(site: pathlib.Path) -> None:
    shown = page_text(site / "examples" / "index.html")
    assert "--8" not in shown
    for script in SNIPPET.findall((DOCS / "examples.md").read_text()):
        lines = [line.strip() for line in (ROOT / script).read_text().splitlines()]
        missing = [line for line in lines if line and line not in shown]
        assert not missing, f"{script}: {len(missing)} lines not on the page, first {missing[0]!r}"


NETWORK = re.compile(r"^(https?:)?//", flags=re.IGNORECASE)


@pytest.mark.slow
def test_site_loads_no_script_or_style_from_the_network(site: pathlib.Path) -> None:
    loaded: set[str] = set()
    for page in site.rglob("*.html"):
        text = page.read_text()
        loaded |= set(re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", text))
        loaded |= set(re.findall(r"<link\b[^>]*\bhref=\"([^\"]+)\"", text))
        loaded |= set(re.findall(r"<img\b[^>]*\bsrc=\"([^\"]+)\"", text))
    remote = sorted(url for url in loaded if NETWORK.match(url))
    assert not remote, f"the site loads from the network: {remote}"
    # the maths renderer is one of the site's own files, and the pages load it
    api = (site / "api" / "core" / "index.html").read_text()
    mathjax = re.findall(r'<script\b[^>]*\bsrc="([^"]*tex-mml-chtml\.js)"', api)
    assert mathjax, "the API page does not load MathJax"
    served = (site / "api" / "core" / mathjax[0]).resolve()
    assert served.is_file() and b"MathJax" in served.read_bytes()[:100_000]
    # and the fonts it asks for next to itself are there too
    assert list((served.parent / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_quoted_sparse_figures_are_those_of_the_quiet_run() -> None:
    """docs/index.md and docs/sparse.md quote the sparse benchmark as benchmarks/RESULTS.md holds
    it (each figure rounded to the digits quoted), from a run the harness did not mark
    provisional."""
    assert json.loads((ROOT / "benchmarks/results/sparse.json").read_text())["provisional"] is False
    results = (ROOT / "benchmarks/RESULTS.md").read_text()
    section = results[results.index("## Sparse step\n") : results.index("## Keras front end\n")]
    assert "Provisional" not in section[: section.index("## Sparse step: reading")]
    held = [float(x.replace(",", "")) for x in re.findall(r"(\d[\d,]*\.\d+)x", section)]
    quoting = {
        "index.md": next(
            line
            for line in (DOCS / "index.md").read_text().splitlines()
            if "faster than optax" in line
        ),
        "sparse.md": next(
            p
            for p in (DOCS / "sparse.md").read_text().split("\n\n")
            if "ResourceSparseApplyRMSProp" in p and "faster" in p
        ),
    }
    for page, text in quoting.items():
        quoted = re.findall(r"(\d+(?:\.(\d+))?)x\b", text)
        assert len(quoted) >= 2, page
        for figure, decimals in quoted:
            digits = len(decimals)
            assert any(round(v, digits) == float(figure) for v in held), (page, figure)
