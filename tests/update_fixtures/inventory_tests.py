"""stock_level: the caller's tenant's stock, for callers holding `inventory:read`, at most 3 a minute."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import mcp_types as mt
import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from PACKAGE.settings import Settings

Connect = Callable[..., AbstractAsyncContextManager[Client[Any]]]


async def test_stock_level_reads_the_callers_tenant_and_names_the_caller(connect: Connect, settings: Settings) -> None:
    async with connect(settings, "inventory:read", subject="bob", tenant="globex") as client:
        level = await client.call_tool("stock_level", {"sku": "WIDGET-1"})
    assert level.structured_content == {"sku": "WIDGET-1", "on_hand": 5, "checked_by": "bob"}


async def test_a_tenant_without_inventory_is_refused(connect: Connect, settings: Settings) -> None:
    async with connect(settings, "inventory:read", tenant="umbrella") as client:
        result = await client.call_tool("stock_level", {"sku": "WIDGET-1"}, raise_on_error=False)
    assert result.is_error
    assert result.content == [mt.TextContent(type="text", text="No inventory for tenant 'umbrella'")]


async def test_a_malformed_sku_is_refused(connect: Connect, settings: Settings) -> None:
    async with connect(settings, "inventory:read") as client:
        result = await client.call_tool("stock_level", {"sku": "widget 1"}, raise_on_error=False)
    assert result.is_error
    [message] = result.content
    assert isinstance(message, mt.TextContent)
    assert "sku" in message.text


async def test_stock_level_needs_inventory_read(connect: Connect, settings: Settings) -> None:
    async with connect(settings, "data:read") as client:
        names = [tool.name for tool in await client.list_tools()]
        with pytest.raises(MCPError, match="requires scope inventory:read"):  # HTTP 403: step-up
            await client.call_tool("stock_level", {"sku": "WIDGET-1"})
    assert "stock_level" not in names


async def test_stock_level_answers_three_calls_a_minute(connect: Connect, settings: Settings) -> None:
    async with connect(settings, "inventory:read") as client:
        results = [await client.call_tool("stock_level", {"sku": "GADGET-7"}, raise_on_error=False) for _ in range(4)]
    assert [result.is_error for result in results] == [False, False, False, True]
    [message] = results[-1].content
    assert isinstance(message, mt.TextContent)
    assert message.text.startswith("Rate limit exceeded for tool 'stock_level'")
