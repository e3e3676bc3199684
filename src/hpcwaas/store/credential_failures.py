"""Counters of failed credential checks, and known logins (``credential_failures``,
``known_logins``): shared by the replicas, so a budget holds whichever replica is asked.

``take`` counts a failure in one statement, an upsert whose update happens only when the
key's window has ended or still has room, so concurrent checks on several replicas cannot
overspend a budget: PostgreSQL serializes conflicting upserts on the primary key, SQLite runs
writers one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.leases import upsert_for
from hpcwaas.store.tables import credential_failures, known_logins


@dataclass(frozen=True)
class Tally:
    """A key's failures in the window that started at ``started_at``."""

    started_at: datetime
    failures: int


async def take(
    conn: AsyncConnection, key: str, *, limit: int, now: datetime, window_cutoff: datetime
) -> tuple[bool, Tally]:
    """Count one failure for ``key`` unless its window, still open, holds ``limit`` already.

    A window that started at or before ``window_cutoff`` has ended: the count starts over at
    ``now``. Returns whether it was counted, and the key's tally.
    """
    table = credential_failures
    ended = table.c.started_at <= window_cutoff
    statement = (
        upsert_for(conn)(table)
        .values(key=key, started_at=now, failures=1)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "started_at": case((ended, now), else_=table.c.started_at),
                "failures": case((ended, 1), else_=table.c.failures + 1),
            },
            where=ended | (table.c.failures < limit),
        )
        .returning(table.c.started_at, table.c.failures)
    )
    row = (await conn.execute(statement)).first()
    if row is not None:
        return True, Tally(row.started_at, row.failures)
    found = (
        await conn.execute(select(table.c.started_at, table.c.failures).where(table.c.key == key))
    ).one()
    return False, Tally(found.started_at, found.failures)


async def give_back(conn: AsyncConnection, key: str, started_at: datetime) -> None:
    """Uncount a failure taken in the window that started at ``started_at``, if still open."""
    table = credential_failures
    await conn.execute(
        update(table)
        .where(table.c.key == key, table.c.started_at == started_at, table.c.failures > 0)
        .values(failures=table.c.failures - 1)
    )


async def remember_login(conn: AsyncConnection, key: str, now: datetime) -> None:
    """Record a successful login under ``key`` (an account and an address)."""
    statement = upsert_for(conn)(known_logins).values(key=key, last_login_at=now)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[known_logins.c.key], set_={"last_login_at": now}
        )
    )


async def logged_in_since(conn: AsyncConnection, key: str, since: datetime) -> bool:
    """Whether a login under ``key`` succeeded after ``since``."""
    found = await conn.execute(
        select(known_logins.c.key).where(
            known_logins.c.key == key, known_logins.c.last_login_at > since
        )
    )
    return found.first() is not None


async def forget(
    conn: AsyncConnection, *, windows_before: datetime, logins_before: datetime
) -> None:
    """Remove windows that started before ``windows_before`` (ended: they count nothing) and
    logins older than ``logins_before``."""
    await conn.execute(
        delete(credential_failures).where(credential_failures.c.started_at < windows_before)
    )
    await conn.execute(delete(known_logins).where(known_logins.c.last_login_at < logins_before))
