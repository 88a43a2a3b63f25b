"""MkDocs hook: serve the benchmark plots from ``benchmarks/`` without copying them into docs/.

``docs/benchmarks/index.md`` includes ``benchmarks/RESULTS.md`` (pymdownx.snippets), whose image
links name the plots relative to that file (``sparse.png``). This hook adds every
``benchmarks/*.png`` to the site as ``benchmarks/<name>.png``, next to the page, so the links
resolve and the plots the benchmark scripts write are the ones the site shows.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Adds the benchmark plots to the site's files."""
    for plot in sorted(BENCHMARKS.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/{plot.name}", abs_src_path=str(plot)))
    return files
