"""Tool-call latency with a healthy, a dead and a slow OTLP backend.

Usage: uv run python bench/telemetry_latency.py   (renders an OTLP project; everything on loopback)

Each case: the generated HTTP app in-process, 500 `whoami` calls after 50 warm-up calls, spans
and metrics exported in the background (batch every 50 ms) to a loopback OTLP/HTTP receiver
that answers at once (healthy, measured first and last), to a closed port (dead), or after 2 s (slow).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MEASURE = textwrap.dedent(
    """
    import asyncio, os, statistics, threading, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from fastmcp.utilities.tests import asgi_server
    from my_server import telemetry
    from my_server.auth.dev import mint_token
    from my_server.server import build_server, http_options
    from my_server.settings import Settings

    class Receiver(BaseHTTPRequestHandler):
        delay = 0.0
        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            time.sleep(self.delay)
            self.send_response(200)
            self.end_headers()
        def log_message(self, *args):
            pass

    def receiver(delay):
        handler = type("R", (Receiver,), {"delay": delay})
        httpd = HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{httpd.server_port}"

    async def case(endpoint):
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        settings = Settings(transport="http", dev_key_file="/tmp/bench-key.pem", default_rate_limit="1000000/minute")
        installed = telemetry.configure_tracing(settings)
        token = mint_token(settings, subject="b", tenant="t", scopes=[])
        samples = []
        app_server = asgi_server(build_server(settings), **http_options(settings))
        async with app_server as app, app.client(auth=token) as client:
            for i in range(550):
                started = time.perf_counter()
                await client.call_tool("whoami", {})
                if i >= 50:
                    samples.append(time.perf_counter() - started)
        shutdown_started = time.perf_counter()
        installed.shutdown()
        samples.sort()
        flush = time.perf_counter() - shutdown_started
        return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000, flush

    os.environ.update({"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    import logging
    logging.disable(logging.WARNING)
    results = {}
    healthy_endpoint = receiver(0.0)
    cases = (
        ("healthy", healthy_endpoint),
        ("dead", "http://127.0.0.1:9"),
        ("slow (2 s)", receiver(2.0)),
        ("healthy, again", healthy_endpoint),  # drift check: shared machines change under a run
    )
    for label, endpoint in cases:
        results[label] = asyncio.run(case(endpoint))
        # one global provider per process in the OTel API: reset it between cases
        from opentelemetry import trace
        from opentelemetry.metrics import _internal as metrics_api
        from opentelemetry.util._once import Once
        trace._TRACER_PROVIDER_SET_ONCE, trace._TRACER_PROVIDER = Once(), None
        metrics_api._METER_PROVIDER_SET_ONCE, metrics_api._METER_PROVIDER = Once(), None
    healthy = (results["healthy"][0] + results["healthy, again"][0]) / 2
    print("| backend | median call (ms) | p99 call (ms) | vs healthy (mean of both runs) | shutdown flush (s) |")
    print("|---|---|---|---|---|")
    for label, (median, p99, flush) in results.items():
        print(f"| {label} | {median:.2f} | {p99:.2f} | {median / healthy:.2f}x | {flush:.1f} |")
    """
)


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
        subprocess.run(["uv", "run", "--no-sync", "python", "-c", MEASURE], cwd=project, check=True, env=env)


if __name__ == "__main__":
    main()
