"""What the server asks of an identity provider; the module beside this one answers for the chosen IdP.

The settings take their IdP defaults from here, so these modules import none of the server's own
modules when they load (the settings only for type checking).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from ...settings import OAuthFlow, Settings


class IdentityProvider(Protocol):
    """Everything specific to one IdP that the settings, the auth code and `doctor` use."""

    # What its users call it, e.g. "Keycloak".
    name: str
    # The claim that names the caller's tenant: the default of TENANT_CLAIM.
    tenant_claim: str
    # How MCP clients get tokens, the default of OAUTH_FLOW: "remote" when the IdP registers MCP
    # clients itself (RFC 7591), else "proxy" (FastMCP's OAuth proxy, one client at the IdP).
    oauth_flow: OAuthFlow
    # Claims that list granted scopes besides `scope` and `scp`, the ones FastMCP reads.
    scope_claims: tuple[str, ...]

    def jwks_uri(self, settings: Settings) -> str:
        """Where the issuer publishes its signing keys (unless IDP_JWKS_URI is set)."""
        ...

    def endpoints(self, settings: Settings) -> tuple[str, str]:
        """Its authorization and token endpoints, for the OAuth proxy (unless both are set)."""
        ...

    def default_audience(self, settings: Settings) -> str:
        """The `aud` its access tokens for this server carry (unless AUDIENCE is set)."""
        ...

    def extra_roles(self, claims: Mapping[str, Any]) -> list[str]:
        """Roles it grants outside a top-level `roles` claim, which any token may carry."""
        ...

    def proxy_options(self, settings: Settings, scopes: list[str]) -> dict[str, Any]:
        """What its OAuth proxy class (ProviderOAuthProxy) takes besides FastMCP's shared options."""
        ...

    def issuer_problem(self, issuer: str) -> str | None:
        """Why `issuer` does not look like one of its issuers (`doctor` warns), or None."""
        ...


class IdentityProviderSettings(BaseModel):
    """What an identity provider adds to the shared settings: nothing, unless its module subclasses this."""


def issuer_base(settings: Settings) -> str:
    """The issuer without its trailing slash; the URLs an IdP derives from it start so."""
    return (settings.idp_issuer or "").rstrip("/")


def string_list(value: object) -> list[str]:
    """A claim that lists strings; any other value grants nothing."""
    return [str(item) for item in value] if isinstance(value, list) else []
