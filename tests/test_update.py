"""`copier update` from an older template release to the current one.

A temporary git repository holds the template twice: `v0.0.1`, an older revision crafted from the
working tree (the image ran as root, the README's Updating paragraph read differently, there was
no template-update workflow), and `v0.1.0`, the working tree itself. Projects rendered from
`v0.0.1` are then updated, as a user would, without --trust:

- with local edits: the template's fix and new file arrive, the user's tool edit (a user-owned
  file) and README addition survive, the answers survive, and a line both sides changed shows
  inline conflict markers instead of being overwritten; `--pretend` writes nothing;
- without local edits: the updated project equals a fresh copy of `v0.1.0` byte for byte, for
  several answer combinations;
- a security fix in the tested dependency set: `v0.0.1` pins an older pygments, and after
  `copier update` and `uv lock` the project resolves the fixed one, keeps its edits and passes
  its tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import copier._main
import copier._template
import copier._vcs
import pytest
import yaml
from copier import run_copy, run_update

from conftest import python_for, record_timing, uv_environment
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
README_NEW = "This project follows its Copier template: `copier update` brings the template's fixes (security"
README_OLD = "This project was generated from a Copier template: `copier update` brings its fixes (security"
README_MINE = "This project was generated from our fork of the template: `copier update` brings its fixes (security"
# A dependency fix the update must deliver: v0.0.1's tested set pins an older pygments (any older
# release the rest of the set still accepts serves; if a bump raises a floor above it, pick a newer one).
FIXED_PACKAGE, VULNERABLE = "pygments", "2.17.2"
(FIXED,) = pins()[FIXED_PACKAGE]
OLD_REVISION = [
    ("Dockerfile.jinja", NON_ROOT_USER, ""),  # the fix the update must deliver: a non-root image
    ("README.md.jinja", README_NEW, README_OLD),  # a line the user also changes: a genuine conflict
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


@pytest.fixture(scope="module", autouse=True)
def copier_with_git() -> Iterator[None]:
    """Updates need copier's git support, which tests/rendering.py turns off for plain renders
    in this process (another module may have rendered first)."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (copier._main, copier._template):
            patch.setattr(module, "is_git_available", copier._vcs.is_git_available)
        yield


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a git repository with two tagged releases."""
    repo = tmp_path_factory.mktemp("template-repo")
    shutil.copy2(REPO / "copier.yml", repo / "copier.yml")
    shutil.copytree(REPO / "template", repo / "template")
    init_repo(repo)
    current: dict[Path, bytes] = {}
    for relative, new, old in OLD_REVISION:
        path = repo / "template" / relative
        text = path.read_text()
        assert text.count(new) == 1, f"{relative}: the old-revision anchor {new!r} moved; update test_update.py"
        current[path] = path.read_bytes()
        path.write_text(text.replace(new, old))
    added = repo / "template" / ADDED_IN_NEW
    current[added] = added.read_bytes()
    added.unlink()
    commit_all(repo, "template 0.0.1")
    git(repo, "tag", OLD)
    for path, content in current.items():
        path.write_bytes(content)
    commit_all(repo, "template 0.1.0")
    git(repo, "tag", NEW)
    return repo


def copy_project(template: Path, destination: Path, answers: Mapping[str, str], vcs_ref: str) -> Path:
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


def project_at_old_release(template: Path, destination: Path, answers: Mapping[str, str]) -> Path:
    """What a user has: a render of the older release, committed."""
    copy_project(template, destination, answers, OLD)
    init_repo(destination)
    commit_all(destination, "generated from the template")
    return destination


def update(project: Path, *, pretend: bool = False) -> None:
    """`copier update --defaults --conflict inline` (no --trust), to the newest tag."""
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
    assert README_OLD in (project / "README.md").read_text()
    assert not (project / ".github/workflows/template-update.yml").exists()
    assert answers_of(project)["_commit"] == OLD


def test_update_delivers_the_template_change_and_keeps_local_edits_and_answers(
    template_repo: Path, tmp_path: Path
) -> None:
    started = time.perf_counter()
    answers = {"transport": "both", "trace_backend": "jaeger", "rate_limit_storage": "redis"}
    project = project_at_old_release(template_repo, tmp_path / "my-server", answers)
    before = answers_of(project)

    # The user's edits: a sample tool (user-owned) and the README (template-owned, merged).
    tool = project / "src/my_server/tools/data.py"
    tool.write_text(tool.read_text() + "\n\n# Our own search backend goes here.\n")
    readme = project / "README.md"
    text = readme.read_text()
    assert text.count(README_OLD) == 1
    title, rest = text.split("\n", 1)
    readme.write_text(f"{title}\nRunbook: https://wiki.example.com/my-server\n{rest}".replace(README_OLD, README_MINE))
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
    # The edits survived: the user-owned tool untouched, the README addition merged.
    assert tool.read_text().endswith("# Our own search backend goes here.\n")
    merged = readme.read_text()
    assert merged.startswith("# my-server\nRunbook: https://wiki.example.com/my-server\n")
    # Both sides changed one line: inline markers with both versions, nothing silently lost.
    assert "<<<<<<< before updating" in merged and ">>>>>>> after updating" in merged
    conflict = merged.split("<<<<<<< before updating", 1)[1].split(">>>>>>> after updating", 1)[0]
    assert README_MINE in conflict and README_NEW in conflict
    conflicted = git(project, "grep", "-l", "-e", "^<<<<<<< ").split()
    assert conflicted == ["README.md"], conflicted
    assert "README.md" in git(project, "diff", "--name-only", "--diff-filter=U").split()
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
    uv(project, "sync", "--locked", "--quiet")
    uv(project, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider")
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
    with ProcessPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(_update_equals_fresh_copy, jobs))
    different = {str(answers): paths for answers, paths in results if paths}
    assert not different, different
    record_timing(f"copier update == fresh copy: {len(UNEDITED)} answer sets in {time.perf_counter() - started:.1f} s")
