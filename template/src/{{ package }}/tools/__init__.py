"""The server's tools. Add a module here, list its functions in TOOL_FUNCTIONS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastmcp import FastMCP
from fastmcp.tools import Tool

from ..observe import recorded_arguments
from ..ratelimit import declared_limit
from .admin import server_info
from .data import search_notes
from .public import whoami

TOOL_FUNCTIONS: tuple[Callable[..., object], ...] = (whoami, search_notes, server_info)


@dataclass
class Registered:
    """The tools added to a server, with what each declared next to its definition."""

    tools: list[Tool] = field(default_factory=list)
    limits: dict[str, str] = field(default_factory=dict)  # @rate_limit
    recorded_arguments: dict[str, tuple[str, ...]] = field(default_factory=dict)  # @record_arguments


def register_tools(mcp: FastMCP) -> Registered:
    """Add every tool to `mcp`."""
    registered = Registered()
    for fn in TOOL_FUNCTIONS:
        tool = mcp.add_tool(fn)
        registered.tools.append(tool)
        if (limit := declared_limit(fn)) is not None:
            registered.limits[tool.name] = limit
        if fields := recorded_arguments(fn):
            registered.recorded_arguments[tool.name] = fields
    return registered


def required_scopes(tools: list[Tool]) -> list[str]:
    """Every scope the tools' `require_scopes` checks ask for, for RFC 9728 metadata."""
    scopes: set[str] = set()
    for tool in tools:
        checks = tool.auth if isinstance(tool.auth, list) else [tool.auth]
        for check in checks:
            scopes.update(getattr(check, "required_scopes", ()))
    return sorted(scopes)
