"""Every combination of copier.yml's choices renders cleanly, the same every time, with no dead code.

Every possible combination of the questions with choices but the licence, each with one licence in
turn (tests/answer_space.py: render_matrix; the licence writes only LICENSE and pyproject.toml's
license lines), is rendered in parallel, in the background from the start of the session (see
conftest.matrix_job), and the all-pairs covering set a second time. Each twin must be
byte-identical; every render must keep no Jinja markup, record exactly the answers copier asked,
be ruff-clean, carry no code its answers leave unused (vulture) and already pass the generated
project's own pre-commit hooks, so a user's first commit and first `copier update` start from a
clean tree. A few combinations are also rendered with plain `copier.run_copy` (no fast path): same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from answer_space import (
    FUNCTIONAL,
    SAME_CODE,
    TEXT_ONLY,
    WORDING,
    AnswerSpace,
    AnswerSpaceError,
    asked,
    cast_to_bool,
    choices,
    name_of,
    product,
    read_questions,
)
from conftest import matrix_combinations, pre_commit_home, record_timing
from dead_code import DeadCode, Finding, vulture_cli
from fast_copier import WRITTEN_FOR
from rendering import BackgroundMatrix, render

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
    combos: list[dict[str, str]]  # in the order of names
    seconds: float


@pytest.fixture(scope="session")
def matrix(matrix_job: BackgroundMatrix) -> Matrix:
    names, seconds = matrix_job.result()
    record_timing(
        f"render matrix: {len(names)} combinations, {matrix_job.renders - len(names)} of them twice "
        f"({matrix_job.renders} renders), {matrix_job.workers} processes "
        f"(beside the generated projects when both run), in {seconds:.1f} s"
    )
    return Matrix(matrix_job.first, matrix_job.second, names, matrix_job.combos, seconds)


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
    combos = matrix.combos
    assert combos == matrix_combinations()
    assert matrix.names == [name_of(answers) for answers in combos]
    assert len(set(matrix.names)) == len(combos)
    for question, values in choices().items():
        assert {answers[question] for answers in combos} == set(values), question
    others = [name for name in choices() if name not in TEXT_ONLY]
    rendered = {tuple(answers[name] for name in others) for answers in combos}
    assert rendered == {tuple(answers[name] for name in others) for answers in product(tuple(others))}
    record_timing(
        f"answer space from copier.yml: {len(product())} combinations of {dict(choices())}; "
        f"rendered: {len(combos)}, each with one value of {TEXT_ONLY} in turn"
    )


def test_rendering_twice_gives_identical_bytes(matrix: Matrix) -> None:
    twins = sorted(path.name for path in matrix.second.iterdir())
    assert twins, "the covering set is rendered twice"
    different = [name for name in twins if _tree(matrix.first / name) != _tree(matrix.second / name)]
    assert not different


def _code(project: Path, names: dict[str, str]) -> dict[str, str]:
    """The project's code (src/ and tests/), every name in `names` (a whole word) replaced by its
    counterpart, and what it installs (pyproject.toml's dependencies and uv settings)."""
    code = {}
    for path in sorted(project.glob("src/**/*")) + sorted(project.glob("tests/**/*")):
        if path.is_file():
            text = path.read_text()
            for name, counterpart in names.items():
                text = re.sub(rf"\b{re.escape(name)}\b", counterpart, text)
            code[str(path.relative_to(project))] = text
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    installs = (pyproject["project"]["dependencies"], pyproject.get("dependency-groups"), pyproject["tool"]["uv"])
    code["pyproject.toml"] = repr(installs)
    return code


def test_a_same_code_value_renders_its_twins_code(matrix: Matrix) -> None:
    """SAME_CODE's claim, which lets the covering set pair a value as its twin: in every rendered
    combination, its code is the twin's once the names are swapped (the licence writes no code)."""

    def key(answers: dict[str, str]) -> tuple[str, ...]:
        return tuple(value for name, value in answers.items() if name not in TEXT_ONLY)

    rendered = {key(answers): name for answers, name in zip(matrix.combos, matrix.names, strict=True)}
    for (question, value), (twin, names) in SAME_CODE.items():
        pairs = [
            (name, rendered[key({**answers, question: twin})])
            for answers, name in zip(matrix.combos, matrix.names, strict=True)
            if answers[question] == value
        ]
        assert pairs, f"{question}={value} is rendered"
        different = [
            pair for pair in pairs if _code(matrix.first / pair[0], names) != _code(matrix.first / pair[1], {})
        ]
        assert not different, f"{question}={value} renders other code than {twin}: {different[:3]}"


def test_plain_copier_renders_the_same_bytes(matrix: Matrix, template: Path, tmp_path: Path) -> None:
    """The fast path (tests/fast_copier.py) changes how long copier takes, never what it writes."""
    combos = matrix.combos
    sample = [combos[0], next(a for a in combos if a["transport"] == "stdio"), combos[-1]]
    started = time.perf_counter()
    different = [
        name_of(answers)
        for answers in sample
        if _tree(render(template, tmp_path / name_of(answers), answers, plain=True))
        != _tree(matrix.first / name_of(answers))
    ]
    record_timing(f"plain copier.run_copy: {len(sample)} renders in {time.perf_counter() - started:.1f} s")
    assert not different


def test_functional_and_wording_answers_are_copier_questions() -> None:
    """Every question with choices is declared one or the other (a new one must be placed)."""
    assert set(FUNCTIONAL).isdisjoint(WORDING)
    assert sorted([*FUNCTIONAL, *WORDING]) == sorted(choices())


def test_the_answer_space_follows_copiers_rules(tmp_path: Path) -> None:
    copier_yml = tmp_path / "copier.yml"
    copier_yml.write_text(
        "_subdirectory: template\n"
        "name: {type: str, default: x}\n"
        "mode: {type: str, choices: [a, b], default: b}\n"
        "pair: {type: str, choices: [[First, one], [Second, two]], default: one}\n"
        "labelled: {type: str, choices: {Label A: la, Label B: lb}, default: la, when: \"{{ mode == 'a' }}\"}\n"
        "hidden: {type: str, choices: [h], default: h, when: false}\n"
    )
    space = AnswerSpace(read_questions(copier_yml))
    assert space.choices() == {"mode": ("a", "b"), "pair": ("one", "two"), "labelled": ("la", "lb"), "hidden": ("h",)}
    # `labelled` is asked only in mode a; `hidden` never: a skipped question holds its default.
    assert [(c["mode"], c["labelled"]) for c in space.product(("mode", "labelled", "hidden"))] == [
        ("a", "la"),
        ("a", "lb"),
        ("b", "la"),
    ]
    assert len(space.product()) == 6
    assert space.asked({"mode": "b", "pair": "two", "labelled": "la", "hidden": "h"}) == {"mode": "b", "pair": "two"}
    assert space.asked({"mode": "a", "labelled": "lb"}) == {"mode": "a", "labelled": "lb"}
    assert [cast_to_bool(v) for v in ("False", " no ", "0", "", "None", "true", "1", "x", 0.0)] == [
        *([False] * 5),
        *([True] * 3),
        False,
    ]
    copier_yml.write_text("mode: {type: str, choices: [a, b], default: c}\n")
    with pytest.raises(AnswerSpaceError, match="default 'c' is none of its choices"):
        read_questions(copier_yml)
    copier_yml.write_text("mode: {type: str, choices: [a, b], default: a, when: '{{ name }}'}\n")
    with pytest.raises(AnswerSpaceError, match="mode's `when` uses an answer that is not a question with choices"):
        AnswerSpace(read_questions(copier_yml)).product()


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


def test_copier_asks_exactly_the_answers_the_harness_says(matrix: Matrix) -> None:
    """.copier-answers.yml holds the questions copier asked: per combination, those `asked` keeps."""
    space = choices()
    wrong = []
    for answers in matrix.combos:
        answers_file = matrix.first / name_of(answers) / ".copier-answers.yml"
        recorded = yaml.safe_load(answers_file.read_text()) if answers_file.is_file() else {}
        chosen = {name: value for name, value in recorded.items() if name in space}
        if chosen != asked(answers) or recorded.get("project_name") != "my-server":
            wrong.append(f"{name_of(answers)}: recorded {chosen}")
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
    # What the generated CI's `ruff format --check .` formats: Python, and the Python blocks of Markdown.
    formatted_files = [*python_files, *(path for path in checked_files if path.suffix == ".md")]
    started = time.perf_counter()
    check = _in_batches(["ruff", "check", "--no-cache", "--force-exclude"], python_files, matrix.first)
    fmt = _in_batches(["ruff", "format", "--check", "--no-cache", "--force-exclude"], formatted_files, matrix.first)
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


# --- dead code: what a render's own answers leave unused ------------------------------------


def test_dead_code_verdict_is_vultures_own(matrix: Matrix) -> None:
    """Per-file scans assembled per project report what vulture run on the project reports."""
    project = matrix.first / name_of(matrix.combos[-1])
    assert DeadCode().findings(project) == vulture_cli(project)


def test_renders_carry_no_code_their_answers_leave_unused(matrix: Matrix) -> None:
    started = time.perf_counter()
    dead_code = DeadCode()
    where: dict[Finding, list[str]] = {}
    for name in matrix.names:
        for finding in dead_code.findings(matrix.first / name):
            where.setdefault(finding, []).append(name)
    record_timing(
        f"vulture over {len(matrix.names)} projects ({dead_code.files_scanned} distinct Python files): "
        f"{time.perf_counter() - started:.1f} s"
    )
    assert not where, "dead code (file: finding, in N renders, e.g. ...):\n" + "\n".join(
        f"{path}: {message}, in {len(renders)} renders, e.g. {renders[0]}"
        for (path, message), renders in sorted(where.items())
    )


def test_the_fast_path_is_written_for_the_locked_copier() -> None:
    """A copier bump must bring tests/fast_copier.py along, or every render falls back to plain (~7x slower)."""
    lock = tomllib.loads((Path(__file__).parent.parent / "uv.lock").read_text())
    (locked,) = [package["version"] for package in lock["package"] if package["name"] == "copier"]
    assert locked == WRITTEN_FOR, f"uv.lock has copier {locked}: check fast_copier's patches, then set WRITTEN_FOR"
