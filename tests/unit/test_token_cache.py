"""The short memory of checked bearer tokens (hpcwaas.auth.token_cache)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hpcwaas.auth.identity import Identity
from hpcwaas.auth.token_cache import MAX_ENTRIES, TokenCache


def _identity(expires_in: timedelta = timedelta(hours=1)) -> Identity:
    return Identity(user_id="alice", token_id="t1", token_expires_at=datetime.now(UTC) + expires_in)


def test_a_recently_checked_token_is_served_from_the_cache() -> None:
    cache = TokenCache(5.0)
    cache.put("hash", _identity())
    found = cache.get("hash")
    assert found is not None and found.user_id == "alice"


def test_a_token_is_checked_again_once_its_seconds_are_over() -> None:
    cache = TokenCache(0.05)
    cache.put("hash", _identity())
    time.sleep(0.1)
    assert cache.get("hash") is None


def test_an_expired_token_is_never_served_from_the_cache() -> None:
    cache = TokenCache(60.0)
    cache.put("hash", _identity(expires_in=timedelta(seconds=-1)))
    assert cache.get("hash") is None


def test_clearing_forgets_every_token() -> None:
    cache = TokenCache(60.0)
    cache.put("a", _identity())
    cache.put("b", _identity())
    cache.clear()
    assert cache.get("a") is None and cache.get("b") is None


def test_zero_seconds_turns_the_cache_off() -> None:
    cache = TokenCache(0.0)
    cache.put("hash", _identity())
    assert cache.get("hash") is None


def test_a_full_cache_starts_over_instead_of_growing() -> None:
    cache = TokenCache(60.0)
    for n in range(MAX_ENTRIES + 1):
        cache.put(f"hash-{n}", _identity())
    assert cache.get("hash-0") is None
    assert cache.get(f"hash-{MAX_ENTRIES}") is not None
