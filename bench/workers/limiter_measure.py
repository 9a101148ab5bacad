"""Median and p99 time the rate limiter adds to one tool call, per storage: a Markdown table on stdout.

Run by bench/limiter_latency.py with the rendered project's Python:
    python limiter_measure.py PACKAGE REDIS_URL
Times the middleware itself, `RateLimiter.on_call_tool` around a no-op `call_next`, for one
tenant x tool key, CALLS calls per storage after WARMUP, against the median of the bare no-op.
The failure policy is closed, so an unreachable Redis fails the run instead of being timed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import time
from types import SimpleNamespace
from typing import Any

CALLS = 20_000
WARMUP = 1_000
NEVER_REACHED_LIMIT = "100000000/minute"
TOOL = "search_notes"


async def call_next(context: object) -> None:
    return None


def percentile(ordered: list[int], fraction: float) -> float:
    return float(ordered[int(len(ordered) * fraction)])


async def baseline() -> float:
    """Median ns of awaiting the no-op `call_next` alone."""
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter_ns()
        await call_next(None)
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples)


async def measure(package: str, storage_url: str) -> tuple[float, float]:
    """(median, p99) ns of one `on_call_tool` through a limiter on `storage_url`."""
    ratelimit: Any = importlib.import_module(f"{package}.ratelimit")
    principal: Any = importlib.import_module(f"{package}.principal")
    limiter = ratelimit.RateLimiter(
        default=NEVER_REACHED_LIMIT, per_component={}, storage_url=storage_url, failure_policy="closed"
    )
    context = SimpleNamespace(message=SimpleNamespace(name=TOOL), fastmcp_context=None)
    # What PrincipalResolver sets for a request; the limiter keys by its tenant.
    principal.current_principal.set(principal.Principal(subject="bench-user", tenant="acme", client_id="bench"))
    samples = []
    for index in range(CALLS + WARMUP):
        started = time.perf_counter_ns()
        await limiter.on_call_tool(context, call_next)
        if index >= WARMUP:
            samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return statistics.median(samples), percentile(samples, 0.99)


async def run(package: str, redis_url: str) -> None:
    base = await baseline()
    print("| storage | median added (us) | p99 added (us) |")
    print("|---|---|---|")
    for label, url in (("memory://", "memory://"), ("redis (loopback)", redis_url)):
        median, p99 = await measure(package, url)
        print(f"| {label} | {(median - base) / 1000:.1f} | {(p99 - base) / 1000:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("package")
    parser.add_argument("redis_url")
    args = parser.parse_args()
    asyncio.run(run(args.package, args.redis_url))


if __name__ == "__main__":
    main()
