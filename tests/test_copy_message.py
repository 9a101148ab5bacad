"""`copier copy` ends with the next steps for the answers given (copier.yml's `_message_after_copy`).

Each case runs the real `copier copy` command on the working tree's template, reads what it prints
after the files, and checks it against the project it wrote: every line fits 80 columns, every
command it names exists there (the CLI's subcommands and options, the compose services, the docs),
and only the steps of the chosen answers are named.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

COLUMNS = 80
MAX_LINES = 20
SERVICES = ["keycloak", "redis", "jaeger", "lgtm"]  # compose.yaml's backing services, in the message's order


@dataclass(frozen=True)
class Case:
    answers: dict[str, str]
    services: set[str]  # the backing services `docker compose up -d` starts
    http: bool
    stdio: bool
    present: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


CASES = {
    "defaults": Case(
        {},
        {"keycloak"},
        http=True,
        stdio=True,
        present=["http://127.0.0.1:8000/mcp, dev auth", "with Keycloak"],
        absent=["IdP in .env"],
    ),
    "stdio-redis-jaeger": Case(
        {"transport": "stdio", "rate_limit_storage": "redis", "trace_backend": "jaeger"},
        {"redis", "jaeger"},
        http=False,
        stdio=True,
        present=["MCP over stdio", "Jaeger UI :16686"],
        absent=["8000", "dev auth", "docker compose up --build"],
    ),
    "http-auth0-tempo": Case(
        {"transport": "http", "idp": "auth0", "trace_backend": "tempo"},
        {"lgtm"},
        http=True,
        stdio=False,
        present=["Grafana :3000", "IdP in .env first"],
        absent=["Keycloak", "--transport stdio"],
    ),
    # The longest `docker compose up -d` line: all three backing services.
    "http-keycloak-redis-jaeger": Case(
        {"transport": "http", "rate_limit_storage": "redis", "trace_backend": "jaeger"},
        {"keycloak", "redis", "jaeger"},
        http=True,
        stdio=False,
        present=["Keycloak :8080, Redis, Jaeger UI :16686"],
    ),
}


@dataclass(frozen=True)
class Copied:
    message: str
    project: Path
    destination: str  # as given to copier, relative to its working directory


def _copy(template: Path, root: Path, answers: dict[str, str]) -> Copied:
    destination = "orders-mcp"  # project_name defaults to the destination folder's name
    data = [argument for name, value in answers.items() for argument in ("-d", f"{name}={value}")]
    run = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--defaults", *data, str(template), destination],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    start = run.stderr.find("Next steps for ")
    assert start >= 0, f"no next steps after the copy:\n{run.stderr}"
    return Copied(run.stderr[start:].rstrip("\n"), root / destination, destination)


@pytest.fixture(scope="module")
def copies(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Copied]:
    """Every case copied once, side by side (a plain `copier copy` takes seconds, mostly waiting on git)."""
    roots = {name: tmp_path_factory.mktemp(name) for name in CASES}
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        futures = {name: pool.submit(_copy, template, roots[name], case.answers) for name, case in CASES.items()}
        return {name: future.result() for name, future in futures.items()}


def _commands(message: str) -> list[str]:
    """The commands the message names: its indented lines, without their `# ...` notes."""
    return [line.split("#", 1)[0].strip() for line in message.splitlines() if re.match(r"  \S", line)]


@pytest.mark.parametrize("name", CASES)
def test_message_fits_80_columns(copies: dict[str, Copied], name: str) -> None:
    lines = copies[name].message.splitlines()
    assert len(lines) <= MAX_LINES, copies[name].message
    too_wide = [line for line in lines if not line.isascii() or len(line) > COLUMNS]
    assert not too_wide, f"wider than {COLUMNS} columns: {too_wide}"


@pytest.mark.parametrize("name", CASES)
def test_message_names_the_steps_of_these_answers_only(copies: dict[str, Copied], name: str) -> None:
    case, copied = CASES[name], copies[name]
    message, commands = copied.message, _commands(copied.message)
    slug = "orders-mcp"
    assert message.startswith(f"Next steps for {slug}:")
    assert commands[:2] == [f"cd {copied.destination}", "uv sync"]
    for always in (f"uv run {slug} doctor", f"uv run {slug} serve", "uv run pytest"):
        assert always in commands
    assert (f"uv run {slug} token --scope data:read" in commands) is case.http
    assert (f"uv run {slug} serve --transport stdio" in commands) is (case.http and case.stdio)
    assert ("docker compose up --build" in commands) is case.http
    started = [command.split()[4:] for command in commands if command.startswith("docker compose up -d ")]
    assert started == ([sorted(case.services, key=SERVICES.index)] if case.services else [])
    for other in set(SERVICES) - case.services:
        assert not re.search(rf"\b{other}\b", message), other
    for text in case.present:
        assert text in message
    for text in case.absent:
        assert text not in message
    assert "README.md" in message and "docs/README.md" in message


@pytest.mark.parametrize("name", CASES)
def test_every_command_named_exists_in_the_project(copies: dict[str, Copied], name: str) -> None:
    copied = copies[name]
    project = copied.project
    pyproject = (project / "pyproject.toml").read_text()
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package"]
    cli = (project / "src" / package / "cli.py").read_text()
    compose_file = project / "compose.yaml"
    compose = yaml.safe_load(compose_file.read_text())["services"] if compose_file.exists() else {}
    for command in _commands(copied.message):
        words = command.split()
        if words[0] == "cd":
            assert (project.parent / words[1]).resolve() == project.resolve()
        elif words == ["uv", "sync"]:
            assert (project / "pyproject.toml").is_file()
        elif words == ["uv", "run", "pytest"]:
            assert (project / "tests").is_dir() and "pytest" in pyproject
        elif words[:2] == ["uv", "run"]:
            slug, subcommand, *options = words[2:]
            assert f'\n{slug} = "{package}.cli:main"' in pyproject, slug
            assert f'add_parser("{subcommand}"' in cli, subcommand
            for option in (word for word in options if word.startswith("--")):
                assert f'add_argument("{option}"' in cli, option
        elif words[:4] == ["docker", "compose", "up", "-d"]:
            assert words[4:] and set(words[4:]) <= set(compose), words[4:]
        elif words == ["docker", "compose", "up", "--build"]:
            assert "build" in compose["server"]
        else:
            pytest.fail(f"a command the test does not know: {command}")
    for document in re.findall(r"[\w/.-]+\.md", copied.message):
        assert (project / document).is_file(), document
