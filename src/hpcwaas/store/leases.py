"""Named leases: work that one replica at a time does (``leases`` table).

A lease is held by ``owner`` until ``expires_at``. ``acquire`` takes a free or expired lease
(or extends one the caller holds) in one statement, an upsert whose update only happens when
the row is expired or already the caller's, so two replicas racing for it cannot both win:
PostgreSQL serializes the conflicting inserts on the primary key, SQLite runs writers one at a
time. ``renew`` extends a lease the caller still holds; ``release`` gives it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.tables import leases


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a named lease, until when."""

    name: str
    owner: str
    expires_at: datetime


def upsert_for(conn: AsyncConnection) -> Any:
    """The dialect's INSERT with ON CONFLICT support (SQLite 3.24+ and PostgreSQL have it)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    raise NotImplementedError(f"upserts need SQLite or PostgreSQL, not {conn.dialect.name}")


def _check(name: str, owner: str, ttl_seconds: float) -> None:
    if not name or not owner:
        raise ValueError("a lease needs a name and an owner")
    if ttl_seconds <= 0:
        raise ValueError(f"a lease's ttl must be positive, got {ttl_seconds}")


async def acquire(
    conn: AsyncConnection,
    name: str,
    owner: str,
    ttl_seconds: float,
    *,
    now: datetime | None = None,
) -> bool:
    """Take the lease ``name`` for ``ttl_seconds`` if it is free, expired or ``owner``'s.

    Returns whether ``owner`` holds it now. Call it in a write transaction (``db.write()``).
    """
    _check(name, owner, ttl_seconds)
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    insert = upsert_for(conn)
    statement = insert(leases).values(name=name, owner=owner, expires_at=expires)
    statement = statement.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={"owner": owner, "expires_at": expires},
        where=or_(leases.c.owner == owner, leases.c.expires_at <= now),
    )
    await conn.execute(statement)
    # Read back rather than trust rowcount, which drivers report differently for upserts.
    current = await holder(conn, name)
    return current is not None and current.owner == owner


async def renew(
    conn: AsyncConnection,
    name: str,
    owner: str,
    ttl_seconds: float,
    *,
    now: datetime | None = None,
) -> bool:
    """Extend a lease ``owner`` still holds (not expired); False if it was lost meanwhile."""
    _check(name, owner, ttl_seconds)
    now = now or datetime.now(UTC)
    result = await conn.execute(
        update(leases)
        .where(and_(leases.c.name == name, leases.c.owner == owner, leases.c.expires_at > now))
        .values(expires_at=now + timedelta(seconds=ttl_seconds))
    )
    return result.rowcount > 0


async def release(conn: AsyncConnection, name: str, owner: str) -> bool:
    """Give up a lease ``owner`` holds, so another replica may take it at once."""
    result = await conn.execute(
        delete(leases).where(leases.c.name == name, leases.c.owner == owner)
    )
    return result.rowcount > 0


async def holder(conn: AsyncConnection, name: str) -> LeaseHolder | None:
    """The lease's current row (possibly expired), or None if nobody took it."""
    row = (await conn.execute(select(leases).where(leases.c.name == name))).first()
    if row is None:
        return None
    return LeaseHolder(name=row.name, owner=row.owner, expires_at=row.expires_at)
