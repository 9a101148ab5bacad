"""Dev tokens: the local RSA signing key and the access tokens it signs for this server's audience.

`<cli> token` loads this module and the settings only: no FastMCP, no server, no JOSE library (joserfc
imports every JOSE algorithm, a fifth of a second). An RS256 JWT is one PKCS#1 v1.5 signature over
SHA-256, so `cryptography` signs it here; the tests check every token against joserfc.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..settings import ConfigurationError

if TYPE_CHECKING:
    from ..settings import Settings


class DevModeError(ConfigurationError):
    """Dev auth was asked for something only production auth may do."""


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The dev signing key; generated on first use into a file (and folder) only its owner can read."""
    if path.exists():
        stat = path.stat()
        return _load_key(path, stat.st_mtime_ns, stat.st_size)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


@functools.lru_cache(maxsize=8)
def _load_key(path: Path, mtime_ns: int, size: int) -> rsa.RSAPrivateKey:
    """Once per version of the file. The RSA consistency check (70 ms, most of `token`'s own time) is
    for keys from elsewhere: this one was made by `load_or_create_key`, in a file only its owner can
    write, and the server checks every signature it makes against the public half."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise DevModeError(f"{path} is not an unencrypted PEM private key; delete it to get a new one") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DevModeError(f"{path} is not an RSA private key; delete it to get a new one")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _compact_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _public_members(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}


def key_id(key: rsa.RSAPrivateKey) -> str:
    """The key's RFC 7638 thumbprint: SHA-256 of its required members, sorted, with no whitespace."""
    return _b64url(hashlib.sha256(_compact_json(_public_members(key))).digest())


def public_pem(key: rsa.RSAPrivateKey) -> str:
    info = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return info.decode()


def public_jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    return {"keys": [{**_public_members(key), "kid": key_id(key), "use": "sig", "alg": "RS256"}]}


def mint_token(
    settings: Settings,
    *,
    subject: str,
    tenant: str,
    scopes: list[str],
    expires_in: int = 3600,
) -> str:
    """A dev access token for this server, shaped like an identity provider's (an RFC 9068 `at+jwt`)."""
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
    header = {"alg": "RS256", "kid": key_id(key), "typ": "at+jwt"}
    signing_input = f"{_b64url(_compact_json(header))}.{_b64url(_compact_json(claims))}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"
