#!/usr/bin/env python3
"""Tag every released CHANGELOG.md entry that has no tag yet.

A released entry starts with a heading `## X.Y.Z - YYYY-MM-DD`, newest first; `## Unreleased` may
sit on top and is never tagged. Release X.Y.Z is the annotated tag `vX.Y.Z` on the commit that
added its heading to CHANGELOG.md (the oldest commit whose diff adds that exact line), with the
entry's text as the tag message. An existing tag is never moved.

Usage (from anywhere inside the repository):
    python3 scripts/release_tags.py              # create the missing tags
    python3 scripts/release_tags.py --dry-run    # print what would be tagged; change nothing
    python3 scripts/release_tags.py --push origin

The release workflow (.github/workflows/release.yml) runs it with `--push origin` on every push to
main that changes CHANGELOG.md. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CHANGELOG = "CHANGELOG.md"
UNRELEASED = "## Unreleased"
HEADING = re.compile(r"^## (?P<version>(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)) - (?P<date>\d{4}-\d{2}-\d{2})$")
FORMAT_HINT = "write `## X.Y.Z - YYYY-MM-DD` (three numbers, an ISO date), e.g. `## 1.2.0 - 2026-01-31`"


class ReleaseError(Exception):
    """A problem the user has to fix; the message says what to change."""


@dataclass(frozen=True)
class Release:
    version: str
    date: str
    heading: str  # the exact heading line, as searched for in the history
    line: int  # 1-based line number in CHANGELOG.md
    body: str  # the entry below its heading

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))

    @property
    def message(self) -> str:
        """The tag message: `X.Y.Z - YYYY-MM-DD`, a blank line, then the entry."""
        subject = self.heading.removeprefix("## ")
        return f"{subject}\n\n{self.body}\n" if self.body else f"{subject}\n"


# --- CHANGELOG.md ---------------------------------------------------------------------------------


def _sections(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, `## ` heading, lines below it) per second-level heading outside code fences."""
    current: tuple[int, str, list[str]] | None = None
    fenced = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            if current is not None:
                yield current
            current = (number, line, [])
        elif current is not None:
            current[2].append(raw)
    if current is not None:
        yield current


def parse_release(number: int, heading: str, body: list[str]) -> Release:
    """One released entry, or a ReleaseError naming the line and the format to use."""
    where = f"{CHANGELOG}:{number}: `{heading}`"
    match = HEADING.match(heading)
    if match is None:
        raise ReleaseError(f"{where} is not a release heading: {FORMAT_HINT}, or `{UNRELEASED}` on top")
    try:
        datetime.date.fromisoformat(match["date"])
    except ValueError:
        raise ReleaseError(f"{where}: {match['date']} is not a calendar date: {FORMAT_HINT}") from None
    return Release(match["version"], match["date"], heading, number, "\n".join(body).strip())


def check_order(releases: Sequence[Release]) -> None:
    """Newest first: every version strictly higher than the one below it."""
    for newer, older in itertools.pairwise(releases):
        if newer.key <= older.key:
            raise ReleaseError(
                f"{CHANGELOG}:{older.line}: {older.version} is listed below {newer.version} "
                f"(line {newer.line}): entries go newest first with strictly decreasing versions; "
                "fix the version numbers or move the entry"
            )


def parse_changelog(text: str) -> list[Release]:
    """Every released entry, newest first; `## Unreleased` (on top only) is skipped."""
    releases: list[Release] = []
    for number, heading, body in _sections(text):
        if heading == UNRELEASED:
            if releases:
                raise ReleaseError(f"{CHANGELOG}:{number}: `{UNRELEASED}` must come before every release")
            continue
        releases.append(parse_release(number, heading, body))
    check_order(releases)
    return releases


# --- git -----------------------------------------------------------------------------------------


def git(root: Path, *args: str, stdin: str | None = None) -> str:
    run = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, text=True)
    if run.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {(run.stderr or run.stdout).strip()}")
    return run.stdout.strip()


def repository_root() -> Path:
    return Path(git(Path.cwd(), "rev-parse", "--show-toplevel"))


def introducing_commit(root: Path, release: Release) -> str | None:
    """The oldest commit whose diff adds the release's heading to CHANGELOG.md."""
    found = git(root, "log", "--format=%H", "--reverse", f"-S{release.heading}", "--", CHANGELOG)
    return found.split()[0] if found else None


def tagged_commit(root: Path, tag: str) -> str | None:
    """The commit an existing tag points at, None if there is no such tag."""
    run = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return run.stdout.strip() if run.returncode == 0 else None


def create_tag(root: Path, release: Release, commit: str) -> None:
    git(root, "tag", "--annotate", "--cleanup=verbatim", "--file=-", release.tag, commit, stdin=release.message)


def push_tags(root: Path, remote: str, tags: Sequence[str]) -> None:
    try:
        git(root, "push", "--quiet", remote, *(f"refs/tags/{tag}:refs/tags/{tag}" for tag in tags))
    except ReleaseError as error:
        retry = f"git push {remote} {' '.join(tags)}"
        raise ReleaseError(f"{error}\nthe tags exist in this clone; push them with: {retry}") from None


# --- what to tag -----------------------------------------------------------------------------------


def plan(root: Path, releases: Sequence[Release]) -> list[tuple[Release, str]]:
    """(release, commit) for each release without a tag, oldest first; a note for each one left out."""
    todo: list[tuple[Release, str]] = []
    for release in reversed(releases):
        existing = tagged_commit(root, release.tag)
        commit = introducing_commit(root, release)
        if commit is None:
            print(f"note: `{release.heading}` is in no commit yet; {release.tag} is created once it is committed")
        elif existing is None:
            todo.append((release, commit))
        elif existing != commit:
            print(f"note: {release.tag} is on {existing[:12]}, not on {commit[:12]} that added the entry; left alone")
    return todo


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Tag every released CHANGELOG.md entry that has no vX.Y.Z tag yet.")
    parser.add_argument("--dry-run", action="store_true", help="print what would be tagged; change nothing")
    parser.add_argument("--push", metavar="REMOTE", help="push the new tags to REMOTE")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    root = repository_root()
    releases = parse_changelog((root / CHANGELOG).read_text(encoding="utf-8"))
    todo = plan(root, releases)
    if not todo:
        print(f"nothing new to tag: every release in {CHANGELOG} has a tag already")
        return
    verb = "would tag" if args.dry_run else "tagged"
    for release, commit in todo:
        if not args.dry_run:
            create_tag(root, release, commit)
        print(f"{verb} {release.tag} on {commit[:12]} ({release.heading})")
    if args.push:
        tags = [release.tag for release, _ in todo]
        if not args.dry_run:
            push_tags(root, args.push, tags)
        print(f"{'would push' if args.dry_run else 'pushed'} {', '.join(tags)} to {args.push}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
