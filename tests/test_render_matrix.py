"""Every combination of the answers that change output renders cleanly, twice the same.

The full cartesian product (972 combinations) is rendered twice in parallel, in the background
from the start of the session (see conftest.matrix_job). Each render
must be byte-identical to its twin, keep no Jinja markup, record its answers, be ruff-clean
and already pass the generated project's own pre-commit hooks, so a user's first commit and
first `copier update` start from a clean tree.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import pre_commit_home, record_timing
from rendering import BackgroundMatrix, asked, name_of, product

# Jinja delimiters. An opening one never belongs in a render; "}}" does in nested literals
# ({"params": {}}), so in contents it counts as leftover only where braces don't balance
# (e.g. a typo like "{ package }}", which Jinja leaves as text).
JINJA_IN_NAMES = re.compile(r"\{\{|\}\}|\{%|%\}")
JINJA_OPENERS = re.compile(r"\{\{|\{%|%\}")


def leftover_jinja(text: str) -> bool:
    return bool(JINJA_OPENERS.search(text)) or ("}}" in text and text.count("{") != text.count("}"))


@dataclass(frozen=True)
class Matrix:
    first: Path
    second: Path
    names: list[str]
    seconds: float


@pytest.fixture(scope="session")
def matrix(matrix_job: BackgroundMatrix) -> Matrix:
    names, seconds = matrix_job.result()
    record_timing(
        f"render matrix: {len(names)} combinations x 2 renders, {matrix_job.workers} niced processes "
        f"(overlapping the generated projects when both run), in {seconds:.1f} s"
    )
    return Matrix(matrix_job.first, matrix_job.second, names, seconds)


def _tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under `root` with its mode and, for files, a hash of its bytes."""
    return {
        str(path.relative_to(root)): (
            path.stat().st_mode,
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "",
        )
        for path in sorted(root.rglob("*"))
    }


def test_matrix_covers_every_value_of_every_question(matrix: Matrix) -> None:
    assert len(matrix.names) == len(set(matrix.names)) == 972


def test_rendering_twice_gives_identical_bytes(matrix: Matrix) -> None:
    different = [name for name in matrix.names if _tree(matrix.first / name) != _tree(matrix.second / name)]
    assert not different


def test_no_jinja_survives_in_names_or_contents(matrix: Matrix) -> None:
    leftovers = [
        str(path.relative_to(matrix.first))
        for path in matrix.first.rglob("*")
        if ".git" not in path.parts
        and (
            JINJA_IN_NAMES.search(path.name)
            or (path.is_file() and leftover_jinja(path.read_bytes().decode(errors="replace")))
        )
    ]
    assert not leftovers, leftovers[:50]


def test_leftover_jinja_detection() -> None:
    assert leftover_jinja("x = {{ package }}") and leftover_jinja("{% if x %}") and leftover_jinja("{ package }}")
    assert not leftover_jinja('call = {"params": {"name": "whoami", "arguments": {}}}')


def test_answers_are_recorded(matrix: Matrix) -> None:
    wrong = []
    for answers in product():
        answers_file = matrix.first / name_of(answers) / ".copier-answers.yml"
        recorded = yaml.safe_load(answers_file.read_text()) if answers_file.is_file() else {}
        expected = {"project_name": "my-server", **asked(answers)}
        if not expected.items() <= recorded.items() or ("idp" in recorded) != ("idp" in expected):
            wrong.append(name_of(answers))
    assert not wrong, wrong[:20]


def test_ruff_check_and_format_are_clean(matrix: Matrix) -> None:
    started = time.perf_counter()
    check = subprocess.run(["ruff", "check", "--no-cache", "."], cwd=matrix.first, capture_output=True, text=True)
    fmt = subprocess.run(
        ["ruff", "format", "--check", "--no-cache", "."], cwd=matrix.first, capture_output=True, text=True
    )
    record_timing(f"ruff over {len(matrix.names)} projects: {time.perf_counter() - started:.1f} s")
    assert check.returncode == 0, (check.stdout + check.stderr)[-5000:]
    assert fmt.returncode == 0, (fmt.stdout + fmt.stderr)[-5000:]


def test_fresh_renders_pass_their_own_pre_commit_hooks_unmodified(matrix: Matrix) -> None:
    configs = {(matrix.first / name / ".pre-commit-config.yaml").read_bytes() for name in matrix.names}
    assert len(configs) == 1, "one hook configuration for every combination"
    config = matrix.first / matrix.names[0] / ".pre-commit-config.yaml"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=matrix.first, check=True)
    subprocess.run([*git, "add", "-A"], cwd=matrix.first, check=True)
    started = time.perf_counter()
    # mypy needs each project's environment; it runs per project in test_generated.py.
    hooks = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--config", str(config)],
        cwd=matrix.first,
        capture_output=True,
        text=True,
        env={**os.environ, "SKIP": "mypy", "PRE_COMMIT_HOME": pre_commit_home()},
    )
    record_timing(f"pre-commit over {len(matrix.names)} projects: {time.perf_counter() - started:.1f} s")
    assert hooks.returncode == 0, (hooks.stdout + hooks.stderr)[-5000:]
    unchanged = subprocess.run(
        ["git", "diff", "--exit-code", "--stat"], cwd=matrix.first, capture_output=True, text=True
    )
    assert unchanged.returncode == 0, unchanged.stdout
