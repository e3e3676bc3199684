"""SSH key records (public half and metadata; the private half lives in the key store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.pagination import decode_cursor, encode_cursor
from hpcwaas.store.tables import ssh_keys


@dataclass(frozen=True)
class SSHKeyRecord:
    id: str
    owner: str
    public_key: str
    fingerprint: str
    key_type: str
    metadata: dict[str, Any]
    created_at: datetime


async def insert_key(conn: AsyncConnection, key: SSHKeyRecord) -> None:
    await conn.execute(ssh_keys.insert().values(**key.__dict__))


async def get_key(conn: AsyncConnection, key_id: str, owner: str) -> SSHKeyRecord | None:
    """The key if it exists and belongs to ``owner``."""
    row = (
        await conn.execute(
            select(ssh_keys).where(ssh_keys.c.id == key_id, ssh_keys.c.owner == owner)
        )
    ).first()
    return None if row is None else SSHKeyRecord(**row._mapping)


async def list_keys(
    conn: AsyncConnection, owner: str, *, limit: int, cursor: str | None
) -> tuple[list[SSHKeyRecord], str | None]:
    """The owner's keys, newest first, one page at a time."""
    query = select(ssh_keys).where(ssh_keys.c.owner == owner)
    if cursor:
        when, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                ssh_keys.c.created_at < when,
                and_(ssh_keys.c.created_at == when, ssh_keys.c.id < last_id),
            )
        )
    rows = list(
        await conn.execute(
            query.order_by(ssh_keys.c.created_at.desc(), ssh_keys.c.id.desc()).limit(limit + 1)
        )
    )
    items = [SSHKeyRecord(**r._mapping) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return items, next_cursor


async def count_keys(conn: AsyncConnection, owner: str) -> int:
    from sqlalchemy import func

    return int(
        (
            await conn.execute(
                select(func.count()).select_from(ssh_keys).where(ssh_keys.c.owner == owner)
            )
        ).scalar_one()
    )


async def delete_key(conn: AsyncConnection, key_id: str, owner: str) -> bool:
    result = await conn.execute(
        delete(ssh_keys).where(ssh_keys.c.id == key_id, ssh_keys.c.owner == owner)
    )
    return result.rowcount > 0
