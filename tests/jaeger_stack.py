"""A real Jaeger and the generated projects that send it spans, made ready in the background.

tests/test_jaeger.py checks traces in a real Jaeger v2 (tests/peers/jaeger.py: built from the Go
module proxy on a first run, about 9 minutes, cached afterwards). Its slow parts run in
`JaegerStack`, a thread conftest.py starts before the first test whenever a selected test uses it,
so they overlap the rest of the suite: rendering and syncing the `jaeger` and `otlp` projects,
Jaeger's build (if need be) and start, then the steady state: the `jaeger` project's own server,
called once a second for two minutes against the healthy Jaeger, its log kept for the test to read.
The tests wait only for the stage they need.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import keep_venv, python_for, uv_environment
from peers import jaeger as jaeger_peer
from peers.jaeger import Jaeger
from peers.machine import free_port
from peers.mcp_client import McpClient
from peers.processes import stop, unhealthy
from rendering import render

PREFIX = "MY_SERVER_"
BACKENDS = ("jaeger", "otlp")
SLUG = "my-server"
READY_SECONDS = 120  # a server's start on a loaded 2-core machine, as the generated tests allow
BUILD_SECONDS = 3600  # Jaeger's first build: about 9 minutes at rest, at the lowest priority beside a suite
STEADY_SECONDS = 120.0
STEADY_INTERVAL = 1.0
METRIC_EXPORT_INTERVAL_MS = "5000"  # the SDK's default is 60 s: 24 intervals in the run instead of 2
STEADY_CALL = ("search_notes", {"query": "runbook"})
USER_ID_HASH_KEY = secrets.token_urlsafe(32)


class StackError(RuntimeError):
    pass


def answers(backend: str) -> dict[str, str]:
    return {"transport": "http", "trace_backend": backend, "rate_limit_storage": "memory"}


def _clean_environment() -> dict[str, str]:
    """This process's environment without its MY_SERVER_*, OTEL_* or LANGFUSE_* variables."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith((PREFIX, "OTEL_", "LANGFUSE_", "VIRTUAL_ENV", "UV_PROJECT"))
    }


def server_environment(port: int, jaeger: Jaeger, service: str, **settings: str) -> dict[str, str]:
    """A generated server's environment: on 127.0.0.1:`port`, spans to `jaeger` as `service`, user ids
    hashed with a key (as production runs), then `settings`."""
    env = _clean_environment()
    env.update(
        {
            "FASTMCP_CHECK_FOR_UPDATES": "off",
            "FASTMCP_SHOW_SERVER_BANNER": "false",
            f"{PREFIX}USER_ID_HASH_KEY": USER_ID_HASH_KEY,
            f"{PREFIX}TRANSPORT": "http",
            f"{PREFIX}HOST": "127.0.0.1",
            f"{PREFIX}PORT": str(port),
            "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint,
            "OTEL_SERVICE_NAME": service,
            **settings,
        }
    )
    return env


def mint(project: Path, env: dict[str, str], *scopes: str, subject: str, tenant: str) -> str:
    """A dev token from the project's own `token` command, for the server `env` configures."""
    command = [str(project / ".venv" / "bin" / SLUG), "token", "--subject", subject, "--tenant", tenant]
    for scope in scopes:
        command += ["--scope", scope]
    run = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise StackError(f"`{SLUG} token` failed: {run.stderr[-2000:]}")
    return run.stdout.strip()


def wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = READY_SECONDS) -> None:
    problem = unhealthy(process, f"http://127.0.0.1:{port}/healthz", timeout)
    if problem:
        raise StackError(f"{problem}:\n{log.read_text()[-4000:]}")


def log_problems(lines: list[str]) -> list[str]:
    """The lines of a JSON log at WARNING or above, and any line that is not a log entry at all."""
    problems = []
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(line)  # a traceback or a print: never part of a clean run
            continue
        if not isinstance(entry, dict) or entry.get("level") not in ("DEBUG", "INFO"):
            problems.append(line)
    return problems


@dataclass
class SteadyState:
    """What two minutes of calls left: the server's log lines from the moment it answered /healthz
    to its exit (SIGTERM and the flush included), and the log lines before that."""

    service: str
    calls: int = 0
    failed: list[Any] = field(default_factory=list)
    start_up: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exit_code: int | None = None


class JaegerStack(threading.Thread):
    """Renders and syncs the projects, starts Jaeger (building it the first time), runs the steady state."""

    def __init__(self, template: Path, root: Path) -> None:
        super().__init__(name="jaeger-stack", daemon=True)
        self.template, self.root = template, root
        self.projects: dict[str, Path] = {}
        self.jaeger: Jaeger | None = None
        self.steady: SteadyState | None = None
        self.timings: list[str] = []
        self.error: BaseException | None = None
        self._reached: dict[str, threading.Event] = {
            stage: threading.Event() for stage in ("projects", "jaeger", "steady")
        }
        self._done: set[str] = set()
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            began = time.perf_counter()
            env = uv_environment(python_for("3.11"))
            for backend in BACKENDS:
                project = render(self.template, self.root / backend / SLUG, answers(backend))
                keep_venv(project, f"jaeger-{backend}", python_for("3.11"))
                subprocess.run(["uv", "sync", "--quiet"], cwd=project, env=env, check=True, timeout=900)
                # The dev signing key, made here: `token` and servers started together would race to create it.
                token = [str(project / ".venv" / "bin" / SLUG), "token"]
                subprocess.run(
                    token, cwd=project, env=_clean_environment(), capture_output=True, check=True, timeout=120
                )
                self.projects[backend] = project
            self.timings.append(f"jaeger and otlp projects rendered and synced in {time.perf_counter() - began:.1f} s")
            self._done.add("projects")
            self._reached["projects"].set()
            self._start_jaeger()
            self._done.add("jaeger")
            self._reached["jaeger"].set()
            self.steady = self._steady_state()
            self._done.add("steady")
            self._reached["steady"].set()
        except BaseException as error:  # reported in the tests' thread, by `wait`
            self.error = error
        finally:
            for reached in self._reached.values():
                reached.set()

    def _start_jaeger(self) -> None:
        if not (jaeger_peer.cache_dir() / jaeger_peer.JAEGER_VERSION / "jaeger").is_file():
            began = time.perf_counter()
            jaeger_peer.binary()
            size = (jaeger_peer.cache_dir() / jaeger_peer.JAEGER_VERSION / "jaeger").stat().st_size
            self.timings.append(
                f"Jaeger {jaeger_peer.JAEGER_VERSION} built from the Go module proxy in "
                f"{time.perf_counter() - began:.0f} s ({size / 1e6:.0f} MB)"
            )
        self.jaeger = jaeger_peer.start(self.root / "jaeger-home")
        self.timings.append(f"Jaeger started (query API and OTLP receiver answer) in {self.jaeger.wait_ready():.2f} s")

    def _steady_state(self) -> SteadyState:
        """The jaeger project's own server with its own tools, called once a second for STEADY_SECONDS."""
        assert self.jaeger is not None
        project = self.projects["jaeger"]
        port = free_port()
        steady = SteadyState(service=f"steady-{secrets.token_hex(4)}")
        env = server_environment(
            port,
            self.jaeger,
            steady.service,
            OTEL_METRIC_EXPORT_INTERVAL=METRIC_EXPORT_INTERVAL_MS,
            **{f"{PREFIX}LOG_LEVEL": "INFO", f"{PREFIX}DEFAULT_RATE_LIMIT": "600/minute"},
        )
        token = mint(project, env, "data:read", subject="steady@example.com", tenant="acme")
        log = self.root / "steady-server.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [str(project / ".venv" / "bin" / SLUG), "serve"],
                cwd=project,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        client: McpClient | None = None
        try:
            wait_healthy(server, port, log)
            healthy_at = len(log.read_bytes())
            client = McpClient(project / ".venv" / "bin" / "python")
            began = time.monotonic()
            # A call a second; on a loaded machine a session may take longer, and the next starts at once.
            while not self._stopping.is_set() and time.monotonic() - began < STEADY_SECONDS:
                answer = client.session(f"http://127.0.0.1:{port}/mcp", token, (STEADY_CALL,))
                steady.calls += 1
                if answer["calls"][STEADY_CALL[0]]["is_error"]:
                    steady.failed.append(answer)
                self._stopping.wait(max(0.0, began + steady.calls * STEADY_INTERVAL - time.monotonic()))
            steady.seconds = time.monotonic() - began
            client.close()
            client = None
            server.send_signal(signal.SIGTERM)  # flushes the spans still queued
            steady.exit_code = server.wait(timeout=30)
        finally:
            if client is not None:
                client.close()
            stop(server)
        text = log.read_bytes()
        steady.start_up = text[:healthy_at].decode(errors="replace").splitlines()
        steady.running = text[healthy_at:].decode(errors="replace").splitlines()
        return steady

    def wait(self, stage: str, timeout: float = BUILD_SECONDS + 600) -> None:
        """Block until `stage` ("projects", "jaeger", "steady") is reached; raise what stopped the stack."""
        if not self._reached[stage].wait(timeout):
            raise StackError(f"the Jaeger stack did not reach {stage!r} within {timeout:.0f} s")
        if stage not in self._done:
            raise StackError(f"the Jaeger stack failed before {stage!r}") from self.error

    def running_jaeger(self) -> Jaeger:
        self.wait("jaeger")
        assert self.jaeger is not None
        return self.jaeger

    def project(self, backend: str) -> Path:
        self.wait("projects")
        return self.projects[backend]

    def steady_state(self) -> SteadyState:
        self.wait("steady")
        assert self.steady is not None
        return self.steady

    def close(self) -> None:
        """End the steady state early if it still runs, then stop Jaeger."""
        self._stopping.set()
        self.join(timeout=120)
        if self.jaeger is not None:
            self.jaeger.stop()
