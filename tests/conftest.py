"""Shared fixtures for the template's own tests."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from allpairs import all_pairs
from answer_space import asked, choices, is_possible, meet, paired_as, render_matrix
from fast_copier import NOTICE
from peers.machine import CACHE_ROOT
from rendering import BackgroundMatrix, template_copy

if TYPE_CHECKING:
    from test_generated import Outcome

    from jaeger_stack import JaegerStack
    from shipped import Render


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-matrix",
        action="store_true",
        help="also run mypy and the generated tests on every functional combination (slow)",
    )
    parser.addoption(
        "--canary",
        action="store_true",
        help="generated projects resolve the newest releases (the tested set lifted) and report what differs",
    )


TIMINGS: list[str] = []
_CONFIG: list[pytest.Config] = []
_PROGRESS_LOCK = threading.Lock()


def record_timing(line: str) -> None:
    """A wall-time figure: shown at once (the run is long) and again in the closing summary."""
    with _PROGRESS_LOCK:
        TIMINGS.append(line)
        if not _CONFIG:
            return
        capture = _CONFIG[0].pluginmanager.getplugin("capturemanager")
        reporter = _CONFIG[0].pluginmanager.getplugin("terminalreporter")
        if capture is None or reporter is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[timing] {line}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("wall times")
        for line in TIMINGS:
            terminalreporter.write_line(line)


def pytest_report_header(config: pytest.Config) -> str:
    return NOTICE


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "full_matrix: runs only with --full-matrix")
    _CONFIG[:] = [config]


def pytest_unconfigure(config: pytest.Config) -> None:
    _CONFIG.clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --full-matrix the full-matrix tests are deselected (not skipped: they did not run)."""
    if config.getoption("--full-matrix"):
        return
    selected = [item for item in items if item.get_closest_marker("full_matrix") is None]
    if len(selected) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in selected])
        items[:] = selected


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a plain folder (the working tree, uncommitted changes included)."""
    return template_copy(tmp_path_factory.mktemp("template"))


def covering_set() -> list[dict[str, str]]:
    """Possible combinations that hold every asked answer value, and every pair of asked answer values
    of questions that meet (answer_space.MEETING), a SAME_CODE value paired as its twin (see allpairs.py)."""
    return all_pairs(choices(), is_possible, asked, meet, paired_as)


def matrix_combinations() -> list[dict[str, str]]:
    """What the render matrix renders: answer_space.render_matrix(), then the covering set's
    combinations it lacks (a licence other than the one given in turn), so all of them render twice."""
    combos = render_matrix()
    return combos + [answers for answers in covering_set() if answers not in combos]


@pytest.fixture(scope="session")
def matrix_job(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundMatrix]:
    """The render matrix, rendering in the background: every combination of matrix_combinations()
    once, and the all-pairs covering set a second time (the determinism check)."""
    first, second = tmp_path_factory.mktemp("matrix-a"), tmp_path_factory.mktemp("matrix-b")
    workers = max(2, os.cpu_count() or 2)
    job = BackgroundMatrix(template, first, second, matrix_combinations(), covering_set(), workers=workers)
    yield job
    job.cancel()


@pytest.fixture(scope="session", autouse=True)
def _start_the_render_matrix_early(request: pytest.FixtureRequest) -> None:
    """Start rendering before the first test when any selected test needs the matrix."""
    if any("matrix" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("matrix_job")


@pytest.fixture(scope="session")
def covering_job(
    request: pytest.FixtureRequest,
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    interpreters: dict[str, str],
    redis_server_available: None,
) -> Iterator[Future[dict[str, Outcome]]]:
    """The covering set's generated projects, checked in a background thread from the session's
    start: the render matrix's tests run meanwhile, instead of after them on one core."""
    from test_generated import COVERING, run_all  # imported here: it imports this module

    canary = bool(request.config.getoption("--canary"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(run_all, COVERING, template, tmp_path_factory.mktemp("generated"), interpreters, canary)


@pytest.fixture(scope="session", autouse=True)
def _start_the_generated_projects_early(request: pytest.FixtureRequest) -> None:
    if any("covering_results" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("covering_job")


@pytest.fixture(scope="session")
def jaeger_stack(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerStack]:
    """A real Jaeger, the projects that send it spans and a two-minute steady state, made ready in a
    background thread (tests/jaeger_stack.py); the tests wait for the stage they need."""
    from jaeger_stack import JaegerStack  # imported here: it imports this module

    stack = JaegerStack(template, tmp_path_factory.mktemp("jaeger-stack"))
    stack.start()
    yield stack
    stack.close()
    for line in stack.timings:
        record_timing(line)


@pytest.fixture(scope="session", autouse=True)
def _start_the_jaeger_stack_early(request: pytest.FixtureRequest) -> None:
    """Start the Jaeger stack before the first test when any selected test needs it: its steady
    state runs for two minutes beside the other tests instead of after them."""
    if any("jaeger_stack" in getattr(item, "fixturenames", ()) for item in request.session.items):
        with contextlib.suppress(Exception):  # pytest keeps the error for the tests that use the stack
            request.getfixturevalue("jaeger_stack")


class MissingInterpreter(RuntimeError):
    pass


@functools.cache
def python_for(version: str) -> str:
    """The real executable of a Python `version` (never a pyenv shim: uv cannot use those).

    Looks at ~/.pyenv/versions/<version>*/bin/python<version>, then `python<version>` on PATH;
    each candidate must run and report that version. Nothing is downloaded.
    """
    candidates: list[str] = [
        *(str(path) for path in sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))),
        *(path for path in [shutil.which(f"python{version}")] if path),
    ]
    probe = "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}'); print(sys.executable)"
    for candidate in candidates:
        try:
            run = subprocess.run([candidate, "-c", probe], capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        lines = run.stdout.split()
        if run.returncode == 0 and len(lines) == 2 and lines[0] == version and Path(lines[1]).is_file():
            return lines[1]
    raise MissingInterpreter(
        f"Python {version} is required (python_version={version!r} renders are tested) but no working "
        f"interpreter was found; looked for ~/.pyenv/versions/{version}*/bin/python{version} and "
        f"python{version} on PATH (tried: {candidates or 'none'}). Install Python {version}; uv downloads are off."
    )


@pytest.fixture(scope="session")
def interpreters() -> dict[str, str]:
    """An interpreter for every python_version choice, or a loud failure naming the missing ones."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for version in choices()["python_version"]:
        try:
            found[version] = python_for(version)
        except MissingInterpreter as error:
            missing.append(str(error))
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)
    return found


def uv_environment(python: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    # Let each project's venv keep the bytecode it compiles: its tests start Python many times
    # (pytest, stdio servers, replicas), and without .pyc files each start recompiles every import.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({"UV_PYTHON": python, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})
    return env


# Locks on kept virtual environments, held until this process exits.
_KEPT_VENV_LOCKS: list[IO[str]] = []


def keep_venv(project: Path, name: str, python: str) -> None:
    """Make `project/.venv` a link to the virtual environment kept for `name` with the peers, unless
    another process uses it (then the project makes its own, as without this). `uv sync` makes the
    kept one match the project's lock exactly; kept, its libraries keep the bytecode their first
    import compiled: about 4 CPU s of the first imports of every project otherwise. Link it after the
    last git command on the project: `.venv/` in a .gitignore ignores a directory, not a link."""
    venv = CACHE_ROOT / "venvs" / name
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock = venv.with_name(f"{name}.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return
    _KEPT_VENV_LOCKS.append(lock)
    config = venv / "pyvenv.cfg"
    if not (config.is_file() and "relocatable = true" in config.read_text()):
        # Relocatable: its scripts find their interpreter beside themselves, not through the link
        # of the project that first synced it (gone in the next run).
        command = ["uv", "venv", "--quiet", "--clear", "--relocatable", "--python", python, str(venv)]
        subprocess.run(command, env=uv_environment(python), check=True, capture_output=True, timeout=120)
    (project / ".venv").symlink_to(venv, target_is_directory=True)


def pre_commit_home() -> str:
    """Where pre-commit keeps its hook environments: shared across runs (and with the user's own)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pre-commit"
    return os.environ.get("PRE_COMMIT_HOME") or str(default)


@pytest.fixture(scope="session")
def renders(template: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Render]:
    """Every functional combination of answers, rendered once per session, for tests/test_ship_*.py."""
    from shipped import render_all  # imported here: shipped imports this module

    return render_all(template, tmp_path_factory)


@pytest.fixture(scope="session")
def redis_server_available() -> Iterator[None]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required: apt-get install redis-server (scripts/test installs it)")
    yield
