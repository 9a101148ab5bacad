"""The rendered project the variants are built from, and facts about this machine."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import BenchError
from .variants import WORKERS

COPIER = "copier>=9.4,<10"
# The default answers plus the two that let every variant come from one render.
ANSWERS = {"trace_backend": "otlp", "rate_limit_storage": "redis"}
PROJECT_NAME = "bench-server"
PACKAGE = "bench_server"


def _run(argv: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{result.stderr[-2000:]}")
    return result.stdout


def render(template: Path, dest: Path) -> float:
    """Render the template with copier into `dest`; seconds of wall time."""
    # HEAD and uncommitted changes, not the newest release tag copier would pick by default.
    argv = ["uvx", "--from", COPIER, "copier", "copy", "--defaults", "--quiet", "--vcs-ref=HEAD"]
    for question, answer in ANSWERS.items():
        argv += ["-d", f"{question}={answer}"]
    started = time.perf_counter()
    _run([*argv, str(template), str(dest)], "rendering the template")
    return time.perf_counter() - started


def render_times(template: Path, scratch: Path, count: int) -> list[float]:
    """`count` timed renders after one untimed one (which installs copier into uv's cache)."""
    _run(["uvx", "--from", COPIER, "copier", "--version"], "installing copier")
    times = []
    for index in range(count):
        dest = scratch / f"render-{index}"
        times.append(render(template, dest))
        shutil.rmtree(dest)
    return times


# What the hand-built reference server uses and the generated project does not: OpenTelemetry's
# ASGI middleware (FastMCP's documented way to continue an HTTP `traceparent`), at the release of the
# project's OpenTelemetry SDK.
REFERENCE_EXTRAS = ("opentelemetry-instrumentation-asgi",)


def sync(project: Path) -> Path:
    """Install the project's locked-or-resolved dependencies, and the reference server's extras; its interpreter.

    Compiled to bytecode, as the image does (UV_COMPILE_BYTECODE): the servers run with
    PYTHONDONTWRITEBYTECODE, so without it every cold start would compile every module again."""
    _run(["uv", "sync", "--quiet", "--compile-bytecode"], "uv sync of the rendered project", cwd=project)
    python = project / ".venv" / "bin" / "python"
    if not python.exists():
        raise BenchError(f"uv sync left no interpreter at {python}")
    instrumentation = _installed_version(python, "opentelemetry-instrumentation")
    extras = [f"{name}=={instrumentation}" for name in REFERENCE_EXTRAS]
    install = ["uv", "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), *extras]
    _run(install, "the reference's extras", cwd=project)
    return python


def _installed_version(python: Path, distribution: str) -> str:
    code = f"from importlib.metadata import version; print(version({distribution!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@dataclass(frozen=True)
class Machine:
    cores: int
    ram_gib: float
    cpu: str
    kernel: str
    versions: dict[str, str]
    redis: str


def machine(python: Path, redis_server: str) -> Machine:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    versions = json.loads(_run([str(python), str(WORKERS / "package_versions.py")], "reading package versions"))
    redis = _run([redis_server, "--version"], "redis-server --version").split()
    redis_version = next((word.split("=", 1)[1] for word in redis if word.startswith("v=")), "unknown")
    return Machine(
        cores=os.cpu_count() or 0,
        ram_gib=round(total_kib / 1024 / 1024, 1),
        cpu=cpu,
        kernel=platform.release(),
        versions=versions,
        redis=redis_version,
    )


@dataclass(frozen=True)
class SuiteTime:
    seconds: float | None
    source: str  # how the figure was obtained, said in the report


# The template's whole test suite, what CI runs (.ci/run calls it).
SUITE_COMMAND = ("./scripts/test",)
SUITE_TARGET_SECONDS = 600.0


def run_suite(repo: Path, record: Path) -> SuiteTime:
    """Run the template's whole test suite and record its wall time."""
    started = time.perf_counter()
    result = subprocess.run(list(SUITE_COMMAND), cwd=repo, check=False)
    seconds = time.perf_counter() - started
    stamp = time.strftime("%Y-%m-%d")
    record.write_text(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "date": stamp,
                "exit": result.returncode,
                "command": " ".join(SUITE_COMMAND),
            }
        )
        + "\n"
    )
    if result.returncode != 0:
        raise BenchError(f"{' '.join(SUITE_COMMAND)} failed (exit {result.returncode}) after {seconds:.0f} s")
    return SuiteTime(seconds, f"measured in this run ({stamp}, exit 0)")


def recorded_suite(record: Path) -> SuiteTime:
    if not record.exists():
        return SuiteTime(None, f"not measured (pass --with-suite; no recorded figure in {record.name})")
    data = json.loads(record.read_text())
    if data.get("command") != " ".join(SUITE_COMMAND):
        return SuiteTime(None, f"not measured (pass --with-suite; {record.name} holds another command's time)")
    return SuiteTime(
        float(data["seconds"]), f"last recorded figure from {record.name} ({data['date']}), not measured in this run"
    )


def template_revision(repo: Path) -> str:
    """The template's commit, and whether the render included uncommitted changes (copier does)."""
    try:
        commit = _run(["git", "rev-parse", "--short", "HEAD"], "git rev-parse", cwd=repo).strip()
        dirty = _run(["git", "status", "--porcelain", "--", "template", "copier.yml"], "git status", cwd=repo).strip()
    except (BenchError, OSError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes under template/" if dirty else commit
