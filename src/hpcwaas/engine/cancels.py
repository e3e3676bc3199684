"""What a cancel does to an execution: tell its runner, end it here, or ask the replica driving it.

A cancel of an execution a runner here drives goes through that runner. One nobody here
drives is ended at once when nothing of it runs (PENDING, or a local execution nobody
drives); otherwise it becomes CANCELLING and the replica driving it is told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.engine.errors import ExecutionAlreadyFinished, ExecutionNotFound
from hpcwaas.engine.finish import finish_execution
from hpcwaas.engine.logsink import LogNotifier, LogSink
from hpcwaas.engine.runner import ExecutionRunner
from hpcwaas.store import execution_leases as leases
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.store.notify import Broadcast

# Started and not ended: a runner drives it (here, on another replica, or soon again).
ACTIVE = (ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)


class Cancels:
    """Decides and records what a cancel does, for the executions of one replica's engine."""

    def __init__(
        self,
        *,
        db: Database,
        replica: str,
        runners: Mapping[str, ExecutionRunner],
        logs: LogSink,
        notifier: LogNotifier,
        broadcast: Broadcast,
        runs_here: Callable[[str], bool],
        forget_secrets: Callable[[ExecutionRecord], Awaitable[None]],
    ) -> None:
        self._db = db
        self._replica = replica
        self._runners = runners  # the engine's: the executions a runner here drives
        self._logs = logs
        self._notifier = notifier
        self._broadcast = broadcast
        self._runs_here = runs_here
        self._forget_secrets = forget_secrets

    async def cancel(self, execution_id: str, by_user: str) -> ExecutionStatus:
        """Cancel an execution; return its status after the request (CANCELLED or CANCELLING).

        Raise ExecutionNotFound, or ExecutionAlreadyFinished if it is already terminal. The
        caller holds the engine's lock, so that a dispatch of the same execution cannot
        interleave.
        """
        runner = self._runners.get(execution_id)
        if runner is not None:
            return await self._cancel_with_runner(runner, by_user)
        return await self._cancel_without_runner(execution_id, by_user)

    async def _cancel_with_runner(self, runner: ExecutionRunner, by_user: str) -> ExecutionStatus:
        # A runner already cancelling was told by an earlier cancel: an end it reaches is not ours.
        ours = not runner.cancelling
        # Tell the runner first: whatever it writes last then ends the execution CANCELLED.
        runner.request_cancel(by_user)
        await runner.start_decided.wait()
        execution_id = runner.execution_id
        async with self._db.write() as conn:
            moved = await store_executions.transition(
                conn,
                execution_id,
                ExecutionStatus.CANCELLING,
                expected={ExecutionStatus.RUNNING},
                cancel_requested=True,
            )
            record = await store_executions.get_execution(conn, execution_id)
        if moved:
            self._notifier.notify(execution_id)
            return ExecutionStatus.CANCELLING
        if record is not None and record.status is ExecutionStatus.PENDING:
            # The runner did not start it (the server is stopping): cancel it here.
            return await self._cancel_without_runner(execution_id, by_user)
        return _cancel_outcome(record, execution_id, ended_by_this_cancel=ours)

    async def _cancel_without_runner(self, execution_id: str, by_user: str) -> ExecutionStatus:
        async with self._db.read() as conn:
            record = await store_executions.get_execution(conn, execution_id)
        if record is None:
            raise ExecutionNotFound(execution_id)
        if record.status is ExecutionStatus.PENDING:
            if await self._end_cancelled_here(record, by_user):
                return ExecutionStatus.CANCELLED
        elif record.status in ACTIVE:
            return await self._cancel_elsewhere(record, by_user)
        async with self._db.read() as conn:
            record = await store_executions.get_execution(conn, execution_id)
        return _cancel_outcome(record, execution_id)

    async def _cancel_elsewhere(self, record: ExecutionRecord, by_user: str) -> ExecutionStatus:
        """Cancel an execution another replica drives (or nobody does, yet): CANCELLING.

        Its driver learns it at once (or at its next heartbeat); a replica that takes it over
        later finds it CANCELLING. A local execution nobody drives is ended here and now.
        """
        async with self._db.write() as conn:
            await store_executions.transition(
                conn,
                record.id,
                ExecutionStatus.CANCELLING,
                expected={ExecutionStatus.RUNNING},
                cancel_requested=True,
            )
            driven = await leases.is_driven_elsewhere(
                conn, record.id, self._replica, now=datetime.now(UTC)
            )
            current = await store_executions.get_execution(conn, record.id)
        if current is None or current.status is not ExecutionStatus.CANCELLING:
            return _cancel_outcome(current, record.id)
        if not driven and self._runs_here(record.environment):
            if await self._end_cancelled_here(current, by_user):
                return ExecutionStatus.CANCELLED
            return ExecutionStatus.CANCELLING
        self._logs.emit(record.id, LogLevel.INFO, f"Cancel requested by {by_user}")
        # Written before the replica driving it can end it: the line comes before the end.
        await self._logs.flush()
        self._notifier.notify(record.id)
        self._broadcast.publish({"t": "cancel", "id": record.id, "by": by_user})
        return ExecutionStatus.CANCELLING

    async def _end_cancelled_here(self, record: ExecutionRecord, by_user: str) -> bool:
        """End an execution nothing of which runs: CANCELLED now; False if it moved meanwhile."""
        self._logs.emit(record.id, LogLevel.INFO, f"Execution cancelled by {by_user}")
        if await finish_execution(
            self._db,
            self._logs,
            self._notifier,
            record.id,
            ExecutionStatus.CANCELLED,
            expected={record.status},
            running_steps_to=StepState.CANCELLED,
            cancel_requested=True,
        ):
            await self._forget_secrets(record)
            return True
        return False


def _cancel_outcome(
    record: ExecutionRecord | None, execution_id: str, *, ended_by_this_cancel: bool = False
) -> ExecutionStatus:
    """The answer to a cancel that found the execution already moving on its own.

    Every ended execution is a 409 (docs/compatibility.md, "Deliberate differences"), a
    CANCELLED one too, unless this very cancel ended it.
    """
    if record is None:
        raise ExecutionNotFound(execution_id)
    if record.status is ExecutionStatus.CANCELLED and ended_by_this_cancel:
        return record.status
    if record.status.terminal:
        raise ExecutionAlreadyFinished(record.status)
    return record.status
