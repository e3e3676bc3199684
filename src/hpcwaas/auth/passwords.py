"""Password hashing for local accounts (argon2id), and checks of configured basic-auth passwords."""

from __future__ import annotations

import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def is_hash(stored: str) -> bool:
    return stored.startswith("$argon2")


def verify_password(stored: str, candidate: str) -> bool:
    """Check a candidate against an argon2 hash, or a plain configured password in constant time."""
    if is_hash(stored):
        try:
            return _hasher.verify(stored, candidate)
        except (VerificationError, InvalidHashError):
            return False
    return hmac.compare_digest(stored.encode(), candidate.encode())
