# /// script
# requires-python = ">=3.11"
# dependencies = []
# ///
"""What the generated server's production stack costs over bare FastMCP: latency, throughput, start, memory.

Usage: ./bench/run [--quick] [--with-suite] [--calls N] [--cold-starts K] [--profile auto|always|never] [--no-write]

Renders the template once (default answers + trace_backend=otlp + rate_limit_storage=redis), starts
Redis and an OTLP/HTTP receiver on 127.0.0.1, then for bare FastMCP, the stack a user would build by
hand from FastMCP's documentation and five builds of the generated server measures cold start,
tool-call latency and throughput at concurrency 1, 8 and 32 and RSS over 10,000 calls; prints the
tables and rewrites the results block of docs/benchmarks.md. `--quick` measures bare, the reference
and the full stack at c=1 and c=8 in about two minutes and only prints.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import doc, profiling, project
from benchlib.measure import Bench, Plan, receiver_stats, redis_ping
from benchlib.procs import BenchError, Children, busy_cores, free_port, wait_for_idle, wait_until
from benchlib.report import Report, targets
from benchlib.variants import (
    BARE,
    FULL,
    QUICK_VARIANTS,
    SCOPES,
    TENANT,
    VARIANTS,
    WORKERS,
    Shared,
    base_env,
    settings_env,
)

REPO = Path(__file__).resolve().parent.parent
SUITE_RECORD = Path(__file__).resolve().parent / "suite-time.json"
BUSY_WARNING_CORES = 0.3
# --quick: calls per level, rounds, calls per server before the last RSS reading, cold starts, renders.
# Three rounds of 200 calls alternate the servers as the full run's two rounds of 1,000 do.
QUICK_PLAN = (600, 3, 2000, 3, 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="bare, the hand-built reference and the full stack at c=1 and c=8, fewer calls, no profile; prints "
        "only, for measuring a change before it lands (about 2 minutes; the full run is the published one)",
    )
    parser.add_argument(
        "--with-suite",
        action="store_true",
        help="also time the template's whole test suite, ./scripts/test (what CI runs; about 12 minutes)",
    )
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per concurrency level (2000)")
    parser.add_argument(
        "--total-calls", type=int, default=10_000, help="calls per server before the last RSS reading (10000)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds each level's calls are split into (2)")
    parser.add_argument("--cold-starts", type=int, default=5, help="cold starts per variant, median reported (5)")
    parser.add_argument("--renders", type=int, default=3, help="timed copier renders, median reported (3)")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="py-spy the full stack and bare FastMCP: when a target is missed (auto), always or never",
    )
    parser.add_argument(
        "--template", type=Path, default=REPO, help="the Copier template to render (default: this repository)"
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md", help="the doc to update")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the doc alone")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="MINUTES",
        help="on a shared machine, first wait up to this long for other processes to go quiet (0)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers, load generator, Redis and receiver at this niceness; e.g. -10 (root) puts them "
        "ahead of other work on a shared machine (0)",
    )
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (logs, profiles, the render)")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.rounds, args.total_calls, args.cold_starts, args.renders = QUICK_PLAN
        args.no_write = True
        if args.profile == "auto":
            args.profile = "never"
    return args


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def redis_server() -> str:
    """redis-server on PATH, installed from Debian's packages when missing and we are root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("redis-server not found: installing it (apt-get install -y redis-server)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False, env=env)
        found = shutil.which("redis-server")
    if not found:
        raise BenchError("redis-server is required: install it (e.g. `sudo apt-get install -y redis-server`) and rerun")
    return found


def start_helpers(children: Children, workdir: Path, python: Path, redis: str) -> tuple[int, int, list[int]]:
    """Redis and the OTLP receiver on free loopback ports; (redis port, receiver port, their PIDs)."""
    redis_port, receiver_port = free_port(), free_port()
    redis_argv = [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis_proc = children.start("redis", redis_argv, log=workdir / "logs" / "redis.log", cwd=workdir)
    receiver_argv = [str(python), str(WORKERS / "otlp_receiver.py"), str(receiver_port)]
    receiver = children.start("otlp-receiver", receiver_argv, log=workdir / "logs" / "receiver.log")
    wait_until(lambda: redis_ping(redis_port), 10, "redis-server to answer PING")
    wait_until(lambda: _receiver_up(receiver_port), 10, "the OTLP receiver")
    return redis_port, receiver_port, [redis_proc.pid, receiver.pid]


def _receiver_up(port: int) -> bool:
    try:
        receiver_stats(port)
    except OSError:
        return False
    return True


def mint_token(shared: Shared) -> str:
    env = {**base_env(shared, dict(os.environ)), **settings_env(shared, FULL)}
    argv = [str(shared.python), str(WORKERS / "mint_token.py"), shared.package, TENANT, *SCOPES]
    result = subprocess.run(argv, env=env, cwd=shared.workdir, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"minting a dev token failed: {result.stderr[-2000:]}")
    return result.stdout.strip()


def run(args: argparse.Namespace, workdir: Path, command: str) -> Report:
    started = time.perf_counter()
    plan = Plan(calls=args.calls, rounds=args.rounds, cold_starts=args.cold_starts, total_calls=args.total_calls)
    variants = VARIANTS
    if args.quick:
        plan.concurrency, plan.warmup_calls, variants = (1, 8), 200, QUICK_VARIANTS
    redis = redis_server()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    busy = busy_cores()
    if busy > BUSY_WARNING_CORES and args.wait_idle > 0:
        say(f"other processes keep {busy:.2f} cores busy: waiting up to {args.wait_idle:g} min for them to finish")
        busy = wait_for_idle(BUSY_WARNING_CORES, args.wait_idle)
    if busy > BUSY_WARNING_CORES:
        say(f"warning: other processes keep {busy:.2f} cores busy; figures will be noisy (reported in the doc)")
    say(f"rendering the template {args.renders} times (copier) and once for the bench")
    renders = project.render_times(args.template, workdir, args.renders)
    target = workdir / project.PROJECT_NAME
    project.render(args.template, target)
    python = project.sync(target)
    machine = project.machine(python, redis)
    if args.nice < 0 and os.geteuid() != 0:
        raise BenchError("--nice below 0 needs root")
    with Children(nice=args.nice) as children:
        redis_port, receiver_port, helper_pids = start_helpers(children, workdir, python, redis)
        env_prefix = project.PACKAGE.upper() + "_"
        shared = Shared(python, project.PACKAGE, env_prefix, workdir, redis_port, receiver_port)
        bench = Bench(children, shared, mint_token(shared), dict(os.environ))
        bench.helpers = helper_pids
        cold: dict[str, list[float]] = {variant.key: [] for variant in variants}
        for round_ in range(plan.cold_starts):  # round-robin, so drift hits every variant alike
            say(f"cold starts, round {round_ + 1}/{plan.cold_starts}")
            for variant in variants:
                cold[variant.key].append(bench.cold_start(variant))
        say("starting one server per variant; load schedule (servers interleaved)")
        bench.start_all(variants)
        results = bench.measure(variants, plan)
        for key, result in results.items():
            result.cold_starts = cold[key]
        rows, growth = targets(results, plan)
        missed = not all(row.met for row in rows) or not growth.met
        profiles = None
        if args.profile == "always" or (args.profile == "auto" and missed):
            say("profiling the full stack and bare FastMCP with py-spy")
            py_spy = profiling.py_spy_binary()
            full = bench.profile(FULL, plan.profile_calls, py_spy)
            profiles = (full, bench.profile(BARE, plan.profile_calls, py_spy))
        bench.stop_all()
        bench.check_spans(results)
    if args.with_suite:
        say("running ./scripts/test (the template's whole test suite)")
        suite = project.run_suite(REPO, SUITE_RECORD)
    else:
        suite = project.recorded_suite(SUITE_RECORD)
    return Report(
        results=results,
        plan=plan,
        machine=machine,
        busy_before=busy,
        render_seconds=renders,
        suite=suite,
        command=command,
        revision=project.template_revision(args.template),
        date=time.strftime("%Y-%m-%d %H:%M %Z"),
        wall_seconds=time.perf_counter() - started,
        profiles=profiles,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "./bench/run" + ("".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:])))
    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            report = run(args, args.keep.resolve(), command)
        else:
            with tempfile.TemporaryDirectory(prefix="stack-bench-") as tmp:
                report = run(args, Path(tmp), command)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    lines = report.lines()
    print("\n".join(lines))
    if not args.no_write:
        doc.write(args.output, lines)
        say(f"wrote {args.output}")
    say("all targets met" if report.all_met() else "some targets missed: see the targets table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
