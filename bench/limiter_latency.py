"""Median cost the rate limiter adds to one tool call, memory vs Redis.

Usage: uv run python bench/limiter_latency.py   (renders a Redis project, starts redis-server)

Measures the limiter middleware itself (`RateLimiter.on_call_tool` around a no-op tool),
20,000 calls per storage after 1,000 warm-up calls, one tenant x tool key.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MEASURE = textwrap.dedent(
    """
    import asyncio, statistics, sys, time
    from types import SimpleNamespace
    from my_server.principal import Principal, current_principal
    from my_server.ratelimit import RateLimiter

    async def call_next(context):
        return None

    async def measure(url, calls=20_000, warmup=1_000):
        limiter = RateLimiter(default="100000000/minute", per_tool={}, storage_url=url)
        context = SimpleNamespace(message=SimpleNamespace(name="search_notes"), fastmcp_context=None)
        current_principal.set(Principal(subject="s", tenant="acme", client_id="c"))
        samples = []
        for i in range(calls + warmup):
            started = time.perf_counter_ns()
            await limiter.on_call_tool(context, call_next)
            if i >= warmup:
                samples.append(time.perf_counter_ns() - started)
        samples.sort()
        return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000

    async def baseline(calls=20_000):
        samples = []
        for _ in range(calls):
            started = time.perf_counter_ns()
            await call_next(None)
            samples.append(time.perf_counter_ns() - started)
        samples.sort()
        return statistics.median(samples) / 1000

    async def main():
        base = await baseline()
        print(f"| storage | median added (us) | p99 added (us) |")
        print(f"|---|---|---|")
        for label, url in (("memory://", "memory://"), ("redis (loopback)", sys.argv[1])):
            median, p99 = await measure(url)
            print(f"| {label} | {median - base:.1f} | {p99 - base:.1f} |")

    asyncio.run(main())
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    redis = shutil.which("redis-server")
    if redis is None:
        sys.exit("redis-server is required: apt-get install redis-server")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "my-server"
        subprocess.run(
            [
                "uvx",
                "--from",
                "copier>=9.4,<10",
                "copier",
                "copy",
                "--defaults",
                "-q",
                "--vcs-ref=HEAD",
                "-d",
                "rate_limit_storage=redis",
                str(REPO),
                str(project),
            ],
            check=True,
            env=env,
        )
        subprocess.run(["uv", "sync", "--quiet"], cwd=project, check=True, env=env)
        port = free_port()
        server = subprocess.Popen(
            [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            subprocess.run(
                ["uv", "run", "--no-sync", "python", "-c", MEASURE, f"redis://127.0.0.1:{port}/0"],
                cwd=project,
                check=True,
                env=env,
            )
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
