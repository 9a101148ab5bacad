"""Dead code in a render, as vulture sees it: what no file of the project uses, and unreachable code.

vulture reports a definition when no scanned file uses its name. Over ~1,000 renders built from a
few thousand distinct files, running vulture on every project would take minutes; but what a file
defines and which names it uses depend on that file alone. So each distinct file is scanned once,
and a project's verdict is assembled from its files' scans: the same verdict as
`vulture <the project's .py files> vulture_whitelist.py --ignore-decorators ...` (a test holds
the two equal on a render).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vulture import Vulture

WHITELIST = Path(__file__).with_name("vulture_whitelist.py")
# Decorators that hand a function to a framework, which calls it: validators, routes, tools, fixtures.
ENTRY_POINT_DECORATORS = (
    "@field_validator",
    "@model_validator",
    "@*.custom_route",
    "@tool",
    "@*.tool",
    "@resource",
    "@prompt",
    "@pytest.fixture",
)
FINDING = re.compile(r"^(?P<path>[^:]+):\d+: (?P<message>.+?)(?: \(\d+% confidence(?:, \d+ lines?)?\))?$")

Finding = tuple[str, str]  # (file in the project, vulture's message), e.g. ("src/x.py", "unused function 'f'")


@dataclass(frozen=True)
class FileScan:
    definitions: tuple[tuple[str, str], ...]  # (name, message) of each definition vulture could report
    unreachable: tuple[str, ...]  # messages: reported whatever the other files do
    used: frozenset[str]


def scan(path: Path) -> FileScan:
    """One file through vulture (with the bundled whitelists of the modules it imports)."""
    vulture = Vulture(ignore_decorators=list(ENTRY_POINT_DECORATORS))
    vulture.scavenge([path])
    if vulture.exit_code != 0:  # set when a file cannot be read or parsed
        raise ValueError(f"vulture cannot read {path}")
    own = path.resolve()
    kinds = (
        vulture.defined_attrs,
        vulture.defined_classes,
        vulture.defined_funcs,
        vulture.defined_imports,
        vulture.defined_methods,
        vulture.defined_props,
        vulture.defined_vars,
    )
    return FileScan(
        tuple((item.name, item.message) for kind in kinds for item in kind if Path(item.filename) == own),
        tuple(item.message for item in vulture.unreachable_code if Path(item.filename) == own),
        frozenset(vulture.used_names),
    )


class DeadCode:
    """Projects' findings, each distinct file (path in its project, content) scanned once."""

    def __init__(self) -> None:
        self._scans: dict[tuple[str, str], FileScan] = {}
        self._whitelisted = scan(WHITELIST).used

    def findings(self, project: Path) -> set[Finding]:
        scans: dict[str, FileScan] = {}
        for path in sorted(project.rglob("*.py")):
            relative = str(path.relative_to(project))
            key = (relative, hashlib.sha256(path.read_bytes()).hexdigest())
            if key not in self._scans:
                self._scans[key] = scan(path)
            scans[relative] = self._scans[key]
        used = self._whitelisted.union(*(file.used for file in scans.values()))
        return {
            (relative, message)
            for relative, file in scans.items()
            for name, message in file.definitions
            if name not in used
        } | {(relative, message) for relative, file in scans.items() for message in file.unreachable}

    @property
    def files_scanned(self) -> int:
        return len(self._scans)


def vulture_cli(project: Path) -> set[Finding]:
    """vulture itself over the project's Python files, as a user would run it."""
    files = sorted(str(path.relative_to(project)) for path in project.rglob("*.py"))
    decorators = ",".join(ENTRY_POINT_DECORATORS)
    run = subprocess.run(
        [sys.executable, "-m", "vulture", *files, str(WHITELIST), "--ignore-decorators", decorators],
        cwd=project,
        capture_output=True,
        text=True,
    )
    if run.returncode not in (0, 3):
        raise ValueError(f"vulture failed in {project}:\n{run.stdout}{run.stderr}")
    matches = [FINDING.match(line) for line in run.stdout.splitlines()]
    if not all(matches):
        raise ValueError(f"unexpected vulture output:\n{run.stdout}")
    return {(match["path"], match["message"]) for match in matches if match}
