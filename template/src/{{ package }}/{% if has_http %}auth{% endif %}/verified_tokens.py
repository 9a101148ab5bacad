"""Tokens already verified, so a client's next calls skip the signature check.

A client sends the same bearer token with every request until it expires. Checking it again
costs an RSA verification and a key import per call, for the same answer, so a token that
passed every check is remembered until it expires, or for at most `ttl` seconds. Refused
tokens are never remembered.

The cache holds at most `max_bytes`: each token counts its own length plus the memory of its
decoded claims and scopes (measured, not estimated: a token of tiny nested claims decodes to
many times its size) plus a fixed `ENTRY_OVERHEAD`. When full, the least recently used tokens are
forgotten (and verified again if they come back); a token larger than the whole budget is not kept.
When the signing keys are fetched again, tokens signed by a key that left the set are forgotten.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from fastmcp.server.auth import AccessToken

# What one remembered token costs beyond its text and claims: the AccessToken object, its
# fields, this entry and the cache's slot for it: about 1.4 KiB measured with tracemalloc, with room to spare.
ENTRY_OVERHEAD = 3072


@dataclass(frozen=True, slots=True)
class _Entry:
    access: AccessToken
    key_id: str | None
    valid_until: float
    size: int


class VerifiedTokens:
    def __init__(self, *, max_bytes: int, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._tokens: OrderedDict[str, _Entry] = OrderedDict()
        self.size = 0  # bytes, as counted by entry_size

    def __len__(self) -> int:
        return len(self._tokens)

    def get(self, token: str) -> AccessToken | None:
        entry = self._tokens.get(token)
        if entry is None:
            return None
        if self._clock() >= entry.valid_until:
            self._forget(token)
            return None
        self._tokens.move_to_end(token)
        return entry.access

    def put(self, access: AccessToken, key_id: str | None) -> None:
        """Remember `access`, verified with the signing key `key_id` (None: the token named none)."""
        size = entry_size(access)
        if size > self.max_bytes:
            return
        valid_until = self._clock() + self.ttl
        if access.expires_at is not None:
            valid_until = min(valid_until, access.expires_at)
        self._forget(access.token)
        self._tokens[access.token] = _Entry(access, key_id, valid_until, size)
        self.size += size
        while self.size > self.max_bytes:
            self._forget(next(iter(self._tokens)))

    def keep_keys(self, key_ids: Collection[str]) -> None:
        """Forget every token whose signing key is not among `key_ids` (the key set just fetched).

        A token that named no key id cannot be matched to a key, so it is checked again too.
        """
        for token in [token for token, entry in self._tokens.items() if entry.key_id not in key_ids]:
            self._forget(token)

    def _forget(self, token: str) -> None:
        entry = self._tokens.pop(token, None)
        if entry is not None:
            self.size -= entry.size


def entry_size(access: AccessToken) -> int:
    """Bytes one remembered token holds: its text, its decoded claims and scopes, and the overhead."""
    return sys.getsizeof(access.token) + json_size(access.claims) + json_size(access.scopes) + ENTRY_OVERHEAD


def json_size(value: object) -> int:
    """Memory of a decoded JSON value, containers included (shared small values counted each time)."""
    total, pending = 0, [value]
    while pending:  # a loop, not recursion: claims may nest deeper than Python's recursion limit
        item = pending.pop()
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return total
