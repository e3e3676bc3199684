"""Who owns an SSH key, whoever asks: to tell a missing key from someone else's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.tables import ssh_keys


async def key_owner(conn: AsyncConnection, key_id: str) -> str | None:
    """The user ID of the key's owner, or None if there is no such key."""
    owner: str | None = (
        await conn.execute(select(ssh_keys.c.owner).where(ssh_keys.c.id == key_id))
    ).scalar_one_or_none()
    return owner
