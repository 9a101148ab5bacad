"""A real Jaeger v2 on 127.0.0.1 for end-to-end trace tests.

Jaeger is not in any package registry reachable here, but it builds from the Go module proxy (as
actionlint does): `go get -tool` in an empty module, then `go build`. The first build takes about
9 minutes and 1.3 GB of modules; the binary is cached in ~/.cache/mcp-template-peers/jaeger/<version>/
and every later run reuses it, as are the module and build caches beside it (GOMODCACHE, GOCACHE).

Jaeger v2 is an OpenTelemetry Collector distribution. Run without a config it listens on every
interface (OTLP 4317/4318, the query API 16686, health, zpages, ...); `start` gives it a config of
its own instead: in-memory storage, the OTLP/HTTP receiver and the query API only, each on a free
port of 127.0.0.1, and its own telemetry (Prometheus metrics on :8888 by default) off.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peers.machine import CACHE_ROOT, cache_lock, free_port
from peers.processes import stop

JAEGER_VERSION = "v1.76.0"
PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
# A Jaeger trace as its query API returns it: {"traceID", "spans": [...], "processes": {...}}.
Trace = dict[str, Any]
Span = dict[str, Any]


class JaegerError(RuntimeError):
    pass


def cache_dir() -> Path:
    return CACHE_ROOT / "jaeger"


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if go is None:
        raise JaegerError(f"Go is required to build Jaeger: install Go (go.dev/dl), then rerun; it builds {PACKAGE}")
    return go


def go_env() -> dict[str, str]:
    """`go`'s environment: module and build caches under the peers cache, not ~/go or ~/.cache/go-build."""
    cache = cache_dir()
    return {
        **os.environ,
        "GOMODCACHE": str(cache / "gomod"),
        "GOCACHE": str(cache / "gobuild"),
        # Writable module files (the cache can be deleted without chmod); no workspace or vendor folder applies.
        "GOFLAGS": "-modcacherw -mod=mod",
        "GOWORK": "off",
    }


def build_log(version: str = JAEGER_VERSION) -> Path:
    return cache_dir() / version / "build.log"


def binary(version: str = JAEGER_VERSION) -> Path:
    """The Jaeger `version` binary, built from the Go module proxy the first time (about 9 minutes,
    at the lowest CPU priority: test suites run beside it). `build.log` next to it says how long."""
    target = cache_dir() / version / "jaeger"
    if target.is_file():
        return target
    with cache_lock(cache_dir() / ".lock"):
        if target.is_file():
            return target
        go = _go()
        module = cache_dir() / f".module-{version}"
        shutil.rmtree(module, ignore_errors=True)
        module.mkdir(parents=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        building = target.with_name(f".jaeger-{os.getpid()}")
        nice = ["nice", "-n", "19"] if shutil.which("nice") else []
        env = go_env()
        started = time.perf_counter()
        with build_log(version).open("w") as log:
            for command in (
                [go, "mod", "init", "jaegerbuild"],
                [go, "get", "-tool", f"{PACKAGE}@{version}"],
                [*nice, go, "build", "-o", str(building), PACKAGE],
            ):
                log.write(f"$ {' '.join(command)}\n")
                log.flush()
                run = subprocess.run(command, cwd=module, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=3600)
                if run.returncode != 0:
                    raise JaegerError(f"{' '.join(command)} failed ({run.returncode}); see {build_log(version)}")
            log.write(f"built in {time.perf_counter() - started:.1f} s\n")
        building.rename(target)  # atomic: another process sees no binary or the whole one
        shutil.rmtree(module, ignore_errors=True)
        # Go's build cache holds 1.6 GB after this build and serves only a rebuild of the same
        # version: dropped. The module cache (1.3 GB, the downloads) stays for the next version.
        shutil.rmtree(env["GOCACHE"], ignore_errors=True)
    return target


def config(otlp_port: int, query_port: int, grpc_port: int) -> dict[str, Any]:
    """All-in-one in memory, listening on 127.0.0.1 only (keys as in Jaeger's cmd/jaeger/internal/all-in-one.yaml).

    Only OTLP/HTTP is received (no OTLP gRPC, Jaeger or Zipkin receivers); the query extension
    serves its HTTP API and, as it always does, a gRPC API, both on loopback. Jaeger's own metrics
    are off (level none: no Prometheus endpoint) and it does not trace its own queries.
    """
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {"level": "none"},
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": 100000}}}},
            "jaeger_query": {
                "storage": {"traces": "memstore"},
                "enable_tracing": False,
                "http": {"endpoint": f"127.0.0.1:{query_port}"},
                "grpc": {"endpoint": f"127.0.0.1:{grpc_port}"},
            },
        },
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp_port}"}}}},
        # Spans reach the storage a tenth of a second after they arrive (the default: 200 ms).
        "processors": {"batch": {"timeout": "100ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }


@dataclass
class Jaeger:
    """A running Jaeger: where it receives OTLP/HTTP, where its query API answers, its process."""

    home: Path
    otlp_port: int
    query_port: int
    process: subprocess.Popen[bytes]
    log: Path
    started_at: float = field(default_factory=time.perf_counter)

    @property
    def otlp_endpoint(self) -> str:
        """The base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from the start until both the query API and the OTLP receiver answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JaegerError(f"Jaeger exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.query_url}/api/services", timeout=2) as response:
                    if response.status == 200:
                        with socket.create_connection(("127.0.0.1", self.otlp_port), timeout=2):
                            return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.05)
        raise JaegerError(f"Jaeger did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def get(self, path: str, **query: str) -> tuple[int, Any]:
        """GET `path` of the query API: the status and the decoded JSON (errors included)."""
        url = f"{self.query_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return error.code, json.loads(body)
            except ValueError:
                return error.code, body.decode(errors="replace")

    def trace(self, trace_id: str, until: Callable[[list[Span]], bool] = bool, timeout: float = 30) -> Trace:
        """`GET /api/traces/<trace_id>` (32 hex digits), polled until `until(spans)` holds (by default:
        any span arrived). Spans arrive in batches, so a trace may be partial at first; the bound
        is for a backend that lost them."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            status, body = self.get(f"/api/traces/{trace_id}")
            if status == 200 and body.get("data"):
                found: Trace = body["data"][0]
                if until(found["spans"]):
                    return found
                last = [span["operationName"] for span in found["spans"]]
            else:
                last = (status, body)
            if time.monotonic() > deadline:
                raise JaegerError(f"trace {trace_id} not complete in Jaeger within {timeout:.0f} s; last: {last}")
            time.sleep(0.2)

    def traces(self, service: str, timeout: float = 30, **query: str) -> list[Trace]:
        """`GET /api/traces?service=...` (Jaeger's search, newest first), polled until one is found."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get("/api/traces", service=service, **query)
            if status == 200 and body.get("data"):
                found: list[Trace] = body["data"]
                return found
            if time.monotonic() > deadline:
                raise JaegerError(f"no trace of service {service!r} in Jaeger within {timeout:.0f} s: {status} {body}")
            time.sleep(0.2)

    def listeners(self) -> list[tuple[str, int, str]]:
        """(address, port, "tcp" or "udp") of every socket this Jaeger listens on, from /proc."""
        return listening_sockets(self.process.pid)

    def stop(self) -> None:
        """Stop this Jaeger by its PID (SIGTERM, then SIGKILL)."""
        stop(self.process, timeout=10)


def start(home: Path) -> Jaeger:
    """Start Jaeger (built first if need be) with its config, log and nothing else in `home`;
    returns at once (see `Jaeger.wait_ready`)."""
    executable = binary()
    home.mkdir(parents=True, exist_ok=True)
    otlp_port, query_port, grpc_port = free_port(), free_port(), free_port()
    config_file = home / "jaeger.yaml"  # YAML: JSON is a subset of it
    config_file.write_text(json.dumps(config(otlp_port, query_port, grpc_port), indent=2))
    log = home / "jaeger.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(executable), "--config", str(config_file)],
            cwd=home,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Jaeger(home, otlp_port, query_port, process, log)


def tags(item: Span) -> dict[str, Any]:
    """A span's (or a process's) tags as a dict."""
    return {tag["key"]: tag["value"] for tag in item.get("tags", [])}


def parent_span_id(span: Span) -> str | None:
    """The span id of the span's parent (its CHILD_OF reference), None for a root span."""
    return next((ref["spanID"] for ref in span.get("references", []) if ref["refType"] == "CHILD_OF"), None)


def _address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp's "0100007F:1F90" as ("127.0.0.1", 8080); IPv6 as its compressed form."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # Each 32-bit word is in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, words), int(port, 16)


def listening_sockets(pid: int) -> list[tuple[str, int, str]]:
    """Listening TCP and bound UDP sockets of process `pid` (what `ss -ltnup` shows for it)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode in inodes and (state == "0A" or table.startswith("udp")):  # 0A: LISTEN
                address, port = _address(local)
                found.append((address, port, table.rstrip("6")))
    return sorted(found)
