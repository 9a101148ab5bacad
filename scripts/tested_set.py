"""The tested dependency set: every package version a generated project resolves, in one place.

The set lives in `template/pyproject.toml.jinja`, between the `tested-set` markers of
`[tool.uv] constraint-dependencies`: exact pins of every package any combination of answers can
install (runtime and dev, transitive ones included, with uv's environment markers). Constraints
only act on packages a project actually needs, so one list serves every combination, and the
user's `uv lock` resolves exactly these versions on any day.

    uv run python scripts/tested_set.py show     # the pins, one per line
    uv run python scripts/tested_set.py update   # re-resolve at the newest releases and rewrite the block

`update` renders the one combination whose dependencies include every other's (HTTP + stdio,
OTLP exporter, Redis), locks it with the pins lifted, and writes `uv export`'s pins back. A bump
is then a template commit: run the matrix (`./scripts/test`), add a CHANGELOG entry, release.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT_TEMPLATE = REPO / "template" / "pyproject.toml.jinja"
BEGIN = "    # tested-set: begin"
END = "    # tested-set: end"
_BLOCK = re.compile(rf"(?ms)^{re.escape(BEGIN)}[^\n]*\n(.*?)^{re.escape(END)}[^\n]*$")
_PIN = re.compile(r'^\s*"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^ ;"]+)(?: *; *(?P<marker>[^"]+))?",\s*$')

# The answers whose dependencies are a superset of every other combination's.
SUPERSET_ANSWERS = {
    "project_name": "tested-set",
    "transport": "both",
    "trace_backend": "otlp",
    "rate_limit_storage": "redis",
    "python_version": "3.11",
}


def canonical(name: str) -> str:
    """PEP 503 normalised name, as uv.lock writes it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _block(text: str) -> re.Match[str]:
    match = _BLOCK.search(text)
    if match is None:
        raise SystemExit(f"no `{BEGIN.strip()}` ... `{END.strip()}` block in {PYPROJECT_TEMPLATE}")
    return match


def pins(text: str | None = None) -> dict[str, set[str]]:
    """name -> versions of every pin in the block (several only where markers fork the resolution,
    e.g. a release that needs a newer Python than the oldest one supported)."""
    body = _block(PYPROJECT_TEMPLATE.read_text() if text is None else text).group(1)
    found: dict[str, set[str]] = {}
    for line in body.splitlines():
        match = _PIN.match(line)
        if match is None:
            raise SystemExit(f'not an exact pin in the tested set: {line.strip()!r} (write "name==version",)')
        found.setdefault(canonical(match["name"]), set()).add(match["version"])
    return found


def with_pins(text: str, requirements: list[str]) -> str:
    """`text` (a pyproject) with the block holding exactly `requirements`."""
    match = _block(text)
    body = "".join(f'    "{requirement}",\n' for requirement in requirements)
    return text[: match.start(1)] + body + text[match.end(1) :]


def lifted(text: str) -> str:
    """`text` with the tested set emptied: uv then resolves the newest releases in range."""
    return with_pins(text, [])


def locked_versions(lock_file: Path, project: str) -> dict[str, set[str]]:
    """name -> versions of every package in a uv.lock, the project itself left out."""
    found: dict[str, set[str]] = {}
    for package in tomllib.loads(lock_file.read_text()).get("package", []):
        name = canonical(package["name"])
        if name != canonical(project) and "version" in package:
            found.setdefault(name, set()).add(package["version"])
    return found


def differences(resolved: dict[str, set[str]], tested: dict[str, set[str]]) -> list[str]:
    """One line for every package whose resolved versions are not all tested ones."""
    lines = []
    for name in sorted(resolved):
        if name not in tested:
            lines.append(f"{name} {_versions(resolved[name])} (not in the tested set)")
        elif not resolved[name] <= tested[name]:
            lines.append(f"{name} {_versions(tested[name])} -> {_versions(resolved[name])}")
    return lines


def _versions(versions: set[str]) -> str:
    return ", ".join(sorted(versions))


def _run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "UV_PYTHON": os.environ.get("UV_PYTHON", "python3.11"), "UV_PYTHON_DOWNLOADS": "never"}
    run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"$ {' '.join(command)} (in {cwd}) failed:\n{run.stdout}{run.stderr}")
    return run.stdout


def resolve_newest() -> list[str]:
    """Render the superset combination with the pins lifted, lock it, and export every pin."""
    from copier import run_copy

    with tempfile.TemporaryDirectory() as scratch:
        template = Path(scratch) / "template"
        shutil.copy2(REPO / "copier.yml", Path(scratch) / "copier.yml")
        shutil.copytree(REPO / "template", template)
        (template / PYPROJECT_TEMPLATE.name).write_text(lifted(PYPROJECT_TEMPLATE.read_text()))
        project = Path(scratch) / "project"
        run_copy(scratch, str(project), data=SUPERSET_ANSWERS, defaults=True, unsafe=False, quiet=True)
        _run(["uv", "lock", "--upgrade", "--quiet"], project)
        export = ["uv", "export", "--frozen", "--all-groups", "--no-emit-project", "--no-hashes", "--no-header"]
        exported = _run([*export, "--no-annotate", "--format", "requirements-txt"], project)
    return [line.strip() for line in exported.splitlines() if line.strip() and not line.startswith(("#", "-"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["show", "update"])
    args = parser.parse_args(argv)
    if args.command == "show":
        for name, version in sorted(pins().items()):
            print(f"{name}=={version}")
        return 0
    before = pins()
    text = with_pins(PYPROJECT_TEMPLATE.read_text(), resolve_newest())
    after = pins(text)
    PYPROJECT_TEMPLATE.write_text(text)
    dropped = [f"{name} {_versions(before[name])} (dropped)" for name in sorted(before) if name not in after]
    changes = differences(after, before) + dropped
    print("\n".join(changes) if changes else "the tested set is already at the newest releases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
