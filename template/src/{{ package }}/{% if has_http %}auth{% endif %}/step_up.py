"""Step-up authorization over HTTP (MCP authorization 2025-11-25, RFC 6750 §3.1).

A tool call refused for missing scopes answers HTTP 403 with
`WWW-Authenticate: Bearer error="insufficient_scope", scope="...", resource_metadata="..."`: the
client asks the authorization server for those scopes and sends the call again. The body is a
JSON-RPC error with the refusal's message. Every other response passes through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..access import SHORTFALL_STATE, ScopeShortfall
from ..settings import Settings

# JSON-RPC's range for server-defined errors; the HTTP status and the challenge carry the meaning.
INSUFFICIENT_SCOPE = -32003


def challenge_scopes(settings: Settings, scopes: Sequence[str]) -> list[str]:
    """The `scope` of a 401 challenge: what clients ask for first (the rest comes by step-up)."""
    return list(settings.challenge_scopes or scopes)


class StepUpChallenge:
    """ASGI middleware: a POST to the MCP endpoint that AccessControl refused for missing scopes
    (it leaves a ScopeShortfall in the request's state) is answered with the 403 challenge."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self._path = settings.mcp_path
        self._metadata_url = str(build_resource_metadata_url(AnyHttpUrl(settings.resource_url)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self._path:
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send, self._metadata_url)
        await self.app(scope, exchange.receive, exchange.send)


class _Exchange:
    """One POST: its body as the app reads it (for the JSON-RPC id), its response start held back
    until the first body part.

    A streamed (SSE) response starts before the call is judged; by its first event the call is,
    so the request's state then says whether to send the response or the challenge instead.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send, metadata_url: str) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self._metadata_url = metadata_url
        self._body = bytearray()
        self._start: Message | None = None
        self._mode: Literal["holding", "passing", "replaced"] = "holding"

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and self._mode == "holding":
            self._body += message.get("body", b"")
        return message

    async def send(self, message: Message) -> None:
        if self._mode == "passing":
            await self._send(message)
        elif self._mode == "holding" and message["type"] == "http.response.start":
            self._start = message
        elif self._mode == "holding":
            shortfall = self._scope.get("state", {}).get(SHORTFALL_STATE)
            if isinstance(shortfall, ScopeShortfall):
                self._mode = "replaced"  # the rest of the refused call's response is dropped
                await self._challenge(shortfall)
                return
            self._mode = "passing"
            if self._start is not None:
                await self._send(self._start)
            await self._send(message)

    async def _challenge(self, shortfall: ScopeShortfall) -> None:
        # The SDK parsed this body as one JSON-RPC request before the call was judged.
        request_id = json.loads(self._body).get("id")
        error = {"code": INSUFFICIENT_SCOPE, "message": shortfall.message}
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}).encode()
        challenge = (
            f'Bearer error="insufficient_scope", scope="{" ".join(shortfall.scopes)}", '
            f'resource_metadata="{self._metadata_url}"'
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", challenge.encode()),
        ]
        await self._send({"type": "http.response.start", "status": 403, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})
