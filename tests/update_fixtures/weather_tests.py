"""forecast: any caller, no scope needed."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import mcp_types as mt
from fastmcp import Client

from PACKAGE.settings import Settings

Connect = Callable[..., AbstractAsyncContextManager[Client[Any]]]


async def test_forecast_for_a_known_city(connect: Connect, settings: Settings) -> None:
    async with connect(settings) as client:
        result = await client.call_tool("forecast", {"city": " Oslo "})
    assert result.structured_content == {"city": "Oslo", "summary": "snow", "high_c": -2}


async def test_an_unknown_city_is_an_error_the_caller_reads(connect: Connect, settings: Settings) -> None:
    async with connect(settings) as client:
        result = await client.call_tool("forecast", {"city": "Atlantis"}, raise_on_error=False)
    assert result.is_error
    assert result.content == [mt.TextContent(type="text", text="No forecast for 'Atlantis'")]


async def test_forecast_needs_no_scope(connect: Connect, settings: Settings) -> None:
    async with connect(settings) as client:
        names = [tool.name for tool in await client.list_tools()]
    assert names == ["forecast"]


async def test_a_caller_holding_every_scope_sees_only_our_tools(connect: Connect, settings: Settings) -> None:
    async with connect(settings, "inventory:read", "data:read", "admin") as client:
        names = sorted(tool.name for tool in await client.list_tools())
    assert names == ["forecast", "stock_level"]
