"""Median cost the rate limiter adds to one tool call, memory vs Redis.

Usage: uv run python bench/limiter_latency.py   (renders a Redis project, starts redis-server)

Renders the template (defaults + rate_limit_storage=redis), starts redis-server on a free
loopback port and runs bench/workers/limiter_measure.py with the project's Python: the limiter
middleware itself (`RateLimiter.on_call_tool` around a no-op tool), 20,000 calls per storage
after 1,000 warm-up calls, one tenant x tool key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib.measure import redis_ping
from benchlib.procs import BenchError, Children, free_port, wait_until
from benchlib.variants import WORKERS

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "my_server"  # the package of the default project name


def main() -> None:
    redis = shutil.which("redis-server")
    if redis is None:
        sys.exit("redis-server is required: apt-get install redis-server")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "my-server"
        subprocess.run(
            [
                *("uvx", "--from", "copier>=9.4,<10", "copier", "copy", "--defaults", "-q", "--vcs-ref=HEAD"),
                *("-d", "rate_limit_storage=redis", str(REPO), str(project)),
            ],
            check=True,
            env=env,
        )
        subprocess.run(["uv", "sync", "--quiet"], cwd=project, check=True, env=env)
        python = project / ".venv" / "bin" / "python"
        port = free_port()
        with Children() as children:
            argv = [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            children.start("redis", argv, log=Path(tmp) / "redis.log", cwd=Path(tmp))
            try:
                wait_until(lambda: redis_ping(port), 10, "redis-server to answer PING")
            except BenchError as error:
                sys.exit(f"bench failed: {error}")
            measure = [str(python), str(WORKERS / "limiter_measure.py"), PACKAGE, f"redis://127.0.0.1:{port}/0"]
            subprocess.run(measure, cwd=project, check=True, env=env)


if __name__ == "__main__":
    main()
