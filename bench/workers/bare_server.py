"""Bare FastMCP: the sample `search_notes` tool with no auth, limits, tracing or audit log; stateless HTTP.

Run by the bench with the rendered project's Python: `python bare_server.py PORT`.
reference_server.py builds the same server with the parts a user would add by hand.
"""

from __future__ import annotations

import sys
from typing import Any

from fastmcp import FastMCP
from pydantic import BaseModel, Field


class Note(BaseModel):
    id: str
    title: str
    body: str


# The same sample data and search as the generated project's tools/data.py.
NOTES = [
    Note(id="n-1", title="Runbook: rotate signing keys", body="Rotate the IdP keys, then wait one JWKS refresh."),
    Note(id="n-2", title="On-call handbook", body="Page the owner of the failing tool; check its traces first."),
    Note(id="n-3", title="Rate limits", body="Each tenant gets its own budget per tool."),
]


def search_notes(
    query: str = Field(min_length=1, max_length=200, description="Words to look for"),
    limit: int = Field(default=5, ge=1, le=50),
) -> list[Note]:
    """Search the notes by title and body (case-insensitive)."""
    words = query.lower().split()
    return [note for note in NOTES if all(w in f"{note.title} {note.body}".lower() for w in words)][:limit]


def build_server(**options: Any) -> FastMCP:
    """FastMCP serving `search_notes`; `options` (auth, middleware) go to FastMCP."""
    mcp = FastMCP(name="bare", mask_error_details=True, **options)
    mcp.tool(annotations={"readOnlyHint": True, "idempotentHint": True})(search_notes)
    return mcp


def serve(mcp: FastMCP, port: int, **http: Any) -> None:
    """Stateless streamable HTTP on loopback; `http` (ASGI middleware) goes to `mcp.run`."""
    mcp.run(transport="http", show_banner=False, host="127.0.0.1", port=port, path="/mcp", stateless_http=True, **http)


if __name__ == "__main__":
    serve(build_server(), int(sys.argv[1]))
