"""Dev tokens: the local RSA signing key and the access tokens it signs for this server's audience.

`<cli> token` loads this module and the settings only: no FastMCP, no server (dev.py serves the key).
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joserfc import jwk, jwt

from ..settings import ConfigurationError

if TYPE_CHECKING:
    from ..settings import Settings


class DevModeError(ConfigurationError):
    """Dev auth was asked for something only production auth may do."""


def load_or_create_key(path: Path) -> jwk.RSAKey:
    """The dev signing key; generated on first use into a file (and folder) only its owner can read."""
    if path.exists():
        stat = path.stat()
        return _load_key(path, stat.st_mtime_ns, stat.st_size)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = jwk.RSAKey.generate_key(2048)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.as_pem(private=True))
    return key


@functools.lru_cache(maxsize=8)
def _load_key(path: Path, mtime_ns: int, size: int) -> jwk.RSAKey:
    """Reading and checking an RSA private key takes tens of ms: once per version of the file."""
    try:
        return jwk.RSAKey.import_key(path.read_bytes())
    except ValueError as exc:
        raise DevModeError(f"{path} is not an RSA private key; delete it to get a new one") from exc


def public_jwks(key: jwk.RSAKey) -> dict[str, Any]:
    public = dict(key.as_dict(private=False))
    public.update({"kid": key.thumbprint(), "use": "sig", "alg": "RS256"})
    return {"keys": [public]}


def mint_token(
    settings: Settings,
    *,
    subject: str,
    tenant: str,
    scopes: list[str],
    expires_in: int = 3600,
) -> str:
    """A dev access token for this server, shaped like an identity provider's."""
    key = load_or_create_key(settings.dev_key_file)
    now = int(time.time())
    claims = {
        "iss": settings.dev_issuer,
        "aud": settings.expected_audience,
        "sub": subject,
        settings.tenant_claim: tenant,
        "client_id": "dev-cli",
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "RS256", "kid": key.thumbprint(), "typ": "at+jwt"}, claims, key)
