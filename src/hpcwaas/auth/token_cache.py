"""A few seconds' memory of the bearer tokens this server issued and recently checked.

Every API request carries a token; looking it up in the database on each one cost about a
third of a cached request's time. A token seen within ``auth.token_cache_seconds`` is taken
from here instead. A revocation made in this process (logout, ``DELETE /users/{id}/tokens``)
empties the cache at once; one made elsewhere (``hpcwaas-api tokens revoke``, another
replica) takes effect here within those seconds. An expired token is never served from here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hpcwaas.auth.identity import Identity

# Enough for every active client of a large deployment; past it the cache starts over
# rather than tracking recency (an entry costs a dict slot and lives only seconds).
MAX_ENTRIES = 10_000


class TokenCache:
    """Identities by token hash, each kept ``seconds`` after its database check."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Identity]] = {}

    def get(self, token_hash: str) -> Identity | None:
        """The identity behind the token if it was checked recently and has not expired."""
        if self.seconds <= 0:
            return None
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        checked_until, identity = entry
        expires = identity.token_expires_at
        if time.monotonic() >= checked_until or (
            expires is not None and expires <= datetime.now(UTC)
        ):
            del self._entries[token_hash]
            return None
        return identity

    def put(self, token_hash: str, identity: Identity) -> None:
        """Remember a token the database just vouched for."""
        if self.seconds <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + self.seconds, identity)

    def clear(self) -> None:
        """Forget every token: after a revocation in this process, so it takes effect now."""
        self._entries.clear()
