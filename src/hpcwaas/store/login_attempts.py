"""Single sign-on login attempts: recorded at the start of a login, consumed once at its end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.tables import login_attempts


async def record_attempt(
    conn: AsyncConnection, state_hash: str, salt: str, now: datetime, expires_at: datetime
) -> None:
    """Record a new attempt and drop those expired before ``now``."""
    await conn.execute(delete(login_attempts).where(login_attempts.c.expires_at < now))
    await conn.execute(
        login_attempts.insert().values(
            state_hash=state_hash, salt=salt, created_at=now, expires_at=expires_at
        )
    )


async def consume_attempt(conn: AsyncConnection, state_hash: str, now: datetime) -> str | None:
    """Mark the unexpired, unconsumed attempt consumed and return its salt; None if none."""
    row = (
        await conn.execute(
            update(login_attempts)
            .where(
                login_attempts.c.state_hash == state_hash,
                login_attempts.c.consumed_at.is_(None),
                login_attempts.c.expires_at > now,
            )
            .values(consumed_at=now)
            .returning(login_attempts.c.salt)
        )
    ).first()
    return None if row is None else str(row.salt)
