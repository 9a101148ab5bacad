"""An operator tool that needs the `admin` scope."""

from __future__ import annotations

import platform
import time

from fastmcp.server.auth import require_scopes
from fastmcp.tools import tool
from pydantic import BaseModel

from .. import __version__
from ..ratelimit import rate_limit

_STARTED = time.monotonic()


class ServerInfo(BaseModel):
    version: str
    python: str
    uptime_seconds: float


@rate_limit("10/minute")
@tool(auth=require_scopes("admin"), annotations={"readOnlyHint": True})
def server_info() -> ServerInfo:
    """Version, Python runtime and uptime of this server process."""
    return ServerInfo(
        version=__version__,
        python=platform.python_version(),
        uptime_seconds=round(time.monotonic() - _STARTED, 3),
    )
