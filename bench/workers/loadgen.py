"""Load generator: concurrent fastmcp.Client sessions over streamable HTTP, one tool, several servers.

Run by the bench with the rendered project's Python, in its own process:
    python loadgen.py PLAN_JSON_FILE
The plan names the servers (URL, bearer token or none, PID), the tool call, and a schedule of
phases, each (server, concurrency, calls); phases for different servers are interleaved by the
bench so that a drift in machine load hits every server alike. Every phase opens its own clients
(one session each; tools are listed once per session before timing), then the clients share a
fixed number of `tools/call`s. Results (latencies and throughput pooled per server and phase
name, server CPU, RSS every `rss_every` calls of a server, load from other processes) are written
as JSON to the plan's `out` file.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

MAX_ERRORS = 20
CALL_TIMEOUT_S = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def machine_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS  # all but idle and iowait


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


class TooManyErrorsError(RuntimeError):
    pass


@dataclass
class Pooled:
    """One server's measurements under one phase name, pooled over the rounds."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    other_cpu_s: float = 0.0

    def summary(self) -> dict[str, float | int]:
        values = sorted(self.latencies)
        calls = len(values)
        return {
            "concurrency": self.concurrency,
            "calls": calls,
            "wall_s": self.wall_s,
            "throughput": calls / self.wall_s,
            "p50_ms": percentile(values, 0.50) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "mean_ms": sum(values) / calls * 1000,
            "server_cpu_ms_per_call": self.server_cpu_s / calls * 1000,
            "client_cpu_ms_per_call": self.client_cpu_s / calls * 1000,
            "other_load_cores": self.other_cpu_s / self.wall_s,
        }


@dataclass
class Target:
    url: str
    token: str | None
    pid: int
    calls: int = 0
    rss: list[tuple[int, int]] = field(default_factory=list)
    pooled: dict[str, Pooled] = field(default_factory=dict)


class LoadGenerator:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.targets = {key: Target(**spec) for key, spec in plan["servers"].items()}
        self.helpers: list[int] = plan.get("helpers", [])
        self.tool: str = plan["tool"]
        self.arguments: dict[str, Any] = plan["arguments"]
        self.rss_every: int = plan["rss_every"]
        self.errors: list[str] = []

    def _tick(self, target: Target) -> None:
        target.calls += 1
        if target.calls % self.rss_every == 0:
            target.rss.append((target.calls, rss_kib(target.pid)))

    def _bench_cpu(self) -> float:
        """CPU of every process of the bench: servers, helpers and this generator."""
        pids = [target.pid for target in self.targets.values()] + self.helpers
        return sum(cpu_seconds(pid) for pid in pids) + own_cpu_seconds()

    async def _clients(self, stack: AsyncExitStack, target: Target, count: int) -> list[Client[Any]]:
        clients: list[Client[Any]] = []
        for _ in range(count):
            transport = StreamableHttpTransport(target.url, auth=target.token)
            clients.append(await stack.enter_async_context(Client(transport, timeout=CALL_TIMEOUT_S)))
        # call_tool lists the tools once per session to learn output schemas: do it before timing.
        await asyncio.gather(*(client.list_tools() for client in clients))
        return clients

    async def phase(self, key: str, name: str, concurrency: int, calls: int, record: bool = True) -> None:
        target = self.targets[key]
        pooled = target.pooled.setdefault(name, Pooled(concurrency)) if record else Pooled(concurrency)
        remaining = calls

        async def worker(client: Client[Any]) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                try:
                    result = await client.call_tool(self.tool, self.arguments)
                    if not result.structured_content:
                        raise RuntimeError(f"empty result: {result}")
                except Exception as error:
                    self.errors.append(f"{key}: {type(error).__name__}: {error}"[:300])
                    if len(self.errors) >= MAX_ERRORS:
                        raise TooManyErrorsError("; ".join(self.errors[:3])) from error
                pooled.latencies.append(time.perf_counter() - started)
                self._tick(target)

        async with AsyncExitStack() as stack:
            clients = await self._clients(stack, target, concurrency)
            server_cpu, client_cpu = cpu_seconds(target.pid), own_cpu_seconds()
            bench_cpu, busy, started = self._bench_cpu(), machine_busy_seconds(), time.perf_counter()
            await asyncio.gather(*(worker(client) for client in clients))
            pooled.wall_s += time.perf_counter() - started
            pooled.server_cpu_s += cpu_seconds(target.pid) - server_cpu
            pooled.client_cpu_s += own_cpu_seconds() - client_cpu
            pooled.other_cpu_s += max(0.0, machine_busy_seconds() - busy - (self._bench_cpu() - bench_cpu))

    def result(self) -> dict[str, Any]:
        return {
            "servers": {
                key: {
                    "phases": {name: pooled.summary() for name, pooled in target.pooled.items()},
                    "rss": target.rss,
                    "calls": target.calls,
                }
                for key, target in self.targets.items()
            },
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
        }


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    generator = LoadGenerator(plan)
    for step in plan["schedule"]:
        started = time.perf_counter()
        await generator.phase(**step)
        print(
            f"  {step['key']} {step['name']}: {step['calls']} calls in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return generator.result()


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        loaded = json.load(handle)
    try:
        outcome = asyncio.run(main(loaded))
    except TooManyErrorsError as exc:
        sys.exit(f"load generator: too many failed calls: {exc}")
    with open(loaded["out"], "w") as result_file:
        json.dump(outcome, result_file)
