"""Bearer tokens issued by this server: random, stored as SHA-256 hashes, expiring, revocable.

A token is 256 random bits, so a fast hash is enough to make the stored value useless
to a reader of the database, and it keeps each request's check cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from functools import partial

from hpcwaas.auth.identity import INVALID_TOKEN, SESSION_EXPIRED, AuthenticationFailed, Identity
from hpcwaas.store import users as user_store
from hpcwaas.store.database import Database
from hpcwaas.store.users import TokenRecord

TOKEN_PREFIX = "hw_"  # noqa: S105 - a recognisable prefix, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    db: Database, user_id: str, ttl: timedelta, description: str | None = None
) -> tuple[str, TokenRecord]:
    """Create a token for ``user_id``; return the secret (shown once) and its record."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    now = datetime.now(UTC)
    record = TokenRecord(token_id, user_id, description, now, now + ttl, None)
    async with db.write() as conn:
        await user_store.insert_token(
            conn,
            token_id=token_id,
            user_id=user_id,
            token_hash=hash_token(secret),
            created_at=now,
            expires_at=record.expires_at,
            description=description,
        )
    return secret, record


async def authenticate_token(db: Database, token: str) -> Identity:
    """The identity behind a bearer token, or AuthenticationFailed with the original's wording."""
    if not token or len(token) > 512:
        raise AuthenticationFailed(INVALID_TOKEN)
    # Every request whose token is not cached comes here: the quick read path.
    found = await db.quick_read(
        partial(user_store.read_token_by_hash, token_hash=hash_token(token))
    )
    if found is None:
        raise AuthenticationFailed(INVALID_TOKEN)
    record, groups = found
    if not record.active:
        raise AuthenticationFailed(SESSION_EXPIRED)
    return Identity(
        user_id=record.user_id,
        groups=frozenset(groups),
        token_id=record.id,
        token_expires_at=record.expires_at,
    )
