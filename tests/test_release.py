"""scripts/release_tags.py: release tags from CHANGELOG.md, as .github/workflows/release.yml runs it.

Each test builds a small git repository whose CHANGELOG.md gains `## 0.1.0 - ...` in one commit and
`## 0.2.0 - ...` in a later one (with `## Unreleased` on top), runs the script in it, and looks at
the tags. The last test parses this repository's own CHANGELOG.md.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "release_tags.py"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}
# Tests never read the user's or the machine's git configuration (signing, hooks, default branch).
GIT_ENV = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

INTRO = "# Changelog\n\nReleases of this template.\n\n"
ENTRY_1 = "## 0.1.0 - 2026-01-10\n\nThe first release.\n\n### Server\n- A server.\n"
ENTRY_2 = "## 0.2.0 - 2026-02-20\n\n### Server\n- Faster token checks.\n"
UNRELEASED = "## Unreleased\n\n- Work in progress.\n\n"


def git(cwd: Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=cwd,
        env=GIT_ENV,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, f"git {' '.join(args)}: {run.stdout}{run.stderr}"
    return run.stdout.strip()


def commit_changelog(repo: Path, text: str, message: str) -> str:
    (repo / "CHANGELOG.md").write_text(text)
    git(repo, "add", "CHANGELOG.md")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def release_tags(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=repo,
        env={**GIT_ENV, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "tag.gpgsign", "GIT_CONFIG_VALUE_0": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def tags(repo: Path) -> dict[str, str]:
    """tag name -> the commit it points at."""
    names = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/tags").split()
    return {name: git(repo, "rev-parse", f"refs/tags/{name}^{{commit}}") for name in names}


@dataclass(frozen=True)
class History:
    repo: Path
    first: str  # adds 0.1.0
    between: str  # an unrelated change
    second: str  # adds 0.2.0
    last: str  # an Unreleased note on top; HEAD


@pytest.fixture
def history(tmp_path: Path) -> History:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit_changelog(repo, INTRO + UNRELEASED, "Start a changelog")
    first = commit_changelog(repo, INTRO + ENTRY_1, "Release 0.1.0")
    (repo / "README.md").write_text("readme\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "Unrelated")
    between = git(repo, "rev-parse", "HEAD")
    commit_changelog(repo, INTRO + "## Unreleased\n\n- Faster token checks.\n\n" + ENTRY_1, "Note a change")
    second = commit_changelog(repo, INTRO + ENTRY_2 + "\n" + ENTRY_1, "Release 0.2.0")
    last = commit_changelog(repo, INTRO + UNRELEASED + ENTRY_2 + "\n" + ENTRY_1, "Unreleased work")
    return History(repo, first, between, second, last)


def test_each_release_is_tagged_on_the_commit_that_added_it(history: History) -> None:
    run = release_tags(history.repo)
    assert run.returncode == 0, run.stderr
    assert tags(history.repo) == {"v0.1.0": history.first, "v0.2.0": history.second}
    assert "tagged v0.1.0" in run.stdout and "tagged v0.2.0" in run.stdout
    for tag in ("v0.1.0", "v0.2.0"):
        assert git(history.repo, "cat-file", "-t", tag) == "tag", f"{tag} is an annotated tag"
    message = git(history.repo, "tag", "-l", "--format=%(contents)", "v0.2.0")
    assert message.splitlines()[0] == "0.2.0 - 2026-02-20"
    assert "### Server\n- Faster token checks." in message, "the entry's text, Markdown headings kept"
    assert "0.1.0" not in message and "Unreleased" not in message
    assert "The first release." in git(history.repo, "tag", "-l", "--format=%(contents)", "v0.1.0")


def test_a_second_run_tags_nothing(history: History) -> None:
    assert release_tags(history.repo).returncode == 0
    before = tags(history.repo)
    run = release_tags(history.repo)
    assert run.returncode == 0, run.stderr
    assert "nothing new to tag" in run.stdout
    assert tags(history.repo) == before


def test_dry_run_creates_nothing(history: History) -> None:
    run = release_tags(history.repo, "--dry-run", "--push", "nowhere")
    assert run.returncode == 0, run.stderr
    assert "would tag v0.1.0" in run.stdout and "would tag v0.2.0" in run.stdout
    assert "would push v0.1.0, v0.2.0 to nowhere" in run.stdout
    assert tags(history.repo) == {}


def test_only_the_missing_tags_are_created_and_pushed(history: History, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(history.repo, "remote", "add", "origin", str(remote))
    git(history.repo, "tag", "-a", "-m", "0.1.0", "v0.1.0", history.first)
    run = release_tags(history.repo, "--push", "origin")
    assert run.returncode == 0, run.stderr
    assert "tagged v0.2.0" in run.stdout and "v0.1.0" not in run.stdout
    assert "pushed v0.2.0 to origin" in run.stdout
    assert tags(remote) == {"v0.2.0": history.second}


def test_an_existing_tag_on_another_commit_is_not_moved(history: History) -> None:
    git(history.repo, "tag", "-a", "-m", "made by hand", "v0.1.0", history.between)
    git(history.repo, "tag", "v0.2.0", history.last)  # lightweight
    run = release_tags(history.repo)
    assert run.returncode == 0, run.stderr
    assert tags(history.repo) == {"v0.1.0": history.between, "v0.2.0": history.last}
    assert f"v0.1.0 is on {history.between[:12]}, not on {history.first[:12]}" in run.stdout
    assert "left alone" in run.stdout and "tagged" not in run.stdout


@pytest.mark.parametrize(
    ("heading", "problem"),
    [
        ("## 0.2 - 2026-02-20", "is not a release heading"),
        ("## 0.2.0 - 2026-02-30", "2026-02-30 is not a calendar date"),
        ("## 0.2.0 \u2013 2026-02-20", "is not a release heading"),  # an en dash
        ("## v0.2.0 - 2026-02-20", "is not a release heading"),
        ("## 0.2.0 - 20.02.2026", "is not a release heading"),
    ],
)
def test_a_malformed_heading_names_the_line_and_the_format(history: History, heading: str, problem: str) -> None:
    commit_changelog(history.repo, INTRO + ENTRY_2.replace("## 0.2.0 - 2026-02-20", heading) + "\n" + ENTRY_1, "Bad")
    run = release_tags(history.repo)
    assert run.returncode != 0
    assert f"CHANGELOG.md:5: `{heading}`" in run.stderr and problem in run.stderr, run.stderr
    assert "write `## X.Y.Z - YYYY-MM-DD`" in run.stderr
    assert tags(history.repo) == {}, "nothing is tagged while CHANGELOG.md has an error"


@pytest.mark.parametrize(
    "entries",
    [
        ENTRY_1 + "\n" + ENTRY_2,  # oldest first
        ENTRY_2 + "\n" + ENTRY_2.replace("Faster", "Slower") + "\n" + ENTRY_1,  # the same version twice
    ],
)
def test_versions_out_of_order_are_refused(history: History, entries: str) -> None:
    commit_changelog(history.repo, INTRO + UNRELEASED + entries, "Reorder")
    run = release_tags(history.repo, "--dry-run")
    assert run.returncode != 0
    assert "is listed below" in run.stderr and "newest first with strictly decreasing versions" in run.stderr
    assert "fix the version numbers or move the entry" in run.stderr


def test_unreleased_below_a_release_is_refused(history: History) -> None:
    commit_changelog(history.repo, INTRO + ENTRY_2 + "\n" + UNRELEASED + ENTRY_1, "Misplaced")
    run = release_tags(history.repo)
    assert run.returncode != 0
    assert "`## Unreleased` must come before every release" in run.stderr


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_tags", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_this_repositorys_changelog_parses() -> None:
    script = _script()
    releases = script.parse_changelog((REPO / "CHANGELOG.md").read_text(encoding="utf-8"))
    assert releases, "CHANGELOG.md has at least one release"
    assert "0.1.0" in [release.version for release in releases]
    keys = [release.key for release in releases]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys), "newest first, no repeats"
    assert all(release.body for release in releases), "every release says what changed"
