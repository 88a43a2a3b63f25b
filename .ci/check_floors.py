"""Fails when CI installed another version of a runtime dependency than its declared floor.

`pyproject.toml` declares as the minimum of each dependency the version CI installs and tests
(CONTRIBUTING.md, "Dependency floors"). When the registry serves a newer version, CI installs
that one and the floor is no longer tested: this check says so, and which line to change.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def main() -> int:
    """Compares each ``name>=floor`` (or ``name>=floor,<cap``) dependency with the installed one."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    wrong = []
    for requirement in dependencies:
        pattern = r"([A-Za-z0-9_.-]+)>=([0-9.]+)(?:,<[0-9.]+)?"  # a floor, maybe a cap
        name, floor = re.fullmatch(pattern, requirement).groups()
        installed = importlib.metadata.version(name)
        status = "ok" if installed == floor else "DIFFERS"
        print(f"{name}: declared >={floor}, CI installed {installed} ({status})")
        if installed != floor:
            wrong.append(f"{name} (declared >={floor}, installed {installed})")
    if wrong:
        print(
            "CI tested other versions than the declared floors: " + ", ".join(wrong) + ". Raise "
            "the floor in pyproject.toml to what CI installed (and in CHANGELOG.md), or add a CI "
            "job that installs the floor; see CONTRIBUTING.md, 'Dependency floors'."
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
