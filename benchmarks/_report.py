"""What every benchmark script shares: the machine's description and RESULTS.md sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

import jax
import jaxlib
import numpy as np
import optax

import rmsprop_jax as rj


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(peer_versions: dict[str, str]) -> dict[str, str]:
    """The machine and versions a run's figures belong to.

    Args:
      peer_versions: name -> version of the script's other frameworks (torch, tensorflow, ...),
        listed after the JAX stack.
    """
    versions = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "rmsprop_jax": rj.__version__,
        "numpy": np.__version__,
        **peer_versions,
    }
    try:
        with open("/proc/meminfo") as info:
            memory = f"{int(info.readline().split()[1]) / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = "unknown RAM"
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
        "versions": ", ".join(f"{name} {version}" for name, version in versions.items()),
        "date": datetime.date.today().isoformat(),
        "load": f"{os.getloadavg()[0]:.2f}",
        "backend": jax.default_backend(),
    }


def write_section(path: Path, header: str, section: str) -> None:
    """Replaces the section that starts with ``header`` in ``path`` (or appends it).

    A section runs from its ``## `` header to the next ``## `` header, so the other sections,
    hand-written notes included, are kept.
    """
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(header)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    section = section.rstrip("\n") + "\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")
