"""Ending an execution: its logs flushed, its open steps closed, its terminal status set."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hpcwaas.api.states import ExecutionStatus, StepState
from hpcwaas.engine.logsink import LogNotifier, LogSink
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database


async def finish_execution(
    db: Database,
    logs: LogSink,
    notifier: LogNotifier,
    execution_id: str,
    to: ExecutionStatus,
    *,
    expected: Iterable[ExecutionStatus],
    running_steps_to: StepState,
    keep_trying: Callable[[], bool] = lambda: False,
    **fields: Any,
) -> bool:
    """Move the execution to the terminal ``to`` if it is in ``expected``; True if it moved.

    Logs emitted so far are written first, so that they are all visible once the status is.
    While the database is unavailable, the end waits for it as long as ``keep_trying()``.
    """
    await logs.flush()
    moved = await db.until_recorded(
        lambda conn: store_executions.end_execution(
            conn, execution_id, to, expected=expected, running_steps_to=running_steps_to, **fields
        ),
        keep_trying=keep_trying,
    )
    notifier.notify(execution_id)
    return moved
