"""Where a command's CPU time goes, by kind of process: the template's test suite, for one.

Usage: python3 bench/suite_cpu.py [--json FILE] -- COMMAND [ARGUMENT ...]
e.g.   python3 bench/suite_cpu.py --json /tmp/suite-cpu.json -- ./scripts/test

Runs COMMAND and, once a second until it ends, reads every process's CPU time (user + system) from
/proc. Each process counts what it used while the command ran, under the kind its command line
names (a generated project's pytest, the servers its tests start, the render workers, Keycloak, ...).
Prints a table, largest first, with the machine's busy share over the run. A process that lives
less than a second may be missed; the table says how much of the machine's busy time it accounts
for. Linux only; the standard library only, so it runs before the suite installs anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent

# (what a command line contains, the kind it is), first match wins.
KINDS = (
    ("probe_server", "server processes started by tests"),
    ("tests.server.forkserver", "server processes started by tests"),  # the fork server and its children
    ("forkserver_client", "server processes started by tests"),
    ("/bin/mypy", "mypy"),
    ("multiprocessing.forkserver", "render and other worker processes"),
    ("/bin/pytest", "pytest"),
    ("java", "Keycloak (JVM)"),
    ("node", "Node (OpenID provider, MCP Inspector)"),
    ("/bin/my-server", "project CLIs and servers"),
    ("/bin/fastmcp", "project CLIs and servers"),
    ("python", "other Python"),
)


def kind_of(command_line: str) -> str:
    """The kind of a process: the template's own pytest, and the generated projects' (under
    generated*/, or in their kept virtual environments, venvs/generated-*) pytest, mypy and
    servers, are told apart from the others of their kind."""
    executable = Path(command_line.split(maxsplit=1)[0]).name if command_line else "unknown"
    head = command_line[:300]
    kind = next((name for part, name in KINDS if part in head), executable)
    if kind == "pytest" and head.startswith(str(REPO / ".venv")):
        return "the template's own pytest"
    if kind in ("pytest", "mypy", "server processes started by tests") and "/generated" in head:
        return f"generated projects: {kind}"
    return kind


def _cpu_seconds(pid: str) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _command_line(pid: str) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()


def _machine_ticks() -> tuple[int, int]:
    """(all, idle) ticks of every CPU since boot."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    return sum(values), values[3] + values[4]


@dataclass
class Sampler:
    """CPU seconds per process since sampling began; kernel threads (no command line) are left out."""

    before: dict[str, float] = field(default_factory=dict)  # processes already running at the start
    used: dict[str, tuple[float, str]] = field(default_factory=dict)  # pid -> (seconds used, command line)

    def sample(self, first: bool = False) -> None:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                seconds = _cpu_seconds(pid)
                if first:
                    self.before[pid] = seconds
                    continue
                command = self.used[pid][1] if pid in self.used else _command_line(pid)
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            if command:
                self.used[pid] = (seconds - self.before.get(pid, 0.0), command)

    def by_kind(self) -> dict[str, float]:
        """CPU seconds by kind of process, largest first."""
        kinds: dict[str, float] = {}
        for seconds, command in self.used.values():
            kind = kind_of(command)
            kinds[kind] = kinds.get(kind, 0.0) + seconds
        return dict(sorted(kinds.items(), key=lambda item: -item[1]))

    def largest(self, count: int) -> list[tuple[float, str, str]]:
        """The `count` processes that used the most CPU: (seconds, kind, command line)."""
        ranked = sorted(self.used.values(), reverse=True)[:count]
        return [(round(seconds, 1), kind_of(command), command[:300]) for seconds, command in ranked]


def measure(command: list[str]) -> tuple[int, float, Sampler, float]:
    """Run `command`; its exit code, wall seconds, what each process used, and the machine's busy CPU seconds."""
    sampler = Sampler()
    sampler.sample(first=True)
    all_before, idle_before = _machine_ticks()
    started = time.perf_counter()
    process = subprocess.Popen(command)
    while True:
        try:
            process.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            sampler.sample()
    sampler.sample()
    all_after, idle_after = _machine_ticks()
    busy = ((all_after - all_before) - (idle_after - idle_before)) / TICKS
    return process.returncode, time.perf_counter() - started, sampler, busy


def table(wall: float, kinds: dict[str, float], busy: float) -> str:
    counted = sum(kinds.values())
    cores = os.cpu_count() or 1
    lines = [
        f"wall {wall:.0f} s on {cores} cores; machine busy {busy:.0f} CPU s ({busy / (wall * cores):.0%} of "
        f"{wall * cores:.0f}); counted below {counted:.0f} CPU s ({counted / busy:.0%} of busy)",
        "",
        "| kind of process | CPU s | share |",
        "|---|---:|---:|",
    ]
    rows = [(kind, seconds) for kind, seconds in kinds.items() if seconds >= 0.5]
    lines += [f"| {kind} | {seconds:.0f} | {seconds / counted:.0%} |" for kind, seconds in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGUMENT ...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to run after --")
    code, wall, sampler, busy = measure(command)
    kinds = sampler.by_kind()
    print(table(wall, kinds, busy))
    if args.json:
        figures = {"command": " ".join(command), "exit": code, "wall_s": round(wall, 1), "busy_cpu_s": round(busy, 1)}
        figures["cpu_s"] = {kind: round(seconds, 1) for kind, seconds in kinds.items()}
        figures["largest_processes"] = sampler.largest(60)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
