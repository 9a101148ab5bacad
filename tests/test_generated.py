"""Generated projects pass their own checks: uv sync, mypy (strict) and their test suite.

Default: a covering set that runs every answer, and every pair of values of two questions that meet
(answer_space.MEETING: the transport with everything, the trace backend with the Python version and
the rate-limit store, the licence with the Python version); a value that renders another's code but
for its names (answer_space.SAME_CODE: Tempo's preset is Jaeger's) pairs as that one. With --full-matrix:
also every functional combination (idp x transport x trace_backend x rate_limit_storage).
Redis variants also run their real-Redis tests (`pytest -m "redis or not redis"`).

Every project must lock to the tested set (`template/pyproject.toml.jinja`, see
scripts/tested_set.py): a package version outside it fails the project. With --canary the pins
are lifted, so projects resolve the newest releases in range, and the report lists every version
that differs from the tested set: what the next bump brings, and what it breaks.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from answer_space import FUNCTIONAL, asked, choices, defaults, meet, name_of, paired_as, product
from conftest import covering_set, keep_venv, record_timing, uv_environment
from peers.machine import CACHE_ROOT, cache_lock
from rendering import render
from tested_set import differences, lifted, locked_versions, pins

COVERING = covering_set()
WORKERS = 2


@dataclass(frozen=True)
class Outcome:
    steps: list[tuple[str, int, float, str]]  # (command, exit code, seconds, output tail)
    seconds: float
    drift: list[str] = field(default_factory=list)  # resolved versions that are not the tested ones

    @property
    def failures(self) -> list[str]:
        return [f"$ {cmd} -> exit {code}\n{out}" for cmd, code, _, out in self.steps if code != 0]


STEP_TIMEOUT = 900  # seconds for one command (a cold `uv sync` included)


def _commands(answers: dict[str, str], mypy_cache: Path) -> list[list[str]]:
    pytest_command = ["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"]
    if answers["rate_limit_storage"] == "redis":
        # The project's addopts deselect its real-Redis tests (`-m "not redis"`); a later -m wins:
        # one run does the default suite and the Redis tests (one interpreter start, not two).
        pytest_command += ["-m", "redis or not redis"]
    return [
        ["uv", "sync", "--quiet"],
        ["uv", "run", "--no-sync", "mypy", "--cache-dir", str(mypy_cache)],
        pytest_command,
    ]


@dataclass(frozen=True)
class MypyCache:
    """A mypy cache directory kept across runs (mypy checks every entry against the file it was made
    from), used by one mypy at a time across threads and processes (writers would race)."""

    path: Path

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return cache_lock(self.path.with_name(f"{self.path.name}.lock"))


def _check(project: Path, answers: dict[str, str], python: str, mypy_cache: MypyCache, canary: bool) -> Outcome:
    env = uv_environment(python)
    steps: list[tuple[str, int, float, str]] = []
    drift: list[str] = []
    started = time.perf_counter()
    if canary:
        pyproject = project / "pyproject.toml"
        pyproject.write_text(lifted(pyproject.read_text()))
    for command in _commands(answers, mypy_cache.path):
        begun = time.perf_counter()
        try:
            with mypy_cache.lock() if "mypy" in command else contextlib.nullcontext():
                run = subprocess.run(
                    command, cwd=project, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT
                )
            code, output = run.returncode, f"--- stdout\n{run.stdout[-6000:]}\n--- stderr\n{run.stderr[-6000:]}"
        except subprocess.TimeoutExpired as timeout:
            code, output = (
                -1,
                f"timed out after {STEP_TIMEOUT} s\n{_text(timeout.stdout)[-3000:]}{_text(timeout.stderr)[-3000:]}",
            )
        steps.append((" ".join(command), code, time.perf_counter() - begun, output))
        if code == 0 and "sync" in command:
            drift = differences(locked_versions(project / "uv.lock", "my-server"), pins())
            if drift and not canary:
                code = 1
                steps.append(
                    ("tested set", 1, 0.0, "uv.lock resolved versions outside the tested set:\n" + "\n".join(drift))
                )
        if code != 0:
            break
    return Outcome(steps, time.perf_counter() - started, drift)


def _label(command: str) -> str:
    """ "uv run --no-sync pytest -q ..." -> "pytest"."""
    words = command.split()
    return next((word for word in ("sync", "mypy", "pytest", "render", "set") if word in words), command)


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def run_all(
    combos: list[dict[str, str]], template: Path, root: Path, interpreters: dict[str, str], canary: bool = False
) -> dict[str, Outcome]:
    # One mypy cache per combination (and dependency set), kept with the peers: the libraries are
    # checked cold once, not in every run. Not shared between combinations: mypy trusts a cached
    # module whose file has the same path, size and modification second, and two renders made in
    # the same second (src/my_server/auth/providers/__init__.py naming auth0 or entra) once shared
    # a stale entry.
    kind = "newest" if canary else "tested"

    def job(answers: dict[str, str]) -> tuple[str, Outcome]:
        name = name_of(answers)
        started = time.perf_counter()
        try:
            project = render(template, root / name / "my-server", answers)
            keep_venv(project, f"generated-{name}-{kind}", interpreters[answers["python_version"]])
            outcome = _check(
                project,
                answers,
                interpreters[answers["python_version"]],
                MypyCache(CACHE_ROOT / "mypy" / f"{name}-{kind}"),
                canary,
            )
        except Exception:  # a render error fails this combination only
            outcome = Outcome([("render", -1, 0.0, traceback.format_exc()[-6000:])], time.perf_counter() - started)
        summary = ", ".join(f"{_label(cmd)} {seconds:.0f} s" for cmd, _, seconds, _ in outcome.steps)
        record_timing(f"  {name}: {outcome.seconds:.1f} s ({'ok' if not outcome.failures else 'FAILED'}; {summary})")
        return name, outcome

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = dict(pool.map(job, combos))
    failed = sum(1 for outcome in results.values() if outcome.failures)
    record_timing(
        f"generated projects: {len(combos)} combinations, {WORKERS} at a time, "
        f"{failed} failed, in {time.perf_counter() - started:.1f} s"
    )
    if canary:
        drift = sorted({line for outcome in results.values() for line in outcome.drift})
        record_timing(
            f"canary (newest releases, pins lifted): {len(combos) - failed} of {len(combos)} projects pass; "
            + (
                f"{len(drift)} versions differ from the tested set:"
                if drift
                else "no version differs from the tested set"
            )
        )
        for line in drift:
            record_timing(f"  {line}")
    return results


def _holding(pair: dict[str, str], combos: list[dict[str, str]]) -> bool:
    """Whether some combination asks both questions of `pair` with its values, as far as pairs go."""
    return any(paired_as(asked(combo)).items() >= pair.items() for combo in combos)


def test_covering_set_has_every_pair() -> None:
    """Checked pair by pair, independently of the greedy algorithm's own bookkeeping."""
    everything = product()
    assert all(combo in everything for combo in COVERING), "only possible combinations"
    assert covering_set() == COVERING, "deterministic"
    space = choices()
    untested = [f"{name}={value}" for name in space for value in space[name] if all(c[name] != value for c in COVERING)]
    assert not untested, "every answer runs in some generated project"
    missing = []
    for first, second in itertools.combinations(space, 2):
        if not meet(first, second):
            continue
        for a, b in itertools.product(space[first], space[second]):
            # A pair is needed when some render asks both questions with these values
            # (so idp pairs count only for http/both; stdio renders never ask idp); a value that
            # renders another's code (SAME_CODE) counts as that value.
            pair = {first: a, second: b}
            if _holding(pair, everything) and not _holding(pair, COVERING):
                missing.append(f"{first}={a} with {second}={b}")
    assert not missing
    assert any(combo["transport"] == "stdio" for combo in COVERING)
    record_timing(f"all-pairs covering set: {len(COVERING)} of {len(everything)} combinations")


@pytest.fixture(scope="session")
def covering_results(covering_job: Future[dict[str, Outcome]]) -> dict[str, Outcome]:
    return covering_job.result()


@pytest.mark.parametrize("answers", COVERING, ids=name_of)
def test_generated_project_passes_its_checks(answers: dict[str, str], covering_results: dict[str, Outcome]) -> None:
    outcome = covering_results[name_of(answers)]
    drift = "\n".join(["", "versions that differ from the tested set:", *outcome.drift] if outcome.drift else [])
    assert not outcome.failures, "\n\n".join(outcome.failures) + drift


FULL = [{**defaults(), **combo} for combo in product(FUNCTIONAL)]


def test_full_matrix_is_the_functional_product() -> None:
    """Every possible combination of the functional answers once, the others at their defaults."""
    functional = {tuple(combo[name] for name in FUNCTIONAL) for combo in product()}
    assert sorted(tuple(combo[name] for name in FUNCTIONAL) for combo in FULL) == sorted(functional)
    assert all(combo.items() >= {k: v for k, v in defaults().items() if k not in FUNCTIONAL}.items() for combo in FULL)
    record_timing(f"full matrix: {len(FULL)} functional combinations")


@pytest.fixture(scope="session")
def full_results(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    interpreters: dict[str, str],
    redis_server_available: None,
) -> dict[str, Outcome]:
    return run_all(FULL, template, tmp_path_factory.mktemp("full"), interpreters)


@pytest.mark.full_matrix
@pytest.mark.parametrize("answers", FULL, ids=name_of)
def test_full_matrix_project_passes_its_checks(answers: dict[str, str], full_results: dict[str, Outcome]) -> None:
    outcome = full_results[name_of(answers)]
    assert not outcome.failures, "\n\n".join(outcome.failures)
