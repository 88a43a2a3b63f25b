"""Griffe extension: adapt rmsprop_jax's docstrings to what mkdocstrings renders.

Two things are rewritten when the docs are built (the source docstrings stay as they are):

- ``Example:`` section titles become ``Examples:``. Griffe's Google parser renders ``Examples:``
  as highlighted doctest code but reads the singular as an admonition, where ``>>>`` lines turn
  into nested block quotes.
- reStructuredText maths (``:math:`x``` and ``.. math::`` blocks) becomes ``$x$`` and ``$$``
  blocks, which pymdownx.arithmatex hands to MathJax.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

EXAMPLE_TITLE = re.compile(r"^(\s*)Example:\s*$", flags=re.MULTILINE)
INLINE_MATH = re.compile(r":math:`([^`]+)`")


def _math_blocks(text: str) -> str:
    """Turns each ``.. math::`` directive and its indented body into a ``$$`` block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = re.match(r"^(\s*)\.\. math::\s*(.*)$", lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match.group(1))
        body = [match.group(2)] if match.group(2) else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i].strip())
            i += 1
        pad = " " * indent
        formula = "\n".join(pad + line for line in body if line)
        out += ["", f"{pad}$$", formula, f"{pad}$$", ""]
    return "\n".join(out)


def rewrite(docstring: str) -> str:
    """The docstring with ``Examples:`` titles and Markdown maths."""
    docstring = EXAMPLE_TITLE.sub(r"\1Examples:", docstring)
    return INLINE_MATH.sub(r"$\1$", _math_blocks(docstring))


class RstToMarkdown(griffe.Extension):
    """Applies `rewrite` to every docstring before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrites one object's docstring."""
        del kwargs
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
