"""A real MCP client for the template's tests: fastmcp's `Client` in a generated project's environment.

tests/peers/mcp_sessions.py runs there (the template's tooling has no fastmcp) as one long-lived
process: importing fastmcp takes seconds, once. Each `session` is one MCP session over HTTP.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from peers.processes import stop

MCP_SESSIONS = Path(__file__).parent / "mcp_sessions.py"  # run by the project's own Python


class McpClient:
    """fastmcp's `Client` in the generated project's environment, one session per request."""

    def __init__(self, python: Path) -> None:
        self._process = subprocess.Popen(
            [str(python), "-P", str(MCP_SESSIONS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def session(
        self,
        url: str,
        token: str,
        calls: tuple[tuple[str, dict[str, Any]], ...],
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """tools/list, then each call, in one session holding `token`; `headers` go with every request."""
        assert self._process.stdin is not None and self._process.stdout is not None
        request: dict[str, Any] = {"url": url, "token": token, "calls": calls}
        if headers:
            request["headers"] = headers
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, f"the MCP client exited with {self._process.poll()}"
        answer: dict[str, Any] = json.loads(line)
        assert "error" not in answer, answer["error"]
        return answer

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the client's loop ends at the end of its input
        stop(self._process, timeout=20, grace=20)
