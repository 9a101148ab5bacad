"""Shared fixtures for the template's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rendering import template_copy


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-matrix",
        action="store_true",
        help="also run mypy and the generated tests on every functional combination (slow)",
    )


TIMINGS: list[str] = []


def record_timing(line: str) -> None:
    """A wall-time figure to print in the test summary (captured output would hide it)."""
    TIMINGS.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("wall times")
        for line in TIMINGS:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "full_matrix: runs only with --full-matrix")


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


def python_for(version: str) -> str:
    """An interpreter for `version`, found without downloading one."""
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}")),
    ]
    for candidate in candidates:
        if candidate and subprocess.run([str(candidate), "-V"], capture_output=True).returncode == 0:
            return str(candidate)
    raise RuntimeError(f"no Python {version} interpreter found: install one (e.g. `uv python install {version}`)")


def uv_environment(python: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env.update({"UV_PYTHON": python, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})
    return env


@pytest.fixture(scope="session")
def redis_server_available() -> Iterator[None]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required: apt-get install redis-server (scripts/test installs it)")
    yield
