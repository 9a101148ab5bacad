"""Says back what it is given: a tool written the 0.2.0 way (fastmcp's `tool`, the package's internal
modules), listed in TOOL_FUNCTIONS in tools/__init__.py."""

from __future__ import annotations

from fastmcp.tools import tool

from ..observe import record_arguments
from ..principal import caller


@record_arguments("text")
@tool(annotations={"readOnlyHint": True, "idempotentHint": True})
def echo(text: str) -> str:
    """`text`, as the caller's tenant sent it."""
    return f"{caller().tenant}: {text}"
