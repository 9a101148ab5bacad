"""Ratios against bare FastMCP, the targets, and the tables printed and written to docs/benchmarks.md."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from .measure import Plan, VariantResult
from .profiling import Profile
from .project import SUITE_COMMAND, SUITE_TARGET_SECONDS, Machine, SuiteTime
from .variants import BARE, FULL, NEVER_REACHED_LIMIT, REFERENCE, TENANT

MIB = 1024
# "No growth": RSS after 10,000 calls within this much of RSS after 1,000 (allocator noise).
GROWTH_TOLERANCE_MIB = 1.0


@dataclass(frozen=True)
class Target:
    name: str
    baseline: str  # the variant the full stack is compared with
    base: float
    full: float
    limit: float
    higher_is_better: bool
    unit: str

    @property
    def ratio(self) -> float:
        return self.full / self.base

    @property
    def met(self) -> bool:
        return self.ratio >= self.limit if self.higher_is_better else self.ratio <= self.limit


@dataclass(frozen=True)
class Growth:
    full_mib: float
    bare_mib: float

    @property
    def met(self) -> bool:
        return self.full_mib <= GROWTH_TOLERANCE_MIB


def cold_start(result: VariantResult) -> float:
    return statistics.median(result.cold_starts)


def rss_mib(result: VariantResult, calls: int) -> float:
    return result.rss_kib(calls) / MIB


def growth_mib(result: VariantResult, plan: Plan) -> float:
    return rss_mib(result, plan.total_calls) - rss_mib(result, plan.rss_every)


def targets(results: dict[str, VariantResult], plan: Plan) -> tuple[list[Target], Growth]:
    """Against the hand-built reference: no slower and no less throughput at c=1 and c=8, although ours
    does more. Against bare FastMCP: the cost of the whole stack at c=8, cold start and memory."""
    bare, full, reference = results[BARE.key], results[FULL.key], results[REFERENCE.key]

    def target(
        name: str, base: VariantResult, metric: Callable[[VariantResult], float], limit: float, higher: bool, unit: str
    ) -> Target:
        return Target(name, base.variant.label, metric(base), metric(full), limit, higher, unit)

    def p50(c: int) -> Callable[[VariantResult], float]:
        return lambda result: float(result.phases[c]["p50_ms"])

    def throughput(c: int) -> Callable[[VariantResult], float]:
        return lambda result: float(result.phases[c]["throughput"])

    levels = [c for c in (1, 8) if c in plan.concurrency]
    rows = [target(f"median latency, c={c}", reference, p50(c), 1.0, False, "ms") for c in levels]
    rows += [target(f"throughput, c={c}", reference, throughput(c), 1.0, True, "calls/s") for c in levels]
    rows.append(target("median latency, c=8", bare, p50(8), 1.15, False, "ms"))
    rows.append(target("throughput, c=8", bare, throughput(8), 0.85, True, "calls/s"))
    rows.append(target("cold start", bare, cold_start, 1.1, False, "s"))
    rss_name = f"RSS after {plan.total_calls:,} calls"
    rows.append(target(rss_name, bare, lambda r: rss_mib(r, plan.total_calls), 1.2, False, "MiB"))
    return rows, Growth(growth_mib(full, plan), growth_mib(bare, plan))


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x"


def load_table(results: dict[str, VariantResult], plan: Plan) -> list[str]:
    bare = results[BARE.key]
    header = "| variant |" + "".join(f" c={c} p50 / p99 ms | c={c} calls/s |" for c in plan.concurrency)
    lines = [header, "|---|" + "---:|---:|" * len(plan.concurrency)]
    for result in results.values():
        cells = []
        for c in plan.concurrency:
            phase, base = result.phases[c], bare.phases[c]
            latency = f"{phase['p50_ms']:.2f} / {phase['p99_ms']:.1f}"
            throughput = f"{phase['throughput']:.0f}"
            if result is not bare:
                latency += f" ({_ratio(phase['p50_ms'], base['p50_ms'])})"
                throughput += f" ({_ratio(phase['throughput'], base['throughput'])})"
            cells += [latency, throughput]
        lines.append(f"| {result.variant.label} | " + " | ".join(cells) + " |")
    return lines


def resource_table(results: dict[str, VariantResult], plan: Plan) -> list[str]:
    bare = results[BARE.key]
    lines = [
        f"| variant | cold start s (median of {plan.cold_starts}) | RSS after {plan.rss_every:,} calls MiB "
        f"| RSS after {plan.total_calls:,} MiB | growth MiB | server CPU ms/call, c=8 | client CPU ms/call, c=8 "
        "| other load, cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results.values():
        start, rss, cpu = cold_start(result), rss_mib(result, plan.total_calls), result.phases[8]
        cells = [
            f"{start:.2f}",
            f"{rss_mib(result, plan.rss_every):.1f}",
            f"{rss:.1f}",
            f"{growth_mib(result, plan):+.1f}",
            f"{cpu['server_cpu_ms_per_call']:.2f}",
            f"{cpu['client_cpu_ms_per_call']:.2f}",
            f"{result.other_load_cores:.2f}",
        ]
        if result is not bare:
            cells[0] += f" ({_ratio(start, cold_start(bare))})"
            cells[2] += f" ({_ratio(rss, rss_mib(bare, plan.total_calls))})"
            base_cpu = bare.phases[8]["server_cpu_ms_per_call"]
            cells[4] += f" ({_ratio(cpu['server_cpu_ms_per_call'], base_cpu)})"
        lines.append(f"| {result.variant.label} | " + " | ".join(cells) + " |")
    return lines


def target_table(rows: list[Target], growth: Growth, plan: Plan) -> list[str]:
    lines = [
        "| full stack vs | measure | baseline | full stack | ratio | target | result |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        sign = "≥" if row.higher_is_better else "≤"
        digits = 0 if row.unit == "calls/s" else 2
        lines.append(
            f"| {row.baseline} | {row.name} | {row.base:.{digits}f} {row.unit} | {row.full:.{digits}f} {row.unit} "
            f"| {row.ratio:.2f}x | {sign} {row.limit:.2f}x | {'pass' if row.met else '**miss**'} |"
        )
    lines.append(
        f"| {BARE.label} | RSS growth, {plan.rss_every:,} → {plan.total_calls:,} calls | {growth.bare_mib:+.1f} MiB "
        f"| {growth.full_mib:+.1f} MiB | | none (≤ {GROWTH_TOLERANCE_MIB:.0f} MiB) "
        f"| {'pass' if growth.met else '**miss**'} |"
    )
    return lines


def sampling_table(results: dict[str, VariantResult]) -> list[str]:
    """What tracing costs the full stack at each sampling rate, against the same stack untraced."""
    untraced = results.get("auth_redis")
    sampled = [r for r in results.values() if r.variant.limiter == "redis" and r.variant.tracing]
    if untraced is None or len(sampled) < 2:
        return []
    base_cpu = float(untraced.phases[8]["server_cpu_ms_per_call"])
    lines = [
        "| calls traced | c=8 p50 ms | c=8 calls/s | server CPU ms/call, c=8 | tracing's CPU ms/call |",
        "|---:|---:|---:|---:|---:|",
    ]
    for result in [untraced, *sorted(sampled, key=lambda r: r.variant.sampling)]:
        phase = result.phases[8]
        share = f"{result.variant.sampling:.0%}" if result.variant.tracing else "none"
        cpu = float(phase["server_cpu_ms_per_call"])
        lines.append(
            f"| {share} | {phase['p50_ms']:.2f} | {phase['throughput']:.0f} | {cpu:.2f} | {cpu - base_cpu:+.2f} |"
        )
    return lines


def suite_line(suite: SuiteTime) -> str:
    """The template test suite's wall time, where it comes from, and the target when there is a figure."""
    line = f"Template test suite (`{' '.join(SUITE_COMMAND)}`, what CI runs): "
    if suite.seconds is None:
        return f"{line}{suite.source}."
    result = "pass" if suite.seconds <= SUITE_TARGET_SECONDS else "**miss**"
    return (
        f"{line}{suite.seconds / 60:.1f} min, {suite.source}; "
        f"target ≤ {SUITE_TARGET_SECONDS / 60:.0f} min on 2 cores with warm caches: {result}."
    )


def profile_section(full: Profile, bare: Profile, top: int = 12) -> list[str]:
    """CPU per call by where it is spent and who asked for it, full stack against bare."""
    lines = [
        f"py-spy {full.calls:,} calls at c=8 on each server ({full.samples:,} and {bare.samples:,} samples "
        "at 250 Hz, all threads, CPU only); ms of server CPU per call:",
        "",
        "| innermost library (where the CPU goes) | bare | full stack | difference |",
        "|---|---:|---:|---:|",
    ]
    full_lib, bare_lib = full.by_leaf_library(), bare.by_leaf_library()
    for name, _ in (full_lib + bare_lib).most_common():
        f, b = full.ms_per_call(full_lib[name]), bare.ms_per_call(bare_lib[name])
        lines.append(f"| {name} | {b:.2f} | {f:.2f} | {f - b:+.2f} |")
    lines.append(
        f"| **total** | {bare.ms_per_call(bare.samples):.2f} | {full.ms_per_call(full.samples):.2f} "
        f"| {full.ms_per_call(full.samples) - bare.ms_per_call(bare.samples):+.2f} |"
    )
    lines += ["", "| who asked (innermost frame of ours / FastMCP / MCP SDK) | bare | full stack |", "|---|---:|---:|"]
    full_group, bare_group = full.by_group(), bare.by_group()
    for name in ("ours", "fastmcp", "mcp", "runtime"):
        label = {"ours": "our generated code", "fastmcp": "FastMCP", "mcp": "MCP SDK"}.get(
            name, "neither (HTTP server, event loop, exporter threads)"
        )
        b, f = bare.ms_per_call(bare_group[name]), full.ms_per_call(full_group[name])
        lines.append(f"| {label} | {b:.2f} | {f:.2f} |")
    lines += ["", f"Top {top} frames by self time, full stack:", "", "| frame | share | ms/call |", "|---|---:|---:|"]
    for frame, count in full.self_frames().most_common(top):
        lines.append(f"| `{frame}` | {count / full.samples:.1%} | {full.ms_per_call(count):.3f} |")
    lines += ["", "Our generated code, inclusive (everything below each function), full stack:", ""]
    lines += ["| function | share | ms/call |", "|---|---:|---:|"]
    for frame, count in full.our_inclusive().most_common(top):
        lines.append(f"| `{frame}` | {count / full.samples:.1%} | {full.ms_per_call(count):.3f} |")
    return lines


@dataclass
class Report:
    results: dict[str, VariantResult]
    plan: Plan
    machine: Machine
    busy_before: float
    render_seconds: list[float]
    suite: SuiteTime
    command: str
    date: str
    revision: str
    wall_seconds: float
    profiles: tuple[Profile, Profile] | None = None

    def lines(self) -> list[str]:
        rows, growth = targets(self.results, self.plan)
        m, v = self.machine, self.machine.versions
        lines = [
            f"Run {self.date} with `{self.command}` in {self.wall_seconds / 60:.1f} min; template at {self.revision}.",
            "",
            f"Machine: {m.cores} cores ({m.cpu}), {m.ram_gib} GiB RAM, Linux {m.kernel}; Python {v['python']}, "
            f"fastmcp {v['fastmcp']}, mcp {v['mcp']}, uvicorn {v['uvicorn']}, starlette {v['starlette']}, "
            f"opentelemetry-sdk {v['opentelemetry-sdk']}, limits {v['limits']}, redis-py {v['redis']}, "
            f"joserfc {v['joserfc']}, pydantic {v['pydantic']}; Redis server {m.redis}. "
            f"Other processes kept {self.busy_before:.2f} cores busy before the run started.",
            "",
            f"Each concurrency level: {self.plan.calls:,} `tools/call search_notes` after a warm-up of "
            f"{self.plan.warmup_calls} calls; ratios in parentheses are against bare FastMCP in this run.",
            "",
            *load_table(self.results, self.plan),
            "",
            *resource_table(self.results, self.plan),
            "",
            "Targets:",
            "",
            *target_table(rows, growth, self.plan),
            "",
        ]
        sampling = sampling_table(self.results)
        if sampling:
            lines += [
                "Tracing's cost by sampling rate (auth + Redis limit, traced with `parentbased_traceidratio`):",
                "",
            ]
            lines += [*sampling, ""]
        lines += [
            f"Render time of one project (copier, median of {len(self.render_seconds)}): "
            f"{statistics.median(self.render_seconds):.1f} s "
            f"({', '.join(f'{s:.1f}' for s in self.render_seconds)}).",
            suite_line(self.suite),
            "",
            "Checks: "
            + "; ".join(f"{r.variant.label}: {', '.join(r.checks)}" for r in self.results.values() if r.checks)
            + f". All calls by one tenant (`{TENANT}`, one limiter key); limit `{NEVER_REACHED_LIMIT}`, never reached.",
        ]
        if self.profiles is not None:
            lines += ["", "Profile:", "", *profile_section(*self.profiles)]
        return lines

    def all_met(self) -> bool:
        rows, growth = targets(self.results, self.plan)
        return all(row.met for row in rows) and growth.met
