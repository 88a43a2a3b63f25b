"""optax/_src/sharding_test.py, ported: state types (sharding included) stable through update.

JAX fixes its device count at import, so the 8-device checks run in a subprocess
(tests/conformance/sharding_script.py) that prints a JSON report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "conformance" / "sharding_script.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # the 8-device sharding set-up
def test_every_configuration_keeps_its_state_types_and_shardings(report: dict[str, Any]) -> None:
    assert report["devices"] == 8
    assert len(report["cases"]) == 30  # 5 conventions x 3 momentum kinds x centered
    for case, checks in report["cases"].items():
        assert all(checks.values()), (case, checks)
