"""JWT checks on top of FastMCP's JWTVerifier: a bounded lifetime, this IdP's scope claims, the
tenant, and signing keys that rotate without a restart and survive a short identity-provider outage.

FastMCP checks signature, issuer, audience, `nbf` (30 s of clock skew) and `exp` when present.
This adds that `exp` is required, that a token lives at most `max_lifetime` seconds (`exp - iat`,
or `exp - now` without `iat`), that `iat` is not in the future beyond the same 30 s, and that the
token names its tenant (TenantRule). The key handling uses private JWTVerifier members that no
public option covers; tests/server/test_fastmcp_hooks.py names the FastMCP version when one of them changes.
"""

from __future__ import annotations

import functools
import logging
import math
import ssl
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

import httpx2
from fastmcp.server.auth import AccessToken
from fastmcp.server.auth.providers.jwt import JWTVerifier
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from ..principal import TenantError, TenantRule, TenantToken
from ..settings import TenantFallback, env_name
from .providers import PROVIDER
from .providers.base import string_list
from .verified_tokens import VerifiedTokens

logger = logging.getLogger(__name__)

# Signing keys are fetched again after this long.
JWKS_CACHE_SECONDS = 3600
# A token signed with a key id not yet fetched (the IdP rotated its keys) fetches the key set again,
# at most once per this many seconds, so a flood of made-up key ids cannot hammer the IdP.
JWKS_REFRESH_INTERVAL_SECONDS = 10.0
# While the key set cannot be fetched, keys already fetched stay usable for this long; a key id never
# seen is refused.
JWKS_STALE_SECONDS = 24 * 3600
# A verified token is trusted again without a signature check until it expires, for at most this long;
# tokens signed by a key that left the JWKS are forgotten when it is fetched again.
VERIFIED_TOKEN_SECONDS = 300.0
# Memory for verified tokens, counted as verified_tokens.entry_size does; least recently used out first.
VERIFIED_TOKENS_MAX_BYTES = 16 * 2**20
# How far in the future `iat` may be, as FastMCP allows for `nbf`: clocks drift.
CLOCK_SKEW_SECONDS = 30
# The longest token lifetime accepted unless configured (MAX_TOKEN_LIFETIME).
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
# How long one fetch of the key set may take, as FastMCP's own fetch allows.
JWKS_FETCH_TIMEOUT_SECONDS = 10.0


class AccessTokenVerifier(JWTVerifier):
    """Verifies signature, issuer, audience, lifetime, not-before and tenant; collects scopes.

    The tenant is the `tenant_claim` value; a token without it is refused unless `tenant_fallback`
    names another source (a single-tenant deployment's choice). `allowed_tenants` empty admits
    every tenant; otherwise the token's tenant must be listed. The verified token carries its
    tenant (TenantToken). Scopes are required per tool, not here: a token holds the scopes of
    every claim this IdP uses.
    """

    def __init__(
        self,
        *,
        public_key: str | bytes | None = None,
        jwks_uri: str | None = None,
        issuer: str | list[str] | None = None,
        audience: str | list[str] | None = None,
        algorithm: str | None = None,
        base_url: str | None = None,
        tenant_claim: str = "tenant",
        allowed_tenants: Iterable[str] = (),
        tenant_fallback: TenantFallback = "none",
        fixed_tenant: str | None = None,
        max_lifetime: int = MAX_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        super().__init__(
            public_key=public_key,
            jwks_uri=jwks_uri,
            issuer=issuer,
            audience=audience,
            algorithm=algorithm,
            base_url=base_url,
            jwks_refresh_interval=JWKS_REFRESH_INTERVAL_SECONDS,
        )
        # Private: no constructor option sets the key cache lifetime (guard: tests/server/test_fastmcp_hooks.py).
        self._cache_ttl = JWKS_CACHE_SECONDS
        self._key_refresh_seconds = JWKS_REFRESH_INTERVAL_SECONDS  # as passed above, for the log
        self.tenants = TenantRule(claim=tenant_claim, fallback=tenant_fallback, fixed_tenant=fixed_tenant)
        self.allowed_tenants = frozenset(allowed_tenants)
        self.max_lifetime = max_lifetime
        self._jwks_error: str | None = None
        self._jwks_fetches = 0
        self._stale_use_logged = False
        self.verified = VerifiedTokens(max_bytes=VERIFIED_TOKENS_MAX_BYTES, ttl=VERIFIED_TOKEN_SECONDS)

    async def load_access_token(self, token: str) -> AccessToken | None:
        access = self.verified.get(token)
        if access is None:
            access = await self._verify(token)
            if access is not None:
                self.verified.put(access, _key_id(token))
        return access

    async def _verify(self, token: str) -> TenantToken | None:
        access = await super().load_access_token(token)
        if access is None:
            return None
        problem = _lifetime_problem(access.claims, time.time(), self.max_lifetime)
        if problem:
            logger.warning("Bearer token rejected for client %s: %s", access.client_id, problem)
            return None
        extra = [scope for claim in PROVIDER.scope_claims for scope in string_list(access.claims.get(claim))]
        if extra:
            access = access.model_copy(update={"scopes": list(dict.fromkeys([*access.scopes, *extra]))})
        try:
            tenant = self.tenants.tenant_of(access)
        except TenantError as refused:
            logger.warning("Bearer token rejected for client %s: %s", access.client_id, refused)
            return None
        if self.allowed_tenants and tenant not in self.allowed_tenants:
            logger.warning(
                "Bearer token rejected for client %s: tenant %r is not in %s",
                access.client_id,
                tenant,
                env_name("allowed_tenants"),
            )
            return None
        return TenantToken(**access.model_dump(), tenant=tenant)

    # Replaces a private JWTVerifier hook (guard: tests/server/test_fastmcp_hooks.py). FastMCP's fetch
    # builds a TLS context for every fetch, loading the CA bundle again: tens of milliseconds of CPU
    # with the event loop blocked. This one uses the process's single context.
    async def _fetch_jwks(self) -> dict[str, Any]:
        if not self.jwks_uri:
            raise ValueError("JWKS URI not configured")  # as FastMCP's: a fixed public key is never fetched
        self._jwks_fetches += 1
        try:
            jwks = await _get_json(self.jwks_uri)
        except Exception as exc:
            # The first line only: HTTP errors append a documentation link.
            detail = str(exc).splitlines()
            self._jwks_error = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
            self._stale_use_logged = False
            raise
        self._jwks_error = None
        self.verified.keep_keys(_published_key_ids(jwks))
        return jwks

    # Private JWTVerifier hook; reads `_jwks_cache`, `_jwks_cache_time` (guard: tests/server/test_fastmcp_hooks.py).
    async def _get_jwks_key(self, kid: str | None) -> str:
        fetches = self._jwks_fetches
        try:
            return await super()._get_jwks_key(kid)
        except ValueError as exc:
            stale = self._cached_key(kid)
            age = time.monotonic() - self._jwks_cache_time
            if stale is not None and age < JWKS_STALE_SECONDS:
                if not self._stale_use_logged:
                    self._stale_use_logged = True
                    logger.warning(
                        "JWKS fetch failed (%s); still using key id %r fetched %.0f s ago",
                        self._jwks_error or "refresh throttled",
                        kid,
                        age,
                    )
                return stale
            if self._jwks_error:
                cause = f"JWKS fetch failed ({self._jwks_error})"
            elif self._jwks_fetches == fetches:
                cause = f"JWKS fetched less than {self._key_refresh_seconds:g} s ago, not fetched again yet"
            elif kid and kid not in self._jwks_cache and "not found" in str(exc):
                cause = "not in the JWKS just fetched"
            else:
                cause = str(exc)
            logger.warning(
                "Bearer token rejected: %s; unknown key id %r (known key ids: %s, from %s)",
                cause,
                kid,
                ", ".join(repr(name) for name in sorted(self._jwks_cache)) or "none",
                self.jwks_uri,
            )
            raise

    def _cached_key(self, kid: str | None) -> str | None:
        """A key fetched before, as FastMCP would pick it from a fresh cache."""
        # JWTVerifier's private key cache (guard: tests/server/test_fastmcp_hooks.py).
        if kid:
            return self._jwks_cache.get(kid)
        return next(iter(self._jwks_cache.values())) if len(self._jwks_cache) == 1 else None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The CA bundle httpx2 trusts by default (SSL_CERT_FILE and SSL_CERT_DIR honoured), loaded once."""
    return httpx2.create_ssl_context()


async def _get_json(url: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(timeout=JWKS_FETCH_TIMEOUT_SECONDS, verify=_tls_context()) as client:
        response = await client.get(url)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document


def _lifetime_problem(claims: Mapping[str, Any], now: float, max_lifetime: float) -> str | None:
    """Why `exp` and `iat` refuse a token (already checked by FastMCP for expiry), or None."""
    expires, issued = claims.get("exp"), claims.get("iat")
    if not _is_time(expires):
        return "no `exp` claim: it would never expire" if expires is None else "`exp` is not a time"
    if issued is not None and not _is_time(issued):
        return "`iat` is not a time"
    if issued is not None and issued > now + CLOCK_SKEW_SECONDS:
        return f"`iat` is {issued - now:.0f} s in the future"
    lifetime = expires - (now if issued is None else issued)
    if lifetime > max_lifetime:
        return f"it lives {lifetime:.0f} s, longer than {env_name('max_token_lifetime')}={max_lifetime:g}"
    return None


def _is_time(value: object) -> TypeGuard[float]:
    """A JSON number that is a finite time (JSON decoders also accept NaN and Infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _key_id(token: str) -> str | None:
    """The `kid` a compact JWT's header names (None: none, or not a JWT)."""
    try:
        kid = extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError):
        return None
    return kid if isinstance(kid, str) else None


def _published_key_ids(jwks: Mapping[str, Any]) -> set[str]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return set()
    return {key["kid"] for key in keys if isinstance(key, dict) and isinstance(key.get("kid"), str)}
