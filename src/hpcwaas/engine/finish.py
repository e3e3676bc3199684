"""Ending an execution: its logs flushed, its open steps closed, its terminal status set."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ACTIVE_STEP_STATES, ExecutionStatus, StepState
from hpcwaas.engine.logsink import LogNotifier, LogSink
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database


async def close_open_steps(
    conn: AsyncConnection, execution_id: str, *, running_to: StepState
) -> None:
    """Move running (or unknown) steps to ``running_to`` and never-started ones to SKIPPED."""
    now = datetime.now(UTC)
    for step in await store_executions.get_steps(conn, execution_id):
        if step.state in ACTIVE_STEP_STATES:
            await store_executions.update_step(
                conn,
                execution_id,
                step.name,
                running_to,
                expected=ACTIVE_STEP_STATES,
                ended_at=now,
            )
        elif step.state is StepState.PENDING:
            await store_executions.update_step(
                conn, execution_id, step.name, StepState.SKIPPED, expected={StepState.PENDING}
            )


async def finish_execution(
    db: Database,
    logs: LogSink,
    notifier: LogNotifier,
    execution_id: str,
    to: ExecutionStatus,
    *,
    expected: Iterable[ExecutionStatus],
    running_steps_to: StepState,
    **fields: Any,
) -> bool:
    """Move the execution to the terminal ``to`` if it is in ``expected``; True if it moved.

    Logs emitted so far are written first, so that they are all visible once the status is.
    """
    await logs.flush()
    async with db.write() as conn:
        moved = await store_executions.transition(
            conn, execution_id, to, expected=expected, **fields
        )
        if moved:
            await close_open_steps(conn, execution_id, running_to=running_steps_to)
    notifier.notify(execution_id)
    return moved
