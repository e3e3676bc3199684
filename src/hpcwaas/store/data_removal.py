"""Removal of finished executions' data: which are due, and the record of what was removed.

The execution's row stays (status, timestamps, inputs); its bulky data goes, one kind at a
time. Each kind has a ``<kind>_removed_at`` column, so "due and not removed yet" is one indexed
query, and ``data_removed_by`` maps each removed kind to who removed it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.store.executions import ExecutionRecord, execution_from_row
from hpcwaas.store.tables import execution_outputs, executions, job_log_offsets, log_entries

# ``data_removed_by`` value for removals by the retention sweep (others name the user).
RETENTION_ACTOR = "retention"


class DataKind(StrEnum):
    """What can be removed of an execution. Values are stable: the API shows them."""

    WORK_DIR = "work_dir"  # the working directory of a `local` execution, on the server
    CLUSTER_WORK_DIR = "cluster_work_dir"  # the execution's directory on the cluster
    LOGS = "logs"  # its log entries
    OUTPUTS = "outputs"  # its files in the result store, and their rows

    @property
    def column(self) -> str:
        """The column that records when this kind was removed."""
        return f"{self.value}_removed_at"


def removed_at(record: ExecutionRecord, kind: DataKind) -> datetime | None:
    """When ``kind`` of the execution's data was removed, or None."""
    value: datetime | None = getattr(record, kind.column)
    return value


async def due(
    conn: AsyncConnection,
    kind: DataKind,
    ended_before: datetime,
    *,
    environments: Collection[str] | None = None,
    exclude_environments: Collection[str] = (),
    exclude_ids: Collection[str] = (),
    limit: int,
) -> list[ExecutionRecord]:
    """Finished executions that ended before ``ended_before`` whose ``kind`` is still there.

    Oldest first, at most ``limit``; only on ``environments`` when given, never on
    ``exclude_environments``, never those in ``exclude_ids``. Executions whose steps ran on
    other environments too (``places``) pass both environment filters: they may have data of
    either kind.
    """
    column = executions.c[kind.column]
    terminal = [s.value for s in ExecutionStatus if s.terminal]
    conditions: list[ColumnElement[bool]] = [
        executions.c.status.in_(terminal),
        executions.c.ended_at.is_not(None),
        executions.c.ended_at < ended_before,
        column.is_(None),
    ]
    several = executions.c.places.is_not(None)
    if environments is not None:
        conditions.append(or_(executions.c.environment.in_(list(environments)), several))
    if exclude_environments:
        conditions.append(or_(executions.c.environment.not_in(list(exclude_environments)), several))
    if exclude_ids:
        conditions.append(executions.c.id.not_in(list(exclude_ids)))
    rows = await conn.execute(
        select(executions)
        .where(*conditions)
        .order_by(executions.c.ended_at, executions.c.id)
        .limit(limit)
    )
    return [execution_from_row(row) for row in rows]


async def mark_removed(
    conn: AsyncConnection,
    execution_id: str,
    kinds: Iterable[DataKind],
    *,
    by: str,
    at: datetime,
) -> None:
    """Record that ``kinds`` of the execution's data were removed at ``at`` by ``by``."""
    kinds = list(kinds)
    if not kinds:
        return
    current = (
        await conn.execute(
            select(executions.c.data_removed_by).where(executions.c.id == execution_id)
        )
    ).scalar_one_or_none()
    removed_by = dict(current or {})
    removed_by.update({kind.value: by for kind in kinds})
    values: dict[str, object] = {kind.column: at for kind in kinds}
    values["data_removed_by"] = removed_by
    await conn.execute(update(executions).where(executions.c.id == execution_id).values(**values))


async def delete_logs(conn: AsyncConnection, execution_id: str) -> int:
    """Delete the execution's log entries (and how far job files were read); return how many."""
    count = (
        await conn.execute(
            select(func.count())
            .select_from(log_entries)
            .where(log_entries.c.execution_id == execution_id)
        )
    ).scalar_one()
    await conn.execute(delete(log_entries).where(log_entries.c.execution_id == execution_id))
    await conn.execute(
        delete(job_log_offsets).where(job_log_offsets.c.execution_id == execution_id)
    )
    return int(count)


async def delete_output_rows(conn: AsyncConnection, execution_id: str) -> int:
    """Delete the rows of the execution's stored files; return how many."""
    result = await conn.execute(
        delete(execution_outputs).where(execution_outputs.c.execution_id == execution_id)
    )
    return int(result.rowcount)
