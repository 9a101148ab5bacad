"""fastmcp's `Client` as a long-lived process: one MCP session per JSON line on stdin, one answer line each.

Runs inside a generated project's environment (it has fastmcp; the template's tooling does not):
`<project>/.venv/bin/python -P tests/peers/mcp_sessions.py`. A request is {"url", "token", "calls":
[[tool, arguments], ...], "headers"?: {name: value}} (headers sent with every request of the session,
e.g. a `traceparent`); the answer is {"tools": [...], "calls": {tool: {"is_error", "text",
"structured"}}}, or {"error": ...}. tests/peers/mcp_client.py drives it.
"""

import asyncio
import json
import sys
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError


async def call(client: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        result = await client.call_tool(name, arguments, raise_on_error=False)
    except MCPError as refused:  # refused over HTTP (403 insufficient_scope), not by the tool
        return {"is_error": True, "text": str(refused), "structured": None}
    text = "".join(getattr(part, "text", "") for part in result.content)
    return {"is_error": result.is_error, "text": text, "structured": result.structured_content}


async def session(request: dict[str, Any]) -> dict[str, Any]:
    target: Any = request["url"]
    if request.get("headers"):
        target = StreamableHttpTransport(request["url"], headers=request["headers"])
    async with Client(target, auth=request["token"]) as client:
        tools = sorted(tool.name for tool in await client.list_tools())
        calls = {name: await call(client, name, arguments) for name, arguments in request["calls"]}
    return {"tools": tools, "calls": calls}


for line in sys.stdin:
    try:
        answer = asyncio.run(session(json.loads(line)))
    except Exception as error:
        answer = {"error": repr(error)}
    print(json.dumps(answer), flush=True)
