"""A worker that never finishes: it starts a child of its own, writes both pids, and sleeps.

tests/test_multiprocess.py launches it with a short timeout and checks that the launcher ends
the worker and its child (the whole process group), without importing JAX.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    flags = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    pid_dir = Path(os.environ["RJ_HANG_PIDS"])
    (pid_dir / f"{flags['--process-id']}.pids").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(600)
