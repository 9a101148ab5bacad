"""Starting one variant's server and measuring it: cold start, load phases, RSS, a profile."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import profiling
from .probe import post_tools_list, wait_ready
from .procs import BenchError, Children, free_port, tail
from .variants import WORKERS, Shared, Variant, base_env, server_command, service_name, settings_env

TOOL = "search_notes"
ARGUMENTS = {"query": "rate", "limit": 5}
READY_TIMEOUT_S = 60.0
LOADGEN_TIMEOUT_S = 2400.0  # a bound, not an estimate: a busy shared machine is slow
PROFILE_WARMUP_CALLS = 300


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    cold_start_s: float
    log: Path


@dataclass
class Plan:
    """How many calls at which concurrency, in what order, and when RSS is read."""

    calls: int = 2000  # per concurrency level and server
    concurrency: tuple[int, ...] = (1, 8, 32)
    rounds: int = 2  # each level's calls are split into rounds; servers alternate within a round
    warmup_calls: int = 300
    total_calls: int = 10_000  # per server, before the last RSS reading
    rss_every: int = 1000
    cold_starts: int = 5
    profile_calls: int = 3000

    def schedule(self, keys: list[str]) -> list[dict[str, Any]]:
        """Warm-up at the highest concurrency (so RSS after 1,000 calls already holds its buffers), then each
        level in rounds with the servers interleaved (forwards, then backwards), then a soak to `total_calls`."""
        top, per_round = max(self.concurrency), self.calls // self.rounds
        steps = [
            {"key": k, "name": "warm-up", "concurrency": top, "calls": self.warmup_calls, "record": False} for k in keys
        ]
        for round_ in range(self.rounds):
            order = keys if round_ % 2 == 0 else keys[::-1]
            steps += [
                {"key": k, "name": f"c={c}", "concurrency": c, "calls": per_round}
                for c in self.concurrency
                for k in order
            ]
        rest = self.total_calls - self.warmup_calls - per_round * self.rounds * len(self.concurrency)
        if rest > 0:
            steps += [{"key": k, "name": "soak", "concurrency": 8, "calls": rest, "record": False} for k in keys]
        return steps


@dataclass
class VariantResult:
    variant: Variant
    cold_starts: list[float] = field(default_factory=list)
    phases: dict[int, dict[str, Any]] = field(default_factory=dict)  # by concurrency
    rss: list[tuple[int, int]] = field(default_factory=list)  # (calls so far, KiB)
    checks: list[str] = field(default_factory=list)

    def rss_kib(self, calls: int) -> int:
        for at, kib in self.rss:
            if at == calls:
                return kib
        raise BenchError(f"{self.variant.label}: no RSS reading after {calls} calls")

    @property
    def other_load_cores(self) -> float:
        """CPU used by processes not of this bench while this server was measured (mean over levels)."""
        return sum(float(p["other_load_cores"]) for p in self.phases.values()) / len(self.phases)


class Bench:
    """Everything one run shares: children, ports, the token, the environment."""

    def __init__(self, children: Children, shared: Shared, token: str, environ: dict[str, str]) -> None:
        self.children = children
        self.shared = shared
        self.token = token
        self.claims = token_claims(token)
        self.env = base_env(shared, environ)
        self.helpers: list[int] = []  # PIDs of Redis and the receiver: their CPU is the bench's own
        self.servers: dict[str, Server] = {}
        self._starts = 0
        self.calls: dict[str, int] = {}  # tool calls served, per variant

    def log(self, name: str) -> Path:
        return self.shared.workdir / "logs" / f"{name}.log"

    def token_for(self, variant: Variant) -> str | None:
        return self.token if variant.authenticated else None

    def start(self, variant: Variant) -> Server:
        self._starts += 1
        port = free_port()
        log = self.log(f"{variant.key}-{self._starts}")
        env = {**self.env, **(settings_env(self.shared, variant) if variant.generated else {})}
        argv = server_command(self.shared, variant, port, self.claims)
        started = time.perf_counter()
        proc = self.children.start(variant.key, argv, log=log, env=env, cwd=self.shared.workdir)
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            cold = wait_ready(proc, url, self.token_for(variant), TOOL, started, log, READY_TIMEOUT_S)
        except BaseException:
            self.children.stop(proc)
            raise
        return Server(proc, url, cold, log)

    def cold_start(self, variant: Variant) -> float:
        server = self.start(variant)
        self.children.stop(server.proc)
        return server.cold_start_s

    def start_all(self, variants: tuple[Variant, ...]) -> None:
        """One long-lived server per variant (idle ones cost no CPU); authenticated ones must refuse anonymous calls."""
        for variant in variants:
            server = self.servers[variant.key] = self.start(variant)
            if variant.authenticated:
                status, _ = post_tools_list(server.url, None)
                if status != 401:
                    raise BenchError(f"{variant.label}: tools/list without a token answered {status}, expected 401")

    def stop_all(self) -> None:
        for server in self.servers.values():
            self.children.stop(server.proc)
        self.servers.clear()

    def run_loadgen(self, variants: tuple[Variant, ...], schedule: list[dict[str, Any]], name: str) -> dict[str, Any]:
        out = self.shared.workdir / f"{name}.json"
        servers = {
            v.key: {"url": self.servers[v.key].url, "token": self.token_for(v), "pid": self.servers[v.key].proc.pid}
            for v in variants
        }
        plan: dict[str, Any] = {"servers": servers, "helpers": self.helpers, "tool": TOOL, "arguments": ARGUMENTS}
        plan.update({"rss_every": 1000, "schedule": schedule, "out": str(out)})
        plan_file = self.shared.workdir / f"{name}.plan.json"
        plan_file.write_text(json.dumps(plan))
        log = self.log(f"{name}.loadgen")
        argv = [str(self.shared.python), str(WORKERS / "loadgen.py"), str(plan_file)]
        proc = self.children.start(f"{name}-loadgen", argv, log=log, env=self.env, cwd=self.shared.workdir)
        try:
            code = proc.wait(LOADGEN_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"load generator {name} ran over {LOADGEN_TIMEOUT_S:.0f} s; log {log}") from exc
        finally:
            self.children.stop(proc)
        if code != 0 or not out.exists():
            raise BenchError(f"load generator {name} failed (exit {code}); log {log}:\n{tail(log)}")
        result: dict[str, Any] = json.loads(out.read_text())
        for key in servers:
            server = self.servers[key]
            if server.proc.poll() is not None:
                raise BenchError(f"server {key} died under load; log {server.log}:\n{tail(server.log)}")
        if result["errors"]:
            raise BenchError(f"{result['errors']} failed calls: {result['first_errors']}")
        for key, measured in result["servers"].items():
            self.calls[key] = self.calls.get(key, 0) + int(measured["calls"])
        return result

    def measure(self, variants: tuple[Variant, ...], plan: Plan) -> dict[str, VariantResult]:
        """The whole load schedule against the running servers, in one load-generator process."""
        result = self.run_loadgen(variants, plan.schedule([v.key for v in variants]), "load")
        outcomes = {}
        for variant in variants:
            measured = result["servers"][variant.key]
            outcome = outcomes[variant.key] = VariantResult(variant)
            outcome.phases = {int(p["concurrency"]): p for name, p in measured["phases"].items()}
            outcome.rss = [(int(at), int(kib)) for at, kib in measured["rss"]]
            if variant.authenticated:
                outcome.checks.append("tools/list without a token: 401")
            if variant.needs_redis:
                keys = redis_dbsize(self.shared.redis_port, variant.redis_db)
                if keys < 1:
                    raise BenchError(f"{variant.label}: no rate-limit key in Redis after the run")
                outcome.checks.append(f"{keys} rate-limit key(s) in Redis")
        return outcomes

    def check_spans(self, outcomes: dict[str, VariantResult]) -> None:
        """After the servers stopped (their exporters flushed): each traced server's spans per call, at
        least one where every call is traced, about the sampled share otherwise."""
        by_service = receiver_stats(self.shared.receiver_port)["spans_by_service"]
        for result in (r for r in outcomes.values() if r.variant.tracing):
            variant = result.variant
            spans, calls = by_service.get(service_name(variant), 0), self.calls[variant.key]
            per_call = spans / calls
            if variant.sampling == 1 and per_call < 1:
                raise BenchError(f"{variant.label}: the OTLP receiver got {spans:,} spans for {calls:,} tool calls")
            if variant.sampling < 1 and not 0 < per_call < 3 * variant.sampling:
                raise BenchError(f"{variant.label}: {per_call:.3f} spans per call, {variant.sampling:.0%} sampled")
            result.checks.append(f"{per_call:.2f} spans per call received by the OTLP receiver")

    def profile(self, variant: Variant, calls: int, py_spy: str) -> profiling.Profile:
        """py-spy over `calls` tool calls at concurrency 8 against the running server."""
        server = self.servers[variant.key]
        output = self.shared.workdir / f"{variant.key}.py-spy.txt"
        log = self.log(f"{variant.key}-py-spy")
        spy = profiling.record(self.children, py_spy, server.proc.pid, output, log)
        try:
            step = {"key": variant.key, "name": "profiled", "concurrency": 8, "calls": calls}
            self.run_loadgen((variant,), [step], f"{variant.key}-profile")
        finally:
            profiling.finish(self.children, spy, output, log)
        return profiling.Profile.load(variant.label, output, calls, self.shared.package)


def token_claims(token: str) -> dict[str, str]:
    """The dev token's payload, unverified: the reference server is told its issuer and audience."""
    payload = token.split(".")[1]
    claims: dict[str, str] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def receiver_stats(port: int) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def redis_dbsize(port: int, db: int) -> int:
    """DBSIZE of one database of the bench's Redis (raw RESP over a socket)."""
    payload = f"*2\r\n$6\r\nSELECT\r\n${len(str(db))}\r\n{db}\r\n*1\r\n$6\r\nDBSIZE\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        reply = b""
        while reply.count(b"\r\n") < 2:
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b"\r\n")[1].lstrip(b":"))


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False
