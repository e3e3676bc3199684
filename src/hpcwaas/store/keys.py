"""SSH key records (public half and metadata; the private half lives in the key store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.pagination import newest_first_page
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
    row = (await conn.execute(_KEY_OF_OWNER, {"key_id": key_id, "owner": owner})).first()
    return None if row is None else SSHKeyRecord(**row._mapping)


# Built once: looked up at every trigger and every connection to a cluster.
_KEY_OF_OWNER = select(ssh_keys).where(
    ssh_keys.c.id == bindparam("key_id"), ssh_keys.c.owner == bindparam("owner")
)


async def list_keys(
    conn: AsyncConnection, owner: str, *, limit: int, cursor: str | None
) -> tuple[list[SSHKeyRecord], str | None]:
    """The owner's keys, newest first, one page at a time."""
    query = select(ssh_keys).where(ssh_keys.c.owner == owner)
    rows, next_cursor = await newest_first_page(conn, ssh_keys, query, limit=limit, cursor=cursor)
    return [SSHKeyRecord(**r._mapping) for r in rows], next_cursor


async def count_keys(conn: AsyncConnection, owner: str) -> int:
    """How many SSH keys the owner holds."""
    query = select(func.count()).select_from(ssh_keys).where(ssh_keys.c.owner == owner)
    return int((await conn.execute(query)).scalar_one())


async def delete_key(conn: AsyncConnection, key_id: str, owner: str) -> bool:
    result = await conn.execute(
        delete(ssh_keys).where(ssh_keys.c.id == key_id, ssh_keys.c.owner == owner)
    )
    return result.rowcount > 0
