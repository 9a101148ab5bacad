"""One variant of the generated server, built from the rendered project's own code.

Run by the bench with the rendered project's Python:
    python variant_server.py PACKAGE PORT --limiter {off,on} --tracing {off,on}
Settings come from the environment (<PACKAGE>_*, OTEL_*) as in production; this does what
`<project> serve` does (logging, tracing, build_server, mcp.run, the exporters' flush) with two switches:
--limiter off removes the RateLimiter instance from `mcp.middleware`; --tracing off skips
`configure_tracing` and the trace-context ASGI middleware (as a trace_backend=none render would).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("package")
    parser.add_argument("port", type=int)
    parser.add_argument("--limiter", choices=["off", "on"], required=True)
    parser.add_argument("--tracing", choices=["off", "on"], required=True)
    args = parser.parse_args()

    settings_module: Any = importlib.import_module(f"{args.package}.settings")
    logs: Any = importlib.import_module(f"{args.package}.logs")
    server: Any = importlib.import_module(f"{args.package}.server")
    ratelimit: Any = importlib.import_module(f"{args.package}.ratelimit")

    settings = settings_module.Settings(host="127.0.0.1", port=args.port, transport="http")
    logs.configure_logging(settings.log_level, settings.log_format)
    installed: Any = None
    if args.tracing == "on":
        telemetry: Any = importlib.import_module(f"{args.package}.telemetry")
        installed = telemetry.configure_tracing(settings)
        # As `serve`: uvicorn re-raises the SIGTERM it stopped on; as SystemExit the flush below runs.
        signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))

    mcp = server.build_server(settings)
    if args.limiter == "off":
        mcp.middleware[:] = [m for m in mcp.middleware if not isinstance(m, ratelimit.RateLimiter)]
    options = server.http_options(settings)
    if args.tracing == "off":  # the trace-context middleware goes too; the step-up challenge stays
        options["middleware"] = [m for m in options["middleware"] if m.cls.__name__ != "TraceContext"]
    try:
        config = server.uvicorn_options(settings)
        mcp.run(transport="http", show_banner=False, host="127.0.0.1", port=args.port, uvicorn_config=config, **options)
    finally:
        if installed is not None:
            installed.shutdown()  # the spans still queued, as `serve` flushes them on SIGTERM


if __name__ == "__main__":
    main()
