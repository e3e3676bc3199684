"""Log entries of executions: append-only, with a dense index per execution."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import LogLevel
from hpcwaas.store.tables import job_log_offsets, log_entries


@dataclass(frozen=True)
class Checkpoint:
    """How far a step's job output file has been read: saved with the entries read up to it."""

    step: str
    job_id: str
    path: str
    offset: int


@dataclass(frozen=True)
class LogRecord:
    level: LogLevel
    timestamp: datetime
    content: str
    step: str | None


# The key space of the PostgreSQL advisory locks that serialize appends to one log.
_LOG_LOCK_SPACE = 0x6877_6C67


async def next_index(conn: AsyncConnection, execution_id: str) -> int:
    """The index the next entry of this execution gets."""
    value = (
        await conn.execute(
            select(func.max(log_entries.c.idx)).where(log_entries.c.execution_id == execution_id)
        )
    ).scalar_one()
    return 0 if value is None else int(value) + 1


async def append(conn: AsyncConnection, execution_id: str, entries: list[LogRecord]) -> int:
    """Insert entries after the execution's last one; return the index of the first.

    Several replicas may write one execution's log at once (the one that took a trigger
    or a cancel, the one driving the execution): on PostgreSQL a lock on the execution's
    log, held until the transaction ends, makes reading the last index and inserting one
    step. SQLite has one writer at a time.
    """
    if not entries:
        return await next_index(conn, execution_id)
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:id))"),
            {"space": _LOG_LOCK_SPACE, "id": execution_id},
        )
    first_index = await next_index(conn, execution_id)
    await conn.execute(
        log_entries.insert(),
        [
            {
                "execution_id": execution_id,
                "idx": first_index + i,
                "level": int(e.level),
                "timestamp": e.timestamp,
                "step": e.step,
                # PostgreSQL's text cannot hold NUL (a program may print one): the same
                # replacement character on every backend.
                "content": e.content.replace("\x00", "\ufffd"),
            }
            for i, e in enumerate(entries)
        ],
    )
    return first_index


def _levels(mask: LogLevel) -> list[int]:
    return [int(level) for level in LogLevel if level & mask]


async def read(
    conn: AsyncConnection, execution_id: str, mask: LogLevel, offset: int, size: int | None
) -> tuple[list[LogRecord], int]:
    """Entries matching ``mask`` from position ``offset`` of that filtered sequence; its length."""
    where = (log_entries.c.execution_id == execution_id, log_entries.c.level.in_(_levels(mask)))
    total = int(
        (
            await conn.execute(select(func.count()).select_from(log_entries).where(*where))
        ).scalar_one()
    )
    if offset >= total or size == 0:
        return [], total
    query = select(log_entries).where(*where).order_by(log_entries.c.idx).offset(offset)
    if size is not None:
        query = query.limit(size)
    rows = await conn.execute(query)
    return [
        LogRecord(level=LogLevel(r.level), timestamp=r.timestamp, content=r.content, step=r.step)
        for r in rows
    ], total


async def read_after(
    conn: AsyncConnection, execution_id: str, mask: LogLevel, after: int, size: int
) -> list[tuple[int, LogRecord]]:
    """Up to ``size`` entries matching ``mask`` whose index is above ``after``, with their index."""
    rows = await conn.execute(
        select(log_entries)
        .where(
            log_entries.c.execution_id == execution_id,
            log_entries.c.level.in_(_levels(mask)),
            log_entries.c.idx > after,
        )
        .order_by(log_entries.c.idx)
        .limit(size)
    )
    return [
        (
            int(r.idx),
            LogRecord(
                level=LogLevel(r.level), timestamp=r.timestamp, content=r.content, step=r.step
            ),
        )
        for r in rows
    ]


async def save_checkpoints(
    conn: AsyncConnection, execution_id: str, checkpoints: list[Checkpoint]
) -> None:
    """Record how far each file was read (the last checkpoint per file wins)."""
    table = job_log_offsets.c
    latest = {(c.step, c.path): c for c in checkpoints}
    for point in latest.values():
        key = (
            table.execution_id == execution_id,
            table.step == point.step,
            table.path == point.path,
        )
        values = {"job_id": point.job_id, "offset": point.offset}
        changed = await conn.execute(update(job_log_offsets).where(*key).values(**values))
        if not changed.rowcount:
            await conn.execute(
                job_log_offsets.insert().values(
                    execution_id=execution_id, step=point.step, path=point.path, **values
                )
            )


async def read_offsets(
    conn: AsyncConnection, execution_id: str, step: str, job_id: str
) -> dict[str, int]:
    """How far the files of ``job_id`` were read into the logs, by path."""
    table = job_log_offsets.c
    rows = await conn.execute(
        select(table.path, table.offset).where(
            table.execution_id == execution_id, table.step == step, table.job_id == job_id
        )
    )
    return {row.path: int(row.offset) for row in rows}
