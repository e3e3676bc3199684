"""Files stored for executions by stage_out steps: one row per (execution, output name)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.tables import execution_outputs


@dataclass(frozen=True)
class StoredOutput:
    """One stored file; ``path`` is relative to the result store."""

    execution_id: str
    name: str
    size: int
    sha256: str
    media_type: str
    metadata: dict[str, Any]
    path: str
    created_at: datetime


def _output(row: Any) -> StoredOutput:
    return StoredOutput(
        execution_id=row.execution_id,
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        media_type=row.media_type,
        metadata=dict(row.metadata or {}),
        path=row.path,
        created_at=row.created_at,
    )


async def record_output(conn: AsyncConnection, output: StoredOutput) -> None:
    """Record a stored file, replacing an earlier one of the same name (a step run again)."""
    await conn.execute(
        delete(execution_outputs).where(
            execution_outputs.c.execution_id == output.execution_id,
            execution_outputs.c.name == output.name,
        )
    )
    await conn.execute(
        execution_outputs.insert().values(
            execution_id=output.execution_id,
            name=output.name,
            size=output.size,
            sha256=output.sha256,
            media_type=output.media_type,
            metadata=output.metadata,
            path=output.path,
            created_at=output.created_at,
        )
    )


async def list_outputs(conn: AsyncConnection, execution_id: str) -> list[StoredOutput]:
    """An execution's stored files, oldest first."""
    rows = await conn.execute(
        select(execution_outputs)
        .where(execution_outputs.c.execution_id == execution_id)
        .order_by(execution_outputs.c.created_at, execution_outputs.c.name)
    )
    return [_output(row) for row in rows]


async def get_output(conn: AsyncConnection, execution_id: str, name: str) -> StoredOutput | None:
    """One stored file of an execution, or None."""
    row = (
        await conn.execute(
            select(execution_outputs).where(
                execution_outputs.c.execution_id == execution_id,
                execution_outputs.c.name == name,
            )
        )
    ).first()
    return _output(row) if row is not None else None
