"""A read tool that needs the `data:read` scope."""

from __future__ import annotations

from fastmcp.exceptions import ToolError
from fastmcp.server.auth import require_scopes
from fastmcp.tools import tool
from pydantic import BaseModel, Field

from ..observe import record_arguments
from ..principal import caller


class Note(BaseModel):
    id: str
    title: str
    body: str


def _sample_notes() -> list[Note]:
    return [
        Note(id="n-1", title="Runbook: rotate signing keys", body="Rotate the IdP keys, then wait one JWKS refresh."),
        Note(id="n-2", title="On-call handbook", body="Page the owner of the failing tool; check its traces first."),
        Note(id="n-3", title="Rate limits", body="Each tenant gets its own budget per tool."),
    ]


# Sample data, one set per tenant: `token`'s default tenant, stdio's, and the example tenants (the
# Keycloak realm's users are in acme). Replace with your data source, keyed by the caller's tenant.
NOTES: dict[str, list[Note]] = {tenant: _sample_notes() for tenant in ("default", "local", "acme", "globex")}


@record_arguments("limit")  # the query may hold personal data: not recorded
@tool(auth=require_scopes("data:read"), annotations={"readOnlyHint": True, "idempotentHint": True})
def search_notes(
    query: str = Field(min_length=1, max_length=200, description="Words to look for"),
    limit: int = Field(default=5, ge=1, le=50),
) -> list[Note]:
    """Search the caller's tenant's notes by title and body (case-insensitive)."""
    tenant = caller().tenant
    notes = NOTES.get(tenant)
    if notes is None:
        # Never another tenant's data in its place.
        raise ToolError(f"No notes for tenant {tenant!r}: this server holds no data for it")
    words = query.lower().split()
    return [note for note in notes if all(w in f"{note.title} {note.body}".lower() for w in words)][:limit]
