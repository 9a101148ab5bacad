"""Child processes the bench starts: every one is tracked and killed on exit, by its own PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_GRACE_S = 5.0


class BenchError(RuntimeError):
    """A bench step failed; the message says which and what to look at."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Children:
    """Starts processes in their own session and stops them all (process group by PID) on exit."""

    def __init__(self, nice: int = 0) -> None:
        self.nice = nice  # scheduling niceness of every child; below 0 needs root
        self._running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Children:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_all()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        raise SystemExit(f"bench interrupted by signal {signum}; stopping child processes")

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        command = ["nice", "-n", str(self.nice), *argv] if self.nice else list(argv)  # nice execs: same PID
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,  # its own process group: killed with all it starts
            )
        self._running[proc.pid] = (name, proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        self._running.pop(proc.pid, None)
        if proc.poll() is not None:
            return
        self._signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._signal_group(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for _, proc in list(self._running.values()):
            self.stop(proc)

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # the group this child leads (start_new_session), by its PID


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.01) -> None:
    """Poll `check()` until it is true or raise BenchError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat, idle and iowait excluded)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def busy_cores(seconds: float = 2.0) -> float:
    """How many cores the machine keeps busy over `seconds` (before the bench starts anything)."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def wait_for_idle(limit_cores: float, minutes: float, quiet_s: float = 10.0) -> float:
    """Wait up to `minutes` until other processes stay under `limit_cores` for `quiet_s`; the last reading."""
    deadline = time.monotonic() + minutes * 60
    busy = busy_cores()
    while busy > limit_cores and time.monotonic() < deadline:
        time.sleep(5)
        busy = busy_cores(quiet_s)
    return busy
