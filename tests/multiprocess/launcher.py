"""Starts N JAX processes on 127.0.0.1 that form one global CPU mesh, and never leaves one behind.

The parent side, `launch`, picks a free port, starts every worker in its own process group
(``start_new_session=True``), and watches them: the first worker that exits with an error ends
every other worker's group at once and raises `WorkerFailed` with that worker's stderr; a run
past ``timeout`` ends them all and raises `WorkerFailed` too. Each worker writes one JSON report,
which `launch` returns in process order.

The worker side, `connect`, reads the flags `launch` passes, gives the process its CPU devices
(``jax_num_cpu_devices``, before the backend starts) and joins the others with
``jax.distributed.initialize``; `report` writes the worker's JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class WorkerFailed(RuntimeError):
    """A worker exited with an error, or the run took longer than its timeout."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """Kills the worker's whole process group (it and anything it started) and reaps it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def _tail(path: Path, chars: int = 6000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-chars:]


def launch(
    script: str | Path,
    num_processes: int,
    local_devices: int,
    args: Sequence[str] = (),
    *,
    timeout: float = 300.0,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Runs ``script`` as ``num_processes`` workers of ``local_devices`` CPU devices each.

    Args:
      script: the worker, a Python file that calls `connect` first and `report` last.
      num_processes: how many processes form the mesh.
      local_devices: CPU devices per process.
      args: extra command-line arguments for every worker.
      timeout: seconds the whole run may take.
      env: extra environment variables for the workers.

    Returns:
      The workers' reports, in process order.

    Raises:
      WorkerFailed: a worker exited with an error (its stderr is in the message), or the run
        took longer than ``timeout``. Every worker has ended when it is raised.
    """
    port = free_port()
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["JAX_PLATFORMS"] = "cpu"
    child_env.pop("XLA_FLAGS", None)  # devices come from jax_num_cpu_devices, not host flags
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [child_env.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryDirectory(prefix="rj_launch_") as tmp:
        logs = Path(tmp)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for pid in range(num_processes):
                flags = [
                    f"--coordinator=127.0.0.1:{port}",
                    f"--num-processes={num_processes}",
                    f"--process-id={pid}",
                    f"--local-devices={local_devices}",
                    f"--report={logs / f'report_{pid}.json'}",
                ]
                with (
                    open(logs / f"stdout_{pid}.txt", "wb") as out,
                    open(logs / f"stderr_{pid}.txt", "wb") as err,
                ):
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, str(script), *flags, *args],
                            stdout=out,
                            stderr=err,
                            stdin=subprocess.DEVNULL,
                            env=child_env,
                            cwd=ROOT,
                            start_new_session=True,
                        )
                    )
            _watch(processes, logs, timeout)
        finally:
            for process in processes:
                _end_group(process)
        return [
            json.loads((logs / f"report_{pid}.json").read_text()) for pid in range(num_processes)
        ]


def _watch(processes: list[subprocess.Popen[bytes]], logs: Path, timeout: float) -> None:
    """Waits until every worker exits 0; raises on the first failure or at the deadline."""
    start = time.monotonic()
    while True:
        codes = [process.poll() for process in processes]
        for pid, code in enumerate(codes):
            if code not in (None, 0):
                for process in processes:
                    _end_group(process)
                raise WorkerFailed(
                    f"worker {pid} of {len(processes)} exited with code {code} after "
                    f"{time.monotonic() - start:.1f} s; every worker was ended. Its stderr:\n"
                    + _tail(logs / f"stderr_{pid}.txt")
                )
        if all(code == 0 for code in codes):
            for pid in range(len(processes)):
                if not (logs / f"report_{pid}.json").exists():
                    raise WorkerFailed(f"worker {pid} exited 0 without writing its report")
            return
        if time.monotonic() - start > timeout:
            running = [pid for pid, code in enumerate(codes) if code is None]
            for process in processes:
                _end_group(process)
            raise WorkerFailed(
                f"workers {running} still ran after the {timeout:.0f} s timeout; every worker "
                "was ended. Stderr of worker "
                f"{running[0]}:\n" + _tail(logs / f"stderr_{running[0]}.txt")
            )
        time.sleep(0.05)


def connect(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """In a worker: reads `launch`'s flags, sets the CPU devices and joins the global mesh.

    Unknown flags are returned in ``namespace.rest`` for the worker to read.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--local-devices", type=int, required=True)
    parser.add_argument("--report", required=True)
    namespace, rest = parser.parse_known_args(argv)
    namespace.rest = rest

    sys.excepthook = _exit_on_error
    import jax

    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", namespace.local_devices)
    if namespace.num_processes > 1:
        jax.distributed.initialize(
            coordinator_address=namespace.coordinator,
            num_processes=namespace.num_processes,
            process_id=namespace.process_id,
            initialization_timeout=120,
            # the launcher, not the heartbeat, ends a run whose worker died; a long heartbeat
            # keeps a worker starved of CPU on a busy machine from being declared dead
            heartbeat_timeout_seconds=60,
            shutdown_timeout_seconds=30,
        )
    return namespace


def _exit_on_error(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    """Prints the traceback and exits at once.

    A plain exit would run ``jax.distributed``'s exit handler, which waits for every other
    process at a shutdown barrier (``shutdown_timeout_seconds``): a worker that failed would
    look hung instead of failed.
    """
    traceback.print_exception(kind, error, trace)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)


def report(namespace: argparse.Namespace, data: dict[str, Any]) -> None:
    """In a worker: writes its JSON report (atomically: a partial file is never read)."""
    path = Path(namespace.report)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)
