"""`copier update` from an older template release to the current one.

A temporary git repository holds the template twice: `v0.0.1`, an older revision crafted from the
working tree (the image ran as root, docs/updating.md's first paragraph read differently, there was
no template-update workflow), and `v0.1.0`, the working tree itself. Projects rendered from
`v0.0.1` are then updated, as a user would, without --trust:

- with local edits: the template's fix and new file arrive, the user's tool and README edits (user-owned
  files) survive, the answers survive, and a line both sides changed shows
  inline conflict markers instead of being overwritten; `--pretend` writes nothing;
- without local edits: the updated project equals a fresh copy of `v0.1.0` byte for byte, for
  several answer combinations;
- a security fix in the tested dependency set: `v0.0.1` pins an older pygments, and after
  `copier update` and `uv lock` the project resolves the fixed one, keeps its edits and passes
  its tests;
- a project that made the tools its own (the samples and their tests deleted; two tools of
  its own, written against the toolkit with tests written as docs/tools.md shows, from
  tests/update_fixtures/; README rewritten): the update merges with no conflict and changes only
  what the template changed, the user's files stay byte for byte, the samples stay deleted, and
  the project's suite passes with the user's tests in it and only the user's tools registered.

A second repository holds the real release 0.2.0 (`v0.2.0`, commit a4a433a) and the working tree
(`v0.3.0`), and 0.2.0 projects take UPGRADING.md's 0.3.0 steps:

- unedited: no conflict, the old tests/test_*.py go, tests/server/ and docs/ arrive, the 0.2.0
  tools (tools/__init__.py with TOOL_FUNCTIONS included) and README stay byte for byte, the suite
  passes with the samples' tests copied from a fresh render, and the samples are served;
- with a tool added the 0.2.0 way (internal imports, listed in TOOL_FUNCTIONS): no conflict, the
  tool is served and `observe` warns; after UPGRADING's sed (read from UPGRADING.md) and an
  emptied tools/__init__.py, nothing warns and the same tools are served.

Copier runs with its Jinja compiles, config and per-render context memoized (fast_copier.memoized(),
git untouched): the same bytes, a quarter of the CPU.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy, run_update

from conftest import keep_venv, python_for, record_timing, uv_environment
from fast_copier import memoized
from rendering import process_pool, template_copy
from tested_set import differences, locked_versions, pins

REPO = Path(__file__).resolve().parent.parent
OLD, NEW = "v0.0.1", "v0.1.0"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}

# What the older revision looked like: (file under template/, current text, text in v0.0.1).
# Each anchor must exist in the working tree; if one moved, update it here.
NON_ROOT_USER = "USER 10001:10001\n"
DOCS_NEW = "This project follows its Copier template: `copier update` brings the template's fixes (security"
DOCS_OLD = "This project was generated from a Copier template: `copier update` brings its fixes (security"
DOCS_MINE = "This project was generated from our fork of the template: `copier update` brings its fixes (security"
# A dependency fix the update must deliver: v0.0.1's tested set pins an older pygments (any older
# release the rest of the set still accepts serves; if a bump raises a floor above it, pick a newer one).
FIXED_PACKAGE, VULNERABLE = "pygments", "2.17.2"
(FIXED,) = pins()[FIXED_PACKAGE]
OLD_REVISION = [
    ("Dockerfile.jinja", NON_ROOT_USER, ""),  # the fix the update must deliver: a non-root image
    ("docs/updating.md.jinja", DOCS_NEW, DOCS_OLD),  # a line the user also changes: a genuine conflict
    ("pyproject.toml.jinja", f'"{FIXED_PACKAGE}=={FIXED}",\n', f'"{FIXED_PACKAGE}=={VULNERABLE}",\n'),
]
ADDED_IN_NEW = ".github/workflows/template-update.yml.jinja"


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """git in `cwd`; with check=False a non-zero exit (e.g. `git grep` finding nothing) is not a failure."""
    run = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 or not check, f"git {' '.join(args)}: {run.stdout}{run.stderr}"
    return run.stdout


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)


def init_repo(cwd: Path) -> None:
    git(cwd, "init", "-q")
    git(cwd, "config", "user.name", GIT_IDENTITY["GIT_AUTHOR_NAME"])
    git(cwd, "config", "user.email", GIT_IDENTITY["GIT_AUTHOR_EMAIL"])


def tagged_repo(repo: Path, releases: Mapping[str, Path]) -> Path:
    """A git repository in `repo` with one commit per release, in order, tagged with its name and
    holding exactly that release's tree (copier.yml at the top, the template under template/)."""
    init_repo(repo)
    for tag, tree in releases.items():
        for entry in repo.iterdir():
            if entry.name == ".git":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        shutil.copytree(tree, repo, symlinks=True, dirs_exist_ok=True)
        commit_all(repo, f"template {tag}")
        git(repo, "tag", tag)
    return repo


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a git repository with two tagged releases: OLD crafted from the working tree, NEW it."""
    old = template_copy(tmp_path_factory.mktemp("template-old"))
    for relative, anchor, before in OLD_REVISION:
        path = old / "template" / relative
        text = path.read_text()
        assert text.count(anchor) == 1, f"{relative}: the old-revision anchor {anchor!r} moved; update test_update.py"
        path.write_text(text.replace(anchor, before))
    (old / "template" / ADDED_IN_NEW).unlink()
    new = template_copy(tmp_path_factory.mktemp("template-new"))
    return tagged_repo(tmp_path_factory.mktemp("template-repo"), {OLD: old, NEW: new})


def copy_project(template: Path, destination: Path, answers: Mapping[str, str], vcs_ref: str) -> Path:
    with memoized():
        run_copy(
            str(template),
            str(destination),
            data={"project_name": "my-server", **answers},
            vcs_ref=vcs_ref,
            defaults=True,
            unsafe=False,
            quiet=True,
        )
    return destination


def project_at_old_release(template: Path, destination: Path, answers: Mapping[str, str], release: str = OLD) -> Path:
    """What a user has: a render of an older release, committed."""
    copy_project(template, destination, answers, release)
    init_repo(destination)
    commit_all(destination, "generated from the template")
    return destination


def update(project: Path, *, pretend: bool = False) -> None:
    """`copier update --defaults --conflict inline` (no --trust), to the newest tag."""
    with memoized():
        run_update(
            str(project), defaults=True, overwrite=True, conflict="inline", unsafe=False, quiet=True, pretend=pretend
        )


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file but .git: mode and content hash."""
    return {
        path.relative_to(root).as_posix(): (path.stat().st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def answers_of(project: Path) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return loaded


def test_the_old_release_lacks_what_the_update_must_deliver(template_repo: Path, tmp_path: Path) -> None:
    project = copy_project(template_repo, tmp_path / "p", {}, OLD)
    assert NON_ROOT_USER not in (project / "Dockerfile").read_text()
    assert DOCS_OLD in (project / "docs/updating.md").read_text()
    assert not (project / ".github/workflows/template-update.yml").exists()
    assert answers_of(project)["_commit"] == OLD


def test_update_delivers_the_template_change_and_keeps_local_edits_and_answers(
    template_repo: Path, tmp_path: Path
) -> None:
    started = time.perf_counter()
    answers = {"transport": "both", "trace_backend": "jaeger", "rate_limit_storage": "redis"}
    project = project_at_old_release(template_repo, tmp_path / "my-server", answers)
    before = answers_of(project)

    # The user's edits: a sample tool and the README (user-owned), and a template-owned docs page (merged).
    tool = project / "src/my_server/tools/data.py"
    tool.write_text(tool.read_text() + "\n\n# Our own search backend goes here.\n")
    readme = project / "README.md"
    title, rest = readme.read_text().split("\n", 1)
    our_readme = f"{title}\nRunbook: https://wiki.example.com/my-server\n{rest}"
    readme.write_text(our_readme)
    docs = project / "docs/updating.md"
    text = docs.read_text()
    assert text.count(DOCS_OLD) == 1
    docs.write_text(text.replace(DOCS_OLD, DOCS_MINE))
    commit_all(project, "our edits")

    # --pretend writes nothing.
    tree, head = snapshot(project), git(project, "rev-parse", "HEAD")
    update(project, pretend=True)
    assert snapshot(project) == tree
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "rev-parse", "HEAD") == head

    update(project)

    # The template's change and new file arrived.
    assert NON_ROOT_USER in (project / "Dockerfile").read_text()
    assert (project / ".github/workflows/template-update.yml").is_file()
    # The edits survived: the user-owned tool and README untouched.
    assert tool.read_text().endswith("# Our own search backend goes here.\n")
    assert readme.read_text() == our_readme
    merged = docs.read_text()
    # Both sides changed one line: inline markers with both versions, nothing silently lost.
    assert "<<<<<<< before updating" in merged and ">>>>>>> after updating" in merged
    conflict = merged.split("<<<<<<< before updating", 1)[1].split(">>>>>>> after updating", 1)[0]
    assert DOCS_MINE in conflict and DOCS_NEW in conflict
    conflicted = git(project, "grep", "-l", "-e", "^<<<<<<< ").split()
    assert conflicted == ["docs/updating.md"], conflicted
    assert "docs/updating.md" in git(project, "diff", "--name-only", "--diff-filter=U").split()
    # The answers survived; only the template version moved.
    after = answers_of(project)
    assert after["_commit"] == NEW
    assert {k: v for k, v in after.items() if k != "_commit"} == {k: v for k, v in before.items() if k != "_commit"}
    record_timing(f"copier update with local edits: {time.perf_counter() - started:.1f} s")


def uv(project: Path, *args: str) -> str:
    run = subprocess.run(
        ["uv", *args], cwd=project, env=uv_environment(python_for("3.11")), capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, f"uv {' '.join(args)}:\n{run.stdout[-4000:]}{run.stderr[-4000:]}"
    return run.stdout


def test_a_security_fix_in_the_tested_set_arrives_with_the_update(template_repo: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    project = project_at_old_release(template_repo, tmp_path / "my-server", {})
    uv(project, "lock")
    assert locked_versions(project / "uv.lock", "my-server")[FIXED_PACKAGE] == {VULNERABLE}
    # The user's work since: a tool of their own in a user-owned module, committed with the lock.
    tool = project / "src/my_server/tools/data.py"
    own_tool = "\n\n# Our own search backend goes here.\n"
    tool.write_text(tool.read_text() + own_tool)
    commit_all(project, "our lock and our edits")

    update(project)
    uv(project, "lock")  # what the template-update workflow runs after `copier update`

    locked = locked_versions(project / "uv.lock", "my-server")
    assert locked[FIXED_PACKAGE] == {FIXED}, "the fixed version arrives in the resolution"
    assert differences(locked, pins()) == [], "the whole lock is the new tested set"
    assert tool.read_text().endswith(own_tool)
    assert git(project, "grep", "-l", "-e", "^<<<<<<< ", check=False) == ""
    audited = uv(project, "export", "--locked", "--all-groups", "--no-emit-project", "--format", "requirements-txt")
    assert f"{FIXED_PACKAGE}=={FIXED}" in audited and VULNERABLE not in audited, "pip-audit reads the new lock"
    keep_venv(project, "update-security-fix", python_for("3.11"))
    uv(project, "sync", "--locked", "--quiet")
    # The user's tests on the new set (the template's own tests run on it in every generated project).
    uv(project, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider", "tests/tools")
    record_timing(f"security fix through copier update (lock, sync, tests): {time.perf_counter() - started:.1f} s")


def test_a_template_file_the_user_deleted_stays_deleted(template_repo: Path, tmp_path: Path) -> None:
    project = project_at_old_release(template_repo, tmp_path / "my-server", {"transport": "http"})
    (project / "compose.yaml").unlink()
    commit_all(project, "we run our own stack")
    update(project)
    assert not (project / "compose.yaml").exists(), "an intentionally deleted template file is not recreated"
    assert NON_ROOT_USER in (project / "Dockerfile").read_text()


UNEDITED = [
    {},
    {"transport": "http", "idp": "auth0", "trace_backend": "jaeger", "rate_limit_storage": "redis"},
    {"transport": "stdio", "trace_backend": "none", "python_version": "3.13"},
    {
        "transport": "both",
        "idp": "entra",
        "trace_backend": "langfuse",
        "rate_limit_storage": "redis",
        "license": "Proprietary",
    },
    {"transport": "http", "idp": "oidc", "trace_backend": "tempo", "license": "Apache-2.0", "python_version": "3.12"},
]


def _update_equals_fresh_copy(job: tuple[str, str, dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    template, root, answers = job
    name = "-".join(answers.values()) or "defaults"
    project = project_at_old_release(Path(template), Path(root) / f"updated-{name}" / "my-server", answers)
    update(project)
    fresh = copy_project(Path(template), Path(root) / f"fresh-{name}" / "my-server", answers, NEW)
    updated, expected = snapshot(project), snapshot(fresh)
    differences = sorted(path for path in updated.keys() | expected.keys() if updated.get(path) != expected.get(path))
    return answers, differences


def test_an_unedited_project_updates_to_exactly_a_fresh_copy(template_repo: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    jobs = [(str(template_repo), str(tmp_path), answers) for answers in UNEDITED]
    with process_pool(max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(_update_equals_fresh_copy, jobs))
    different = {str(answers): paths for answers, paths in results if paths}
    assert not different, different
    record_timing(f"copier update == fresh copy: {len(UNEDITED)} answer sets in {time.perf_counter() - started:.1f} s")


# A project that made the tools its own. The user's files are in tests/update_fixtures/, where
# PACKAGE stands for the project's package (replaced when the file is written into the project).
# They import a package only the project has: this repository's mypy leaves the folder out
# (pyproject.toml), and its test modules are not named test_*.py, so this repository's pytest does
# not collect them.
FIXTURES = Path(__file__).with_name("update_fixtures")
USER_FILES = {  # path in the project: fixture
    "src/{package}/tools/inventory.py": "inventory.py",
    "src/{package}/tools/weather.py": "weather.py",
    "tests/tools/test_inventory.py": "inventory_tests.py",
    "tests/tools/test_weather.py": "weather_tests.py",
    "README.md": "our_readme.md",
}
USER_TOOLS = {"stock_level": "3/minute", "forecast": None}  # name: its own @rate_limit
SAMPLE_MODULES = ["public", "data", "admin", "catalog", "digest"]
SAMPLES = [f"src/{{package}}/tools/{module}.py" for module in SAMPLE_MODULES] + [
    f"tests/tools/test_{module}.py" for module in SAMPLE_MODULES
]
SAMPLE_COMPONENTS = {  # labels, as REGISTRY_PROBE reports them
    "whoami",
    "search_notes",
    "server_info",
    "digest_notes",
    "resource:note_index",
    "resource:note",
    "prompt:ask_about_note",
}
CONFLICT_MARKER = re.compile(rb"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)
OWN_TOOLS_ANSWERS = [{}, {"transport": "http", "rate_limit_storage": "redis"}]


def user_file(fixture: str, package: str) -> bytes:
    text = (FIXTURES / fixture).read_text()
    return re.sub(r"\bPACKAGE\b", package, text).encode()


def user_test_names(package: str) -> set[tuple[str, str]]:
    """(junit classname, test name) of every test in the user's test modules."""
    names: set[tuple[str, str]] = set()
    for path, fixture in USER_FILES.items():
        if path.startswith("tests/"):
            module = path.removesuffix(".py").replace("/", ".")
            tree = ast.parse(user_file(fixture, package))
            names |= {
                (module, node.name)
                for node in tree.body
                if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name.startswith("test_")
            }
    return names


def junit_outcomes(report: Path) -> dict[tuple[str, str], str]:
    """(classname, name) of every test case in a junit report: "passed", or why not."""
    outcomes: dict[tuple[str, str], str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        verdicts = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[(case.get("classname", ""), case.get("name", ""))] = verdicts[0] if verdicts else "passed"
    return outcomes


def assert_no_conflicts(project: Path) -> None:
    """No conflict markers, no rejected hunks, nothing unmerged in the git index."""
    files = [path for path in project.rglob("*") if path.is_file() and ".git" not in path.relative_to(project).parts]
    assert [path for path in files if CONFLICT_MARKER.search(path.read_bytes())] == []
    assert [path for path in files if path.suffix in (".rej", ".orig")] == []
    assert git(project, "diff", "--name-only", "--diff-filter=U") == ""


# Run in a project's environment with the package as argument: the tools, resources and prompts the
# registry serves from the project's tools package (label: its own @rate_limit), the arguments each
# lets into its audit line, and the DeprecationWarnings raised while they load ([file, message]).
REGISTRY_PROBE = """
import importlib, json, sys, warnings
from fastmcp import FastMCP
registry = importlib.import_module(sys.argv[1] + ".registry")
components = importlib.import_module(sys.argv[1] + ".components")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    registered = registry.register_components(FastMCP("probe"))
labels = [components.label(components.kind_of(found), found.name) for found in registered.components]
print(json.dumps({
    "limits": {label: registered.limits.get(label) for label in labels},
    "recorded": registered.recorded_arguments,
    "deprecations": [[w.filename, str(w.message)] for w in caught if issubclass(w.category, DeprecationWarning)],
}))
"""


def served(project: Path, package: str) -> dict[str, Any]:
    """REGISTRY_PROBE's findings in `project` (synced)."""
    found: dict[str, Any] = json.loads(uv(project, "run", "--no-sync", "python", "-c", REGISTRY_PROBE, package))
    return found


def status_paths(project: Path) -> set[str]:
    return {line[3:] for line in git(project, "status", "--porcelain", "--untracked-files=all").splitlines()}


@pytest.mark.parametrize("answers", OWN_TOOLS_ANSWERS, ids=["defaults", "http-redis"])
def test_own_tools_instead_of_the_samples_survive_the_update_and_are_served(
    template_repo: Path, tmp_path: Path, answers: dict[str, str]
) -> None:
    started = time.perf_counter()
    label = "-".join(answers.values()) or "defaults"
    project = project_at_old_release(template_repo, tmp_path / "my-server", answers)
    package = answers_of(project)["package"]
    assert isinstance(package, str)
    samples = [path.format(package=package) for path in SAMPLES]
    assert all((project / path).is_file() for path in samples)

    # The user's work: the samples and their tests go, two tools of their own and their tests come,
    # the README is rewritten.
    for path in samples:
        (project / path).unlink()
    mine = {path.format(package=package): user_file(fixture, package) for path, fixture in USER_FILES.items()}
    for path, content in mine.items():
        (project / path).write_bytes(content)
    commit_all(project, "our own tools")
    before = answers_of(project)

    update(project)

    assert_no_conflicts(project)
    # Only what the template changed between the releases changed: nothing of the user's.
    fresh_old = snapshot(copy_project(template_repo, tmp_path / "fresh-old" / "my-server", answers, OLD))
    fresh_new = snapshot(copy_project(template_repo, tmp_path / "fresh-new" / "my-server", answers, NEW))
    template_changes = {
        path for path in fresh_old.keys() | fresh_new.keys() if fresh_old.get(path) != fresh_new.get(path)
    }
    assert "Dockerfile" in template_changes and not template_changes & mine.keys()
    assert status_paths(project) == template_changes
    # The user's files byte for byte; the samples stay deleted; the template's fix arrived.
    assert {path: (project / path).read_bytes() for path in mine} == mine
    assert [path for path in samples if (project / path).exists()] == []
    assert NON_ROOT_USER in (project / "Dockerfile").read_text()
    # The answers survived; only the template version moved.
    after = answers_of(project)
    assert after["_commit"] == NEW
    assert {k: v for k, v in after.items() if k != "_commit"} == {k: v for k, v in before.items() if k != "_commit"}

    # The user's tests pass and the server has the user's tools. The template's tests (tests/server,
    # probe tools only) are a fresh copy's, as status_paths showed: they run in test_generated.py.
    report = tmp_path / "junit.xml"
    keep_venv(project, f"update-own-tools-{label}", python_for("3.11"))
    uv(project, "sync", "--quiet")
    uv(project, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "tests/tools")
    outcomes = junit_outcomes(report)
    expected = user_test_names(package)
    assert len(expected) >= 8
    assert {case: outcomes.get(case, "not run") for case in expected} == dict.fromkeys(expected, "passed")
    assert {classname for classname, _ in outcomes if classname.startswith("tests.tools.")} == {
        classname for classname, _ in expected
    }
    registered = served(project, package)["limits"]
    assert registered == USER_TOOLS and not SAMPLE_COMPONENTS & registered.keys()
    assert {path: (project / path).read_bytes() for path in mine} == mine
    record_timing(f"own tools through copier update ({label}; sync, tests): {time.perf_counter() - started:.1f} s")


# The real release 0.2.0 updated to the working tree. In 0.2.0 tools/__init__.py was the template's
# and listed TOOL_FUNCTIONS, the sample tools imported the package's internal modules (`observe`,
# `principal`, `ratelimit`), the template's tests were tests/test_*.py, and the README was the
# template's; UPGRADING.md's 0.3.0 section says what the update does with such a project and what
# the user does by hand, and these tests hold it to that.
RELEASE_0_2_0 = "a4a433aaebdb70b23d4fc6b8d3dead7f67edaa87"  # "Release 0.2.0"
V0_2_0, V0_3_0 = "v0.2.0", "v0.3.0"
UPGRADING = REPO / "UPGRADING.md"
ECHO = "echo.py"  # tests/update_fixtures/echo.py: a tool added the 0.2.0 way


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a git repository: `v0.2.0` the whole repository at release 0.2.0, `v0.3.0` the working tree."""
    released = tmp_path_factory.mktemp("template-0.2.0")
    archive = subprocess.run(["git", "archive", RELEASE_0_2_0], cwd=REPO, capture_output=True)
    assert archive.returncode == 0, (
        f"release 0.2.0 ({RELEASE_0_2_0}) is not in this clone: fetch the whole history "
        f"(git fetch --unshallow; actions/checkout with fetch-depth: 0)\n{archive.stderr.decode()}"
    )
    subprocess.run(["tar", "-x", "-C", str(released)], input=archive.stdout, check=True)
    current = template_copy(tmp_path_factory.mktemp("template-0.3.0"))
    repo = tagged_repo(tmp_path_factory.mktemp("release-repo"), {V0_2_0: released, V0_3_0: current})
    assert git(repo, "rev-parse", f"{V0_2_0}^{{tree}}") == git(REPO, "rev-parse", f"{RELEASE_0_2_0}^{{tree}}")
    return repo


def upgrading_section(version: str) -> str:
    """The `## <version>` section of UPGRADING.md."""
    found = re.search(rf"^## {re.escape(version)}\n(.*?)(?=^## |\Z)", UPGRADING.read_text(), re.MULTILINE | re.DOTALL)
    assert found, f"UPGRADING.md has no section ## {version}"
    return found.group(1)


def upgrading_command(version: str, start: str) -> str:
    """The one command line in UPGRADING.md's `version` section that starts with `start`."""
    lines = [line.strip() for line in upgrading_section(version).splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, f"UPGRADING.md, {version}: expected one command starting {start!r}, found {lines}"
    return lines[0]


def take_0_3_0(project: Path, venv: str) -> None:
    """UPGRADING.md's 0.3.0 commands (no --trust): the update to v0.3.0, then lock, sync (into the
    virtual environment kept as `venv`), test."""
    assert upgrading_command("0.3.0", "uvx copier update") == f"uvx copier update --defaults --vcs-ref={V0_3_0}"
    assert upgrading_command("0.3.0", "uv lock") == "uv lock && uv sync --locked && uv run pytest"
    update(project)
    assert_no_conflicts(project)
    assert answers_of(project)["_commit"] == V0_3_0
    uv(project, "lock")
    keep_venv(project, venv, python_for("3.11"))
    uv(project, "sync", "--locked", "--quiet")


def shell(project: Path, command: str) -> None:
    """A command line from UPGRADING.md, run as written in the project."""
    environment = uv_environment(python_for("3.11"))
    run = subprocess.run(["bash", "-c", command], cwd=project, env=environment, capture_output=True, text=True)
    assert run.returncode == 0, f"{command}\n{run.stdout}{run.stderr}"


def own_deprecations(found: Mapping[str, Any], project: Path) -> list[str]:
    """The DeprecationWarnings REGISTRY_PROBE saw raised from the project's own files."""
    return [message for filename, message in found["deprecations"] if Path(filename).is_relative_to(project)]


def tools_of(project: Path, package: str) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((project / "src" / package / "tools").iterdir())}


SAMPLE_LIMITS = {"whoami": None, "search_notes": None, "server_info": "10/minute"}
SAMPLE_RECORDED = {"search_notes": ["limit"]}
# The samples 0.3.0 adds (catalog.py, digest.py), which UPGRADING's step 2 copies with their tests.
NEW_SAMPLE_LIMITS = {
    "digest_notes": None,
    "resource:note_index": None,
    "resource:note": None,
    "prompt:ask_about_note": None,
}
NEW_SAMPLE_RECORDED = {"digest_notes": ["note_ids"], "resource:note": ["note_id"], "prompt:ask_about_note": ["note_id"]}


def test_a_0_2_0_project_updates_with_its_tools_kept_and_passes_its_suite(release_repo: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    project = project_at_old_release(release_repo, tmp_path / "my-server", {}, V0_2_0)
    package = answers_of(project)["package"]
    assert isinstance(package, str)
    old_tests = sorted(path.relative_to(project).as_posix() for path in (project / "tests").glob("test_*.py"))
    assert len(old_tests) >= 5 and not (project / "docs").exists() and not (project / "tests/server").exists()
    tools, readme = tools_of(project, package), (project / "README.md").read_bytes()
    assert "TOOL_FUNCTIONS" in tools["__init__.py"].decode() and {"public.py", "data.py", "admin.py"} <= tools.keys()

    take_0_3_0(project, "update-0.2.0-suite")

    # The template's tests moved to tests/server/, the documentation arrived, observe became audit.
    assert [path for path in old_tests if (project / path).exists()] == []
    assert len(list((project / "tests/server").glob("test_*.py"))) >= 5
    assert (project / "docs/updating.md").is_file() and (project / "docs/tools.md").is_file()
    assert (project / "src" / package / "audit.py").is_file() and (project / "src" / package / "observe.py").is_file()
    # Everything under tools/ is the user's now, the 0.2.0 __init__.py with TOOL_FUNCTIONS included;
    # the README too; nothing is written to tests/tools/ (copier leaves the folder, empty).
    assert tools_of(project, package) == tools
    assert (project / "README.md").read_bytes() == readme
    assert [path for path in (project / "tests/tools").rglob("*") if path.is_file()] == []

    # UPGRADING's step 2: the samples' tests, copied from a fresh 0.3.0 render as it says, test the
    # 0.2.0 samples.
    fresh_copy = re.fullmatch(
        r"`(uvx copier copy [^`]*?) && (cp [^`]*)`\.", upgrading_command("0.3.0", "`uvx copier copy")
    )
    assert fresh_copy and f"--defaults --vcs-ref={V0_3_0} " in fresh_copy[1] and fresh_copy[1].endswith(" /tmp/fresh")
    fresh = copy_project(release_repo, tmp_path / "fresh", {}, V0_3_0)
    shell(project, fresh_copy[2].replace("/tmp/fresh", str(fresh)))

    report = tmp_path / "junit.xml"
    uv(project, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}")
    outcomes = junit_outcomes(report)
    for suite, least in [("tests.server.", 50), ("tests.tools.", 6)]:
        cases = [outcome for (classname, _), outcome in outcomes.items() if classname.startswith(suite)]
        assert len(cases) >= least and set(cases) == {"passed"}, (suite, cases)
    found = served(project, package)
    assert found["limits"] == {**SAMPLE_LIMITS, **NEW_SAMPLE_LIMITS}
    assert found["recorded"] == {**SAMPLE_RECORDED, **NEW_SAMPLE_RECORDED}
    record_timing(f"0.2.0 project through copier update (lock, sync, tests): {time.perf_counter() - started:.1f} s")


def test_a_tool_added_the_0_2_0_way_is_served_after_the_update_and_after_the_upgrading_steps(
    release_repo: Path, tmp_path: Path
) -> None:
    started = time.perf_counter()
    project = project_at_old_release(release_repo, tmp_path / "my-server", {}, V0_2_0)
    package = answers_of(project)["package"]
    assert isinstance(package, str)
    tools_dir = project / "src" / package / "tools"
    # The user's 0.2.0 way of adding a tool: a module, and its function listed in TOOL_FUNCTIONS.
    (tools_dir / ECHO).write_bytes(user_file(ECHO, package))
    listing = tools_dir / "__init__.py"
    text = listing.read_text()
    for before, after in [
        ("from .data import search_notes\n", "from .data import search_notes\nfrom .echo import echo\n"),
        ("(whoami, search_notes, server_info)", "(whoami, search_notes, server_info, echo)"),
    ]:
        assert text.count(before) == 1, f"0.2.0's tools/__init__.py changed? {before!r}"
        text = text.replace(before, after)
    listing.write_text(text)
    commit_all(project, "our echo tool")
    tools = tools_of(project, package)

    take_0_3_0(project, "update-0.2.0-tool")

    assert tools_of(project, package) == tools
    tools_limits = {**SAMPLE_LIMITS, "echo": None}
    tools_recorded = {**SAMPLE_RECORDED, "echo": ["text"]}
    found = served(project, package)
    assert found["limits"] == tools_limits
    assert found["recorded"] == tools_recorded  # @record_arguments through the deprecated alias still counts
    # The deprecated `observe` warns once, naming what to import instead and where the steps are.
    ours = own_deprecations(found, project)
    assert len(ours) == 1, found["deprecations"]
    assert f"from {package}.toolkit" in ours[0] and "UPGRADING.md, 0.3.0" in ours[0], ours[0]

    # UPGRADING.md's step 1, literally: tools/__init__.py reduced to a docstring, the sed over the
    # tool modules, ruff merging the imports the sed doubled.
    for start in ("printf ", "sed ", "uv run ruff "):
        shell(project, upgrading_command("0.3.0", start).replace("<package>", package))
    internal = re.compile(r"^from \.\.(observe|principal|ratelimit) import ", re.MULTILINE)
    assert [path.name for path in tools_dir.glob("*.py") if internal.search(path.read_text())] == []
    assert "from ..toolkit import caller, record_arguments\n" in (tools_dir / ECHO).read_text()
    assert listing.read_text() == '"""The server\'s tools."""\n'

    found = served(project, package)
    assert found["limits"] == tools_limits
    assert found["recorded"] == tools_recorded
    assert own_deprecations(found, project) == [], found["deprecations"]
    record_timing(f"0.2.0 tool through copier update and UPGRADING's steps: {time.perf_counter() - started:.1f} s")
