"""MkDocs hook: serve MathJax with the site, so that the maths renders offline.

The ``docs`` extra installs ``django-static-mathjax`` (MathJax 3.2.2's browser files; the Django
part is a name only, it needs no Django). This hook adds its ``es5/`` directory to the site as
``javascripts/vendor/mathjax/``, where ``mkdocs.yml`` loads ``tex-mml-chtml.js`` from; MathJax
then loads its fonts and extensions relative to that file, so no page fetches anything from
the network.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

DISTRIBUTION = "django-static-mathjax"
SITE_DIR = "javascripts/vendor/mathjax"


def mathjax_dir() -> Path:
    """The installed MathJax ``es5/`` directory."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise PluginError(
            f"MathJax is served with the site from the {DISTRIBUTION!r} package, which is not "
            'installed. Install the docs extra: pip install -e ".[docs]"'
        ) from None
    es5 = Path(str(distribution.locate_file("mathjax/static/mathjax/es5")))
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise PluginError(f"{DISTRIBUTION} is installed but {es5}/tex-mml-chtml.js is missing")
    return es5


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Adds MathJax's files to the site's files."""
    es5 = mathjax_dir()
    for path in sorted(p for p in es5.rglob("*") if p.is_file()):
        uri = f"{SITE_DIR}/{path.relative_to(es5).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
