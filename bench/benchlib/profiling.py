"""py-spy profiles of a server under load, summarised: where CPU goes per call, ours vs FastMCP's."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .procs import BenchError, Children, tail

PY_SPY = "py-spy==0.4.3"
RATE_HZ = 250
# Leaf frames are grouped by the library their file belongs to.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("opentelemetry/", "OpenTelemetry"),
    ("google/protobuf", "OpenTelemetry"),
    ("joserfc/", "JWT (joserfc/cryptography)"),
    ("authlib/", "JWT (joserfc/cryptography)"),
    ("cryptography/", "JWT (joserfc/cryptography)"),
    ("limits/", "rate limit (limits/redis)"),
    ("redis/", "rate limit (limits/redis)"),
    ("logging/", "logging/json"),
    ("json/", "logging/json"),
    ("pydantic", "pydantic"),
    ("fastmcp/", "FastMCP"),
    ("mcp/", "MCP SDK"),
    ("mcp_types/", "MCP SDK"),
    ("starlette/", "HTTP (uvicorn/starlette/h11)"),
    ("uvicorn/", "HTTP (uvicorn/starlette/h11)"),
    ("h11/", "HTTP (uvicorn/starlette/h11)"),
    ("sse_starlette/", "HTTP (uvicorn/starlette/h11)"),
    ("anyio/", "asyncio/anyio"),
    ("asyncio/", "asyncio/anyio"),
)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*)\)$")


def short_path(path: str) -> str:
    """A file path without its site-packages, src/ or stdlib prefix."""
    for marker in ("site-packages/", "/src/"):
        if marker in path:
            return path.rsplit(marker, 1)[1]
    match = re.search(r"lib/python3\.\d+/(.*)$", path)
    return match.group(1) if match else path


def parse_frame(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    return match.group("function"), short_path(match.group("file"))


@dataclass
class Profile:
    """Collapsed stacks from `py-spy record --format raw` for a known number of tool calls."""

    label: str
    calls: int
    package: str
    stacks: Counter[tuple[tuple[str, str], ...]] = field(default_factory=Counter)

    @classmethod
    def load(cls, label: str, path: Path, calls: int, package: str) -> Profile:
        profile = cls(label, calls, package)
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                profile.stacks[tuple(parse_frame(f) for f in stack.split(";"))] += int(count)
        if not profile.stacks:
            raise BenchError(f"py-spy wrote no samples to {path}")
        return profile

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())

    def ms_per_call(self, samples: float) -> float:
        return samples / RATE_HZ * 1000 / self.calls

    def library(self, path: str) -> str:
        if path.startswith(f"{self.package}/"):
            return f"ours ({self.package})"
        for prefix, name in LIBRARIES:
            if path.startswith(prefix):
                return name
        return "other (stdlib, runtime)"

    def by_leaf_library(self) -> Counter[str]:
        """Samples by the library of the innermost frame (where the CPU is spent)."""
        totals: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            totals[self.library(stack[-1][1])] += count
        return totals

    def owner(self, stack: tuple[tuple[str, str], ...]) -> str:
        """Who asked for the work: the innermost frame in our package, FastMCP or the MCP SDK."""
        for function, path in reversed(stack):
            if path.startswith(f"{self.package}/"):
                return f"{path}:{function}"
            if path.startswith(("fastmcp/", "mcp/")):
                return f"{path.split('/', 1)[0]}/… {function}"
        return "no FastMCP/ours frame (HTTP server, event loop, background threads)"

    def by_group(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            owner = self.owner(stack)
            group = "ours" if owner.startswith(self.package) else owner.split("/", 1)[0]
            totals[group if group in ("ours", "fastmcp", "mcp") else "runtime"] += count
        return totals

    def our_inclusive(self) -> Counter[str]:
        """Samples under each function of our package (each stack counted once per function)."""
        totals: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            for function, path in {frame for frame in stack if frame[1].startswith(f"{self.package}/")}:
                totals[f"{path}:{function}"] += count
        return totals

    def self_frames(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            function, path = stack[-1]
            totals[f"{function} ({path})"] += count
        return totals


def py_spy_binary() -> str:
    """py-spy's executable, installed from PyPI into uv's tool cache."""
    result = subprocess.run(
        ["uvx", "--from", PY_SPY, "sh", "-c", "command -v py-spy"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise BenchError(f"could not install {PY_SPY} with uvx: {result.stderr[-1000:]}")
    return result.stdout.strip().splitlines()[-1]


def record(children: Children, binary: str, pid: int, output: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start py-spy sampling `pid` (all threads, CPU only) until `finish`."""
    argv = [binary, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", "raw"]
    argv += ["--nolineno", "--nonblocking", "--output", str(output)]
    proc = children.start("py-spy", argv, log=log)
    time.sleep(0.5)
    if proc.poll() is not None:
        raise BenchError(f"py-spy could not attach to {pid} (exit {proc.returncode}); log {log}:\n{tail(log)}")
    return proc


def finish(children: Children, proc: subprocess.Popen[bytes], output: Path, log: Path) -> None:
    """Stop py-spy the way Ctrl-C does (it then writes its output)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    finally:
        children.stop(proc)
    if not output.exists():
        raise BenchError(f"py-spy wrote no profile to {output}; log {log}:\n{tail(log)}")
