"""Password hashing for local accounts (argon2id), and checks of configured basic-auth passwords."""

from __future__ import annotations

import hmac
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def is_hash(stored: str) -> bool:
    return stored.startswith("$argon2")


@cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows, made with the same parameters as real ones."""
    return _hasher.hash(secrets.token_urlsafe(32))


def verify_password(stored: str | None, candidate: str) -> bool:
    """Check a candidate against an argon2 hash or a plain configured password (None: no such
    account); always one argon2 verification, so the time taken tells nothing about which."""
    plain = None if stored is None or is_hash(stored) else stored
    hashed = _dummy_hash() if stored is None or plain is not None else stored
    try:
        matches: bool = _hasher.verify(hashed, candidate)
    except (VerificationError, InvalidHashError):
        matches = False
    if plain is not None:
        return hmac.compare_digest(plain.encode(), candidate.encode())
    return stored is not None and matches
