"""The one place that turns settings into FastMCP's auth provider."""

from __future__ import annotations

import logging

from fastmcp.server.auth import AuthProvider

from ..settings import Settings, env_name

logger = logging.getLogger(__name__)


def build_auth(settings: Settings, scopes: list[str]) -> AuthProvider:
    """The resource-server auth for `settings.auth_mode`; `scopes` are advertised (RFC 9728)."""
    if settings.auth_mode == "dev":
        from .dev import dev_auth_provider

        logger.warning(
            "auth_mode=dev: tokens are signed by a local key (%s); use only on this machine",
            settings.dev_key_file,
        )
        return dev_auth_provider(settings, scopes)
    from .idp import idp_auth_provider

    if warning := tenant_fallback_warning(settings):
        logger.warning("%s", warning)
    return idp_auth_provider(settings, scopes)


def tenant_fallback_warning(settings: Settings) -> str | None:
    """What a tenant fallback opted in to means (None without one); the start-up log and doctor say it."""
    claim = f"tokens without a {settings.tenant_claim!r} claim"
    if settings.tenant_fallback == "client_id":
        return (
            f"{env_name('tenant_fallback')}=client_id: {claim} act for the tenant named by their client id; "
            "safe only while no one else can register clients at the identity provider (they choose the id)"
        )
    if settings.tenant_fallback == "fixed":
        return (
            f"{env_name('tenant_fallback')}=fixed: {claim} act for tenant {settings.fixed_tenant!r}; "
            "for a single-tenant deployment only"
        )
    return None
