"""Tool-call latency with a healthy, a dead and a slow OTLP backend.

Usage: uv run python bench/telemetry_latency.py   (renders an OTLP project; everything on loopback)

Renders the template (defaults + transport=http, trace_backend=otlp) and runs
bench/workers/telemetry_measure.py with the project's Python. Each case: the generated HTTP app
in-process, 500 `whoami` calls after 50 warm-up calls, spans and metrics exported in the
background (batch every 50 ms) to a loopback OTLP/HTTP receiver that answers at once (healthy,
measured first and last), to a closed port (dead), or after 2 s (slow).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from benchlib.variants import WORKERS

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "my_server"  # the package of the default project name


def main() -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "my-server"
        subprocess.run(
            [
                *("uvx", "--from", "copier>=9.4,<10", "copier", "copy", "--defaults", "-q", "--vcs-ref=HEAD"),
                *("-d", "transport=http", "-d", "trace_backend=otlp", str(REPO), str(project)),
            ],
            check=True,
            env=env,
        )
        subprocess.run(["uv", "sync", "--quiet"], cwd=project, check=True, env=env)
        python = project / ".venv" / "bin" / "python"
        subprocess.run([str(python), str(WORKERS / "telemetry_measure.py"), PACKAGE], cwd=project, check=True, env=env)


if __name__ == "__main__":
    main()
