"""fastmcp's `Client` calling tools for a batch: a JSON list of calls on stdin, a JSON list of results out.

Runs inside a generated project's environment (it has fastmcp; the template's tooling does not):
`<project>/.venv/bin/python -P tests/peers/mcp_tool_calls.py`, one interpreter for the batch. Each call
is {"url", "token", "tool", "arguments"?}; each result {"tools", "is_error", "text", "data"}.
"""

import asyncio
import json
import sys
from typing import Any

from fastmcp import Client


async def main() -> None:
    out: list[dict[str, Any]] = []
    for item in json.load(sys.stdin):
        async with Client(item["url"], auth=item["token"]) as client:
            tools = sorted(tool.name for tool in await client.list_tools())
            try:
                result = await client.call_tool(item["tool"], item.get("arguments") or {}, raise_on_error=False)
            except Exception as error:  # a JSON-RPC error: over HTTP, a missing scope (403 step-up)
                out.append({"tools": tools, "is_error": True, "text": str(error), "data": None})
                continue
            text = " ".join(getattr(part, "text", "") for part in result.content)
            out.append({"tools": tools, "is_error": result.is_error, "text": text, "data": result.structured_content})
    print(json.dumps(out))


asyncio.run(main())
