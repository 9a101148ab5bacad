"""The one place that turns settings into FastMCP's auth provider.

The settings load providers/ from this package for their IdP defaults: modules loaded with the
package import none of the server's own modules (the settings only for type checking).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastmcp.server.auth import AuthProvider

    from ..settings import Settings

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
    from .idp import idp_auth_provider, tenant_fallback_warning

    if warning := tenant_fallback_warning(settings):
        logger.warning("%s", warning)
    return idp_auth_provider(settings, scopes)
