"""Raw MCP requests over HTTP (standard library): readiness probes and sanity checks."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .procs import BenchError, tail

TOOLS_LIST = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
# Loopback only: never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post_tools_list(url: str, token: str | None, timeout: float = 5.0) -> tuple[int, Any]:
    """(HTTP status, decoded JSON-RPC message or None) for one stateless `tools/list`."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=TOOLS_LIST, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, _decode(response.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, None


def _decode(text: str) -> Any:
    """A JSON body, or the first `data:` line of an SSE stream."""
    for line in text.splitlines():
        if line.startswith("data:"):
            return json.loads(line[5:])
    return json.loads(text) if text.strip() else None


def tool_names(message: Any) -> list[str]:
    if not isinstance(message, dict) or "result" not in message:
        return []
    return [str(tool["name"]) for tool in message["result"].get("tools", [])]


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, token: str | None, tool: str, started: float, log: Path, timeout: float
) -> float:
    """Seconds from `started` (perf_counter before the process was spawned) to a `tools/list` naming `tool`."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with code {proc.returncode} before it answered; log {log}:\n{tail(log)}")
        try:
            status, message = post_tools_list(url, token, timeout=2.0)
        except (OSError, ValueError):
            status, message = 0, None
        if status == 200 and tool in tool_names(message):
            return time.perf_counter() - started
        time.sleep(0.005)
    raise BenchError(f"server did not list {tool!r} within {timeout:.0f} s; log {log}:\n{tail(log)}")
