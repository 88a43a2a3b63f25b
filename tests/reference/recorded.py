"""Loads the trajectories that `record.py` recorded from the real frameworks (JSON files here)."""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any

import numpy as np

HERE = pathlib.Path(__file__).parent
FRAMEWORKS = ("keras", "keras3", "tf1", "torch")


@functools.cache
def load(framework: str) -> dict[str, Any]:
    """The parsed JSON file of one framework's recording.

    The ``rj.rmsprop`` arguments of each case (``config``) are read with today's names:
    recordings made before ``decay`` became ``inverse_time_decay`` name it ``decay``.
    """
    data = json.loads((HERE / f"{framework}.json").read_text())
    for case in data.get("cases", []) if isinstance(data, dict) else []:
        config = case.get("config") if isinstance(case, dict) else None
        if isinstance(config, dict) and "convention" in config and "decay" in config:
            config["inverse_time_decay"] = config.pop("decay")
    return data


def cases(framework: str) -> list[dict[str, Any]]:
    """The recorded cases of one framework."""
    return load(framework)["cases"]


def as_arrays(tree: dict[str, Any]) -> dict[str, np.ndarray]:
    """A recorded {name: nested list} dict as float32 arrays."""
    return {name: np.asarray(value, dtype=np.float32) for name, value in tree.items()}
