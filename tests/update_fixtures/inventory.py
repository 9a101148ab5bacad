"""Stock levels of the caller's warehouse."""

from __future__ import annotations

from pydantic import BaseModel, Field

from PACKAGE.toolkit import ToolError, caller, rate_limit, record_arguments, require_scopes, tool


class StockLevel(BaseModel):
    sku: str
    on_hand: int
    checked_by: str


# Stock per tenant, then per SKU. Our ERP feed replaces this.
STOCK: dict[str, dict[str, int]] = {
    "acme": {"WIDGET-1": 42, "GADGET-7": 0},
    "globex": {"WIDGET-1": 5},
}


@rate_limit("3/minute")
@record_arguments("sku")
@tool(auth=require_scopes("inventory:read"), annotations={"readOnlyHint": True, "idempotentHint": True})
def stock_level(sku: str = Field(pattern=r"^[A-Z0-9-]{1,32}$", description="Stock-keeping unit")) -> StockLevel:
    """How many of `sku` your organisation has on hand."""
    who = caller()
    stock = STOCK.get(who.tenant)
    if stock is None:
        raise ToolError(f"No inventory for tenant {who.tenant!r}")
    if sku not in stock:
        raise ToolError(f"Unknown SKU {sku!r}")
    return StockLevel(sku=sku, on_hand=stock[sku], checked_by=who.subject)
