"""docs/benchmarks.md: the bench rewrites only the block between its markers; the prose around it stays."""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- bench:begin: written by ./bench/run, replaced on every run -->"
END = "<!-- bench:end -->"

SKELETON = f"""# Benchmarks: what the production stack costs over bare FastMCP

`./bench/run` measures the generated server, built up layer by layer, against bare FastMCP
serving the same tool, side by side in one run on one machine, and checks the targets below.

| target (full stack vs bare FastMCP, same run) | |
|---|---|
| median tool-call latency | ≤ 1.15x |
| throughput at concurrency 8 | ≥ 0.85x |
| cold start (process start to first `tools/list`) | ≤ 1.3x |
| RSS after 10,000 calls | ≤ 1.2x, and no growth from 1,000 to 10,000 calls |

## Latest run

{BEGIN}
{END}

## Findings

(Written by hand from the latest run and its profile; the bench leaves this section alone.)

## What is measured, and how

- **One render.** The bench renders this template once with the default answers plus
  `trace_backend=otlp` and `rate_limit_storage=redis` (package `bench_server`), so every variant
  below comes from the same code: the layers are switched when a server starts, not by rendering
  again. Copier renders the working tree, uncommitted changes included; the run names the commit.
- **Bare FastMCP** (`bench/workers/bare_server.py`): `FastMCP` with the same `search_notes`
  tool, data and search, stateless HTTP, no auth, limits, tracing or audit log.
- **The generated server** (`bench/workers/variant_server.py`) does what `bench-server serve` does:
  JSON logging (the audit line of every call goes to a log file), `configure_tracing(settings)` when
  traced, `build_server(settings)`, `mcp.run(transport="http", ..., **http_options(settings))`.
  Always on: RS256 JWT verification in dev mode (key loaded once, no JWKS fetch), the Host/Origin
  guard, `PrincipalResolver` (the caller, once per request), `AccessControl` (per-tool scopes) and
  `CallAudit` (audit line, span attributes, metrics).
  - *auth only*: the `RateLimiter` instance is removed from `mcp.middleware`;
  - *+ memory limit* / *+ Redis limit*: the limiter on `memory://` (the bounded in-process store)
    or on a local `redis-server` (each Redis variant in its own database);
  - *+ tracing*: the OpenTelemetry SDK with its batch span processor and periodic metric reader,
    exporting OTLP/HTTP to `bench/workers/otlp_receiver.py`, a separate process on loopback that
    answers 200 and counts the spans (the run checks at least one span arrived per traced call).
    Untraced variants also drop the ASGI OpenTelemetry middleware from `http_options`, as a
    `trace_backend=none` render has none;
  - *full stack*: auth + Redis limit + tracing.
- **One tenant, one key.** Every call carries the same dev token (tenant `acme`, scope
  `data:read`), so the limiter counts one tenant x tool key; its limit, `100000000/hour`, is never
  reached: the limiter's cost is measured, not its refusals. `<PACKAGE>_PUBLIC_URL=http://127.0.0.1`
  (no port) lets one token (`iss`, `aud`) serve every server start on any free port; the Host guard
  compares host names only.
- **Load** (`bench/workers/loadgen.py`, one process apart from the servers): `fastmcp.Client` over
  streamable HTTP, N clients each with its own session; each phase opens fresh clients, lists the
  tools once per session (untimed), then the clients share a fixed number of
  `tools/call search_notes`. Latency is the client's wall time of `call_tool`; throughput is calls
  over the phase's wall time. All six servers run at once (an idle server uses no CPU) and each
  concurrency level is split into two rounds with the servers interleaved, forwards then backwards,
  so a drift in machine load hits every server alike.
- **The CPU is shared.** On 2 cores the load generator (itself a Python process spending several
  ms of CPU per call), the server, Redis and the receiver compete. From concurrency 8 on, throughput
  is bounded by client + server CPU together, and latency is mostly queueing (about concurrency /
  throughput). So ratios understate the server's own cost at high concurrency; the server's CPU per
  call (from `/proc/PID/stat`) is the cleanest measure of it. "Other load" is the machine's busy CPU
  minus every bench process while that server was measured: anything above ~0.1 core is someone
  else's work and makes the figures noisier.
- **Cold start**: from spawning the process to the first `tools/list` (raw HTTP, every 5 ms, with
  the token where needed) that lists `search_notes`: interpreter start, imports, settings, tracing
  setup, `build_server`, uvicorn start-up. Median of 5 per variant, variants in round-robin.
- **RSS**: `VmRSS` of the server after its 1,000th and 10,000th call. The warm-up runs at the
  highest concurrency (32 sessions) first, so the reading after 1,000 calls already holds that
  high-water mark; "no growth" allows 1 MiB of allocator noise.
- **Profile** (when a target is missed, or `--profile always`): py-spy 0.4.3 from PyPI samples the
  full-stack and the bare server (all threads, idle excluded, 250 Hz, `--nonblocking`) over 3,000
  calls at concurrency 8 each. Samples are grouped by the library of the innermost frame (where the
  CPU goes) and by the innermost frame of ours, FastMCP or the MCP SDK (who asked for the work).
- **Render time**: `copier copy` of one project, median of 3 after an untimed one that installs
  copier into uv's cache. **Matrix**: with `--with-matrix`, the wall time of
  `./scripts/test tests/test_generated.py tests/test_render_matrix.py`: all 972 combinations
  rendered twice and checked (bytes, Jinja, answers, ruff, pre-commit) and the 31 all-pairs
  projects through `uv sync`, mypy and their own suites, recorded in `bench/matrix-time.json`;
  without the flag the last recorded figure is shown and labelled so. The rest of `./scripts/test`
  (Keycloak, the IdP flows, the MCP Inspector, shipping files, `copier update`) is not the matrix.

## How to reproduce

```bash
./bench/run                      # about 14 minutes on 2 cores; prints the tables, rewrites the block above
./bench/run --wait-idle 20       # on a shared machine: first wait up to 20 min for other work to finish
./bench/run --with-matrix        # also time the render-and-test matrix (renders + generated projects, minutes)
./bench/run --help               # calls per level, rounds, cold starts, profiling, template, output
```

Needs uv (installed if missing, as `scripts/test` does), a Python 3.11+ on the machine and
`redis-server` (installed with `apt-get` when running as root, else the bench says so and stops).
Every process listens on 127.0.0.1 on ports picked at run time; all of them are stopped when the
bench ends or is interrupted. `--keep DIR` keeps the render, server logs, load plans and profiles.
"""


def write(path: Path, lines: list[str]) -> None:
    """Put `lines` between the markers of `path` (created from the skeleton if missing)."""
    text = path.read_text() if path.exists() else SKELETON
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has lost its bench markers; restore them ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)
