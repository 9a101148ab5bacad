"""The servers the tests start: waiting until they are healthy, and stopping them."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any


def unhealthy(process: subprocess.Popen[Any], url: str, timeout: float) -> str | None:
    """Poll `url` (a health route) until it answers 200 (None), or say why it did not: the process
    exited, or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"the server exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return f"{url} did not answer 200 within {timeout:.0f} s"


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
