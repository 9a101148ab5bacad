"""The tested dependency set: a render locks to it on any day, and nothing moves it but the template.

The set is `[tool.uv] constraint-dependencies` in template/pyproject.toml.jinja (exact pins,
written by scripts/tested_set.py). Every generated project in tests/test_generated.py is checked
against it after `uv sync`; here, the default render and the properties of the set itself.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import python_for, uv_environment
from rendering import render
from tested_set import BEGIN, END, differences, lifted, locked_versions, pins, with_pins


def uv(project: Path, *args: str) -> None:
    run = subprocess.run(
        ["uv", *args], cwd=project, env=uv_environment(python_for("3.11")), capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"uv {' '.join(args)}:\n{run.stdout}{run.stderr}"


def test_a_default_render_locks_to_the_tested_set_and_an_upgrade_moves_nothing(template: Path, tmp_path: Path) -> None:
    project = render(template, tmp_path / "my-server", {})
    uv(project, "lock")
    lock = project / "uv.lock"
    resolved = locked_versions(lock, "my-server")
    assert "fastmcp" in resolved and "mcp" in resolved
    assert differences(resolved, pins()) == []
    first = lock.read_text()
    uv(project, "lock", "--upgrade")
    assert lock.read_text() == first, "`uv lock --upgrade` moved a version: the tested set does not pin it"
    # --locked (the Dockerfile and the generated CI) accepts the lock as it is.
    uv(project, "lock", "--locked")


def test_the_tested_set_pins_every_direct_dependency_within_its_range(template: Path, tmp_path: Path) -> None:
    """Every dependency a render declares, runtime and dev, is pinned, so nothing floats."""
    project = render(
        template, tmp_path / "p", {"transport": "both", "trace_backend": "otlp", "rate_limit_storage": "redis"}
    )
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    declared = [*pyproject["project"]["dependencies"], *pyproject["dependency-groups"]["dev"]]
    names = {requirement.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for requirement in declared}
    tested = pins()
    assert names and not [name for name in names if name.lower() not in tested]
    constraints = pyproject["tool"]["uv"]["constraint-dependencies"]
    assert len(constraints) >= len(tested) and all("==" in constraint for constraint in constraints)


def test_pins_round_trip_and_lifting_empties_the_block() -> None:
    pinned = '    "anyio==4.0.0",\n    "idna==3.7 ; python_version < \'3.12\'",\n'
    text = f"constraint-dependencies = [\n{BEGIN}\n{pinned}{END}\n]\n"
    assert pins(text) == {"anyio": {"4.0.0"}, "idna": {"3.7"}}
    assert pins(lifted(text)) == {}
    rewritten = with_pins(text, ["Typing_Extensions==4.12.2"])
    assert pins(rewritten) == {"typing-extensions": {"4.12.2"}}
    assert rewritten.startswith("constraint-dependencies = [\n") and rewritten.endswith(f"{END}\n]\n")


def test_a_loose_pin_in_the_block_is_refused_with_what_to_write() -> None:
    text = f'{BEGIN}\n    "anyio>=4",\n{END}\n'
    with pytest.raises(SystemExit, match=r"not an exact pin.*name==version"):
        pins(text)


def test_differences_name_each_version_that_moved() -> None:
    tested = {"anyio": {"4.0.0"}, "deprecated": {"1.3.1", "3.0.1"}}
    resolved = {"anyio": {"4.1.0"}, "deprecated": {"3.0.1"}, "newcomer": {"1.0"}}
    assert differences(resolved, tested) == ["anyio 4.0.0 -> 4.1.0", "newcomer 1.0 (not in the tested set)"]
