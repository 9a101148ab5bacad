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


def distinct_files(root: Path, names: list[str]) -> list[Path]:
    """One render's copy of each distinct file, for checks that depend only on the file and its config.

    Most files are byte-identical across many combinations. A hook that reads one file (whitespace,
    end of file, YAML, TOML, private keys) gives the same verdict on every copy, and ruff's verdict
    on a Python file also depends on the project's pyproject.toml (target version), so Python files
    count as distinct per pyproject.toml. Each copy checked stays in its own render, next to its
    configuration. Returns paths relative to `root`, in a stable order.
    """
    chosen: dict[tuple[str, str, str], Path] = {}
    for name in names:
        project = root / name
        config = hashlib.sha256((project / "pyproject.toml").read_bytes()).hexdigest()
        for path in sorted(project.rglob("*")):
            if not path.is_file() or ".git" in path.parts:
                continue
            relative = str(path.relative_to(project))
            content = hashlib.sha256(path.read_bytes()).hexdigest()
            key = (relative, content, config if path.suffix in (".py", ".pyi") else "")
            chosen.setdefault(key, path.relative_to(root))
    return sorted(chosen.values())


@pytest.fixture(scope="session")
def checked_files(matrix: Matrix) -> list[Path]:
    files = distinct_files(matrix.first, matrix.names)
    total = sum(1 for name in matrix.names for path in (matrix.first / name).rglob("*") if path.is_file())
    record_timing(f"distinct files over {len(matrix.names)} projects: {len(files)} of {total}")
    return files


def test_distinct_files_keep_one_copy_per_content_and_config(tmp_path: Path) -> None:
    for name, python in (("a", "py311"), ("b", "py311"), ("c", "py312")):
        (tmp_path / name / "src").mkdir(parents=True)
        (tmp_path / name / "pyproject.toml").write_text(f"[tool.ruff]\ntarget-version = '{python}'\n")
        (tmp_path / name / "src" / "app.py").write_text("x = 1\n")
        (tmp_path / name / "README.md").write_text("same\n" if name != "b" else "other\n")
    files = {str(path) for path in distinct_files(tmp_path, ["a", "b", "c"])}
    # b's pyproject.toml is a's; c's app.py is the same code under another target version; c's README is a's.
    assert files == {
        "a/pyproject.toml",
        "c/pyproject.toml",
        "a/src/app.py",
        "c/src/app.py",
        "a/README.md",
        "b/README.md",
    }


def _in_batches(command: list[str], files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`command` over `files`, a few thousand paths per run; the first failing run is returned."""
    run = subprocess.CompletedProcess(command, 0, "", "")
    for start in range(0, len(files), 2000):
        batch = [str(path) for path in files[start : start + 2000]]
        run = subprocess.run([*command, *batch], cwd=cwd, capture_output=True, text=True)
        if run.returncode != 0:
            break
    return run


def test_ruff_check_and_format_are_clean(matrix: Matrix, checked_files: list[Path]) -> None:
    python_files = [path for path in checked_files if path.suffix in (".py", ".pyi")]
    started = time.perf_counter()
    check = _in_batches(["ruff", "check", "--no-cache", "--force-exclude"], python_files, matrix.first)
    fmt = _in_batches(["ruff", "format", "--check", "--no-cache", "--force-exclude"], python_files, matrix.first)
    record_timing(
        f"ruff over {len(matrix.names)} projects ({len(python_files)} distinct Python files): "
        f"{time.perf_counter() - started:.1f} s"
    )
    assert check.returncode == 0, (check.stdout + check.stderr)[-5000:]
    assert fmt.returncode == 0, (fmt.stdout + fmt.stderr)[-5000:]


def test_fresh_renders_pass_their_own_pre_commit_hooks_unmodified(matrix: Matrix, checked_files: list[Path]) -> None:
    configs = {(matrix.first / name / ".pre-commit-config.yaml").read_bytes() for name in matrix.names}
    assert len(configs) == 1, "one hook configuration for every combination"
    config = matrix.first / matrix.names[0] / ".pre-commit-config.yaml"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=matrix.first, check=True)
    # `run --all-files` runs over what git tracks: the distinct files.
    added = _in_batches([*git, "add", "--"], checked_files, matrix.first)
    assert added.returncode == 0, added.stderr
    started = time.perf_counter()
    # mypy needs each project's environment; it runs per project in test_generated.py.
    hooks = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--config", str(config)],
        cwd=matrix.first,
        capture_output=True,
        text=True,
        env={**os.environ, "SKIP": "mypy", "PRE_COMMIT_HOME": pre_commit_home()},
    )
    record_timing(
        f"pre-commit over {len(matrix.names)} projects ({len(checked_files)} distinct files): "
        f"{time.perf_counter() - started:.1f} s"
    )
    assert hooks.returncode == 0, (hooks.stdout + hooks.stderr)[-5000:]
    unchanged = subprocess.run(
        ["git", "diff", "--exit-code", "--stat"], cwd=matrix.first, capture_output=True, text=True
    )
    assert unchanged.returncode == 0, unchanged.stdout
