"""Generated projects pass their own checks: uv sync, mypy (strict) and their test suite.

Default: an all-pairs covering set of every answer that changes output. With --full-matrix:
also every functional combination (idp x transport x trace_backend x rate_limit_storage).
Redis variants also run their real-Redis tests (`pytest -m redis`).
"""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from allpairs import all_pairs, uncovered_pairs
from conftest import python_for, record_timing, uv_environment
from rendering import CHOICES, FUNCTIONAL, is_possible, name_of, product, render

COVERING = all_pairs(CHOICES, is_possible)
WORKERS = 2


@dataclass(frozen=True)
class Outcome:
    steps: list[tuple[str, int, float, str]]  # (command, exit code, seconds, output tail)
    seconds: float

    @property
    def failures(self) -> list[str]:
        return [f"$ {cmd} -> exit {code}\n{out}" for cmd, code, _, out in self.steps if code != 0]


def _check(project: Path, answers: dict[str, str], mypy_cache: Path) -> Outcome:
    env = uv_environment(python_for(answers.get("python_version", "3.11")))
    commands = [
        ["uv", "sync", "--quiet"],
        ["uv", "run", "--no-sync", "mypy", "--cache-dir", str(mypy_cache)],
        ["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"],
    ]
    if answers["rate_limit_storage"] == "redis":
        commands.append(["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider", "-m", "redis"])
    steps = []
    started = time.perf_counter()
    for command in commands:
        begun = time.perf_counter()
        run = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
        steps.append(
            (" ".join(command), run.returncode, time.perf_counter() - begun, (run.stdout + run.stderr)[-6000:])
        )
        if run.returncode != 0:
            break
    return Outcome(steps, time.perf_counter() - started)


def _run_all(combos: list[dict[str, str]], template: Path, root: Path) -> dict[str, Outcome]:
    caches = {}  # one mypy cache per worker thread: shared caches would race
    lock = threading.Lock()

    def job(answers: dict[str, str]) -> tuple[str, Outcome]:
        with lock:
            cache = caches.setdefault(threading.get_ident(), root / f"mypy-cache-{len(caches)}")
        name = name_of(answers)
        project = render(template, root / name / "my-server", answers)
        outcome = _check(project, answers, cache)
        record_timing(f"  {name}: {outcome.seconds:.1f} s")
        return name, outcome

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = dict(pool.map(job, combos))
    record_timing(f"generated projects: {len(combos)} combinations in {time.perf_counter() - started:.1f} s")
    return results


def test_covering_set_has_every_pair() -> None:
    assert not uncovered_pairs(COVERING, CHOICES, is_possible)
    record_timing(f"all-pairs covering set: {len(COVERING)} of {len(product())} combinations")


@pytest.fixture(scope="session")
def covering_results(
    template: Path, tmp_path_factory: pytest.TempPathFactory, redis_server_available: None
) -> dict[str, Outcome]:
    return _run_all(COVERING, template, tmp_path_factory.mktemp("generated"))


@pytest.mark.parametrize("answers", COVERING, ids=name_of)
def test_generated_project_passes_its_checks(answers: dict[str, str], covering_results: dict[str, Outcome]) -> None:
    outcome = covering_results[name_of(answers)]
    assert not outcome.failures, "\n\n".join(outcome.failures)


FULL = [{"license": "MIT", "python_version": "3.11", **combo} for combo in product(FUNCTIONAL)]


@pytest.fixture(scope="session")
def full_results(
    template: Path, tmp_path_factory: pytest.TempPathFactory, redis_server_available: None
) -> dict[str, Outcome]:
    return _run_all(FULL, template, tmp_path_factory.mktemp("full"))


@pytest.mark.full_matrix
@pytest.mark.parametrize("answers", FULL, ids=name_of)
def test_full_matrix_project_passes_its_checks(answers: dict[str, str], full_results: dict[str, Outcome]) -> None:
    outcome = full_results[name_of(answers)]
    assert not outcome.failures, "\n\n".join(outcome.failures)
