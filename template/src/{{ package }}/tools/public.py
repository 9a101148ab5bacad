"""A tool any authenticated caller may use."""

from __future__ import annotations

from fastmcp.tools import tool
from pydantic import BaseModel

from ..principal import caller


class Identity(BaseModel):
    subject: str
    tenant: str
    client_id: str
    scopes: list[str]
    roles: list[str]
    transport: str


@tool(annotations={"readOnlyHint": True, "idempotentHint": True})
def whoami() -> Identity:
    """Who the server thinks you are: subject, tenant, scopes and roles."""
    principal = caller()
    return Identity(
        subject=principal.subject,
        tenant=principal.tenant,
        client_id=principal.client_id,
        scopes=sorted(principal.scopes),
        roles=sorted(principal.roles),
        transport=principal.transport,
    )
