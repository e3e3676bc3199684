"""Which replica drives which execution: leases on execution rows.

A replica claims unfinished executions nobody holds (or whose lease expired: their replica
died) and renews its leases on a heartbeat. A cluster account's executions are claimed by
one replica at a time, so that its Slurm queue is polled once per interval however many
replicas run. Claims are serialized (a transaction-scoped advisory lock on PostgreSQL, the
single writer on SQLite), so that affinity check cannot race.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.store.executions import ExecutionRecord, _execution
from hpcwaas.store.tables import executions

UNFINISHED = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)
_UNFINISHED = [s.value for s in UNFINISHED]
# pg_advisory_xact_lock key of claims: any constant unlikely to be used by another program
_CLAIM_LOCK = 0x68706377_6161  # "hpcwaa"


@dataclass(frozen=True)
class HeldLease:
    """A lease still held after a renewal, with what a driver must act on."""

    execution_id: str
    status: ExecutionStatus
    cancel_requested: bool


def _free(now: datetime) -> ColumnElement[bool]:
    column = executions.c
    return or_(column.lease_owner.is_(None), column.lease_expires_at < now)


async def claim(
    conn: AsyncConnection,
    owner: str,
    *,
    now: datetime,
    ttl: float,
    limit: int,
) -> list[ExecutionRecord]:
    """Lease up to ``limit`` unfinished executions nobody holds; the oldest first.

    Among them may be executions whose lease lapsed while this replica still drives them (a
    late heartbeat): they are leased again, and the caller must not start them twice.
    Executions of a cluster account that another replica drives stay with it.
    """
    column = executions.c
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    busy_rows = await conn.execute(
        select(column.environment, column.cluster_login)
        .where(
            column.status.in_(_UNFINISHED),
            column.cluster_login.is_not(None),
            column.lease_owner.is_not(None),
            column.lease_owner != owner,
            column.lease_expires_at >= now,
        )
        .distinct()
    )
    busy = {(row.environment, row.cluster_login) for row in busy_rows}
    query = select(executions).where(column.status.in_(_UNFINISHED), _free(now))
    query = query.order_by(column.created_at, column.id).limit(limit)
    rows = await conn.execute(query.with_for_update(skip_locked=True))
    chosen = [
        record
        for record in map(_execution, rows)
        if record.cluster_login is None or (record.environment, record.cluster_login) not in busy
    ]
    if chosen:
        await conn.execute(
            update(executions)
            .where(column.id.in_([r.id for r in chosen]))
            .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=ttl))
        )
    return chosen


async def renew(
    conn: AsyncConnection, owner: str, ids: list[str], *, now: datetime, ttl: float
) -> list[HeldLease]:
    """Extend ``owner``'s leases on ``ids``; those it still holds (the others were taken over)."""
    if not ids:
        return []
    column = executions.c
    rows = await conn.execute(
        update(executions)
        .where(column.id.in_(ids), column.lease_owner == owner)
        .values(lease_expires_at=now + timedelta(seconds=ttl))
        .returning(column.id, column.status, column.cancel_requested)
    )
    return [
        HeldLease(row.id, ExecutionStatus(row.status), bool(row.cancel_requested)) for row in rows
    ]


async def release(conn: AsyncConnection, owner: str, ids: list[str] | None = None) -> int:
    """Give up ``owner``'s leases (on ``ids``, or all): another replica may claim them now."""
    column = executions.c
    condition = column.lease_owner == owner
    if ids is not None:
        condition = and_(condition, column.id.in_(ids))
    result = await conn.execute(
        update(executions).where(condition).values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount or 0)


async def release_all(conn: AsyncConnection) -> int:
    """Forget every lease: for a single-process database (SQLite) at start."""
    result = await conn.execute(
        update(executions)
        .where(executions.c.lease_owner.is_not(None))
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount or 0)


async def is_driven_elsewhere(
    conn: AsyncConnection, execution_id: str, owner: str, *, now: datetime
) -> bool:
    """Whether another replica holds a live lease on the execution."""
    column = executions.c
    row = (
        await conn.execute(
            select(column.id).where(
                column.id == execution_id,
                column.lease_owner.is_not(None),
                column.lease_owner != owner,
                column.lease_expires_at >= now,
            )
        )
    ).first()
    return row is not None
