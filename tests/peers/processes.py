"""Stopping the processes the tests started, by their PID."""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any


def stop(process: subprocess.Popen[Any], timeout: float = 10, *, grace: float = 0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout` seconds.

    `grace`: seconds to let it finish on its own first (e.g. once its input is closed).
    """
    if grace and process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
