"""Users and their bearer tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.tables import tokens, users


@dataclass(frozen=True)
class UserRecord:
    id: str
    display_name: str | None
    email: str | None
    groups: tuple[str, ...]


@dataclass(frozen=True)
class TokenRecord:
    id: str
    user_id: str
    description: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > datetime.now(UTC)


async def ensure_user(
    conn: AsyncConnection,
    user_id: str,
    *,
    display_name: str | None = None,
    email: str | None = None,
    groups: list[str] | None = None,
) -> None:
    """Record a user the first time they are seen; refresh what the identity provider says.

    A display name or e-mail longer than its column (an identity provider may send one) is
    cut to fit: PostgreSQL would refuse the login otherwise.
    """
    display_name = display_name[:255] if display_name else display_name
    email = email[:320] if email else email
    row = (await conn.execute(_USER_ID, {"user_id": user_id})).first()
    if row is None:
        await conn.execute(
            users.insert().values(
                id=user_id,
                display_name=display_name,
                email=email,
                groups=groups,
                created_at=datetime.now(UTC),
            )
        )
        return
    values: dict[str, object] = {
        k: v for k, v in (("display_name", display_name), ("email", email)) if v
    }
    if groups is not None:
        values["groups"] = groups
    if values:
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))


_USER_ID = select(users.c.id).where(users.c.id == bindparam("user_id"))


async def lock_user(conn: AsyncConnection, user_id: str) -> None:
    """Hold the user's row until the transaction ends, so per-user counts cannot race.

    Where the database has row locks (PostgreSQL); SQLite writers are serialized anyway.
    """
    if conn.dialect.name == "sqlite":
        return
    await conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())


async def get_user(conn: AsyncConnection, user_id: str) -> UserRecord | None:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    if row is None:
        return None
    return UserRecord(row.id, row.display_name, row.email, tuple(row.groups or ()))


async def set_password_hash(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    await ensure_user(conn, user_id)
    await conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def get_password_hash(conn: AsyncConnection, user_id: str) -> str | None:
    row = (await conn.execute(select(users.c.password_hash).where(users.c.id == user_id))).first()
    return None if row is None else row.password_hash


async def list_local_accounts(conn: AsyncConnection) -> list[tuple[str, datetime]]:
    rows = await conn.execute(
        select(users.c.id, users.c.created_at)
        .where(users.c.password_hash.is_not(None))
        .order_by(users.c.id)
    )
    return [(r.id, r.created_at) for r in rows]


async def remove_password(conn: AsyncConnection, user_id: str) -> bool:
    result = await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.password_hash.is_not(None))
        .values(password_hash=None)
    )
    return result.rowcount > 0


async def insert_token(
    conn: AsyncConnection,
    *,
    token_id: str,
    user_id: str,
    token_hash: str,
    created_at: datetime,
    expires_at: datetime,
    description: str | None,
) -> None:
    await ensure_user(conn, user_id)
    await conn.execute(
        tokens.insert().values(
            id=token_id,
            user_id=user_id,
            token_hash=token_hash,
            description=description,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


# Built once: it runs on every request whose token is not in the cache.
_TOKEN_BY_HASH = (
    select(tokens, users.c.groups)
    .join(users, users.c.id == tokens.c.user_id)
    .where(tokens.c.token_hash == bindparam("token_hash"))
)


async def find_token_by_hash(
    conn: AsyncConnection, token_hash: str
) -> tuple[TokenRecord, tuple[str, ...]] | None:
    """The token with this hash and its user's groups."""
    row = (await conn.execute(_TOKEN_BY_HASH, {"token_hash": token_hash})).first()
    return None if row is None else (_token(row), tuple(row.groups or ()))


def read_token_by_hash(
    conn: Connection, token_hash: str
) -> tuple[TokenRecord, tuple[str, ...]] | None:
    """``find_token_by_hash`` on a plain connection (``Database.quick_read``)."""
    row = conn.execute(_TOKEN_BY_HASH, {"token_hash": token_hash}).first()
    return None if row is None else (_token(row), tuple(row.groups or ()))


async def list_tokens(conn: AsyncConnection, user_id: str | None = None) -> list[TokenRecord]:
    query = select(tokens).order_by(tokens.c.created_at.desc())
    if user_id is not None:
        query = query.where(tokens.c.user_id == user_id)
    return [_token(r) for r in await conn.execute(query)]


async def revoke_token(conn: AsyncConnection, token_id: str) -> bool:
    """Revoke a token by its public ID; False if there is no such active token."""
    result = await conn.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount > 0


async def revoke_user_tokens(conn: AsyncConnection, user_id: str) -> int:
    result = await conn.execute(
        update(tokens)
        .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount


def _token(row: object) -> TokenRecord:
    return TokenRecord(
        id=row.id,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        description=row.description,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        expires_at=row.expires_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )
