"""Tool-call latency with a healthy, a dead and a slow OTLP backend: a Markdown table on stdout.

Run by bench/telemetry_latency.py with the rendered project's Python:
    python telemetry_measure.py PACKAGE
Each case serves the generated HTTP app in-process (`build_server` + `http_options`, tracing
configured by `configure_tracing` as `serve` does) and times CALLS `whoami` calls after WARMUP,
with spans and metrics exported in the background (batch every 50 ms, 1 s export timeout) to a
loopback OTLP/HTTP receiver that answers at once (healthy, measured first and last), to a closed
port (dead), or after 2 s (slow).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

CALLS = 500
WARMUP = 50
DEAD_ENDPOINT = "http://127.0.0.1:9"  # discard: nothing listens on loopback
SLOW_SECONDS = 2.0


class Receiver(BaseHTTPRequestHandler):
    """Answers every OTLP export with 200 after `delay` seconds."""

    delay = 0.0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        time.sleep(self.delay)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def receiver(delay: float) -> str:
    """Start a receiver answering after `delay` seconds in a daemon thread; its endpoint."""
    handler = type("DelayedReceiver", (Receiver,), {"delay": delay})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}"


def reset_global_providers() -> None:
    """The OTel API allows one global tracer and meter provider per process: reset them between cases."""
    trace: Any = importlib.import_module("opentelemetry.trace")
    metrics_api: Any = importlib.import_module("opentelemetry.metrics._internal")
    once: Any = importlib.import_module("opentelemetry.util._once")
    trace._TRACER_PROVIDER_SET_ONCE, trace._TRACER_PROVIDER = once.Once(), None
    metrics_api._METER_PROVIDER_SET_ONCE, metrics_api._METER_PROVIDER = once.Once(), None


async def case(package: str, endpoint: str, key_file: Path) -> tuple[float, float, float]:
    """(median ms, p99 ms, shutdown flush s) of `whoami` calls exporting to `endpoint`."""
    settings_module: Any = importlib.import_module(f"{package}.settings")
    telemetry: Any = importlib.import_module(f"{package}.telemetry")
    dev: Any = importlib.import_module(f"{package}.auth.dev")
    server: Any = importlib.import_module(f"{package}.server")
    tests: Any = importlib.import_module("fastmcp.utilities.tests")

    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    settings = settings_module.Settings(transport="http", dev_key_file=key_file, default_rate_limit="1000000/minute")
    installed = telemetry.configure_tracing(settings)
    token = dev.mint_token(settings, subject="bench-user", tenant="acme", scopes=[])
    samples = []
    app_server = tests.asgi_server(server.build_server(settings), **server.http_options(settings))
    async with app_server as app, app.client(auth=token) as client:
        for index in range(CALLS + WARMUP):
            started = time.perf_counter()
            await client.call_tool("whoami", {})
            if index >= WARMUP:
                samples.append(time.perf_counter() - started)
    shutdown_started = time.perf_counter()
    installed.shutdown()
    flush = time.perf_counter() - shutdown_started
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000, flush


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("package")
    args = parser.parse_args()

    os.environ.update({"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    logging.disable(logging.WARNING)
    healthy_endpoint = receiver(0.0)
    cases = (
        ("healthy", healthy_endpoint),
        ("dead", DEAD_ENDPOINT),
        (f"slow ({SLOW_SECONDS:g} s)", receiver(SLOW_SECONDS)),
        ("healthy, again", healthy_endpoint),  # drift check: shared machines change under a run
    )
    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="telemetry-bench-") as tmp:
        key_file = Path(tmp) / "dev-signing-key.pem"  # created by the first mint_token
        for label, endpoint in cases:
            results[label] = asyncio.run(case(args.package, endpoint, key_file))
            reset_global_providers()
    healthy = (results["healthy"][0] + results["healthy, again"][0]) / 2
    print("| backend | median call (ms) | p99 call (ms) | vs healthy (mean of both runs) | shutdown flush (s) |")
    print("|---|---|---|---|---|")
    for label, (median, p99, flush) in results.items():
        print(f"| {label} | {median:.2f} | {p99:.2f} | {median / healthy:.2f}x | {flush:.1f} |")


if __name__ == "__main__":
    main()
