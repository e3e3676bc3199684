"""How the runner ends one execution: SUCCEEDED with its outputs, FAILED with why, CANCELLED."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.catalog.kinds.base import StepSettings
from hpcwaas.catalog.model import OutputSpec
from hpcwaas.engine.finish import finish_execution
from hpcwaas.engine.logsink import LogNotifier
from hpcwaas.engine.outcome import Emit
from hpcwaas.engine.outputs import OutputValue
from hpcwaas.engine.places import Places
from hpcwaas.engine.secret_inputs import mask
from hpcwaas.store import executions as store_executions

if TYPE_CHECKING:
    from hpcwaas.engine.run_context import RunContext

log = logging.getLogger(__name__)


class ExecutionEnd:
    """Logs and records the end of one execution, and settles a race with a cancel."""

    def __init__(
        self,
        context: RunContext,
        notifier: LogNotifier,
        cancelled_by: Callable[[], str | None],
    ) -> None:
        self._context = context
        self._notifier = notifier
        self._execution_id = context.execution_id
        self._cancelled_by = cancelled_by  # who cancelled it, when the end is written

    async def succeeded(self, outputs: dict[str, str | None]) -> None:
        """End the execution SUCCEEDED with ``outputs``, unless a cancel came first."""
        self._emit(LogLevel.INFO, "Execution succeeded")
        if not await self._finish_as(
            ExecutionStatus.SUCCEEDED, {ExecutionStatus.RUNNING}, outputs=outputs
        ):
            await self._after_lost_race()

    async def cancelled(
        self,
        expected: Iterable[ExecutionStatus] = (
            ExecutionStatus.RUNNING,
            ExecutionStatus.CANCELLING,
        ),
    ) -> None:
        """End the execution CANCELLED (from ``expected``); its running steps too."""
        by = f" by {self._cancelled_by()}" if self._cancelled_by() else ""
        self._emit(LogLevel.INFO, f"Execution cancelled{by}")
        await self._finish_as(ExecutionStatus.CANCELLED, expected, steps_to=StepState.CANCELLED)

    async def failed(self, reason: str) -> None:
        """End the execution FAILED for ``reason``, unless a cancel came first."""
        self._emit(LogLevel.ERROR, f"Execution failed: {reason}")
        if not await self._finish_as(
            ExecutionStatus.FAILED, {ExecutionStatus.RUNNING}, error=reason
        ):
            await self._after_lost_race()

    async def failed_internally(self, exc: BaseException) -> None:
        """End the execution FAILED after an error of the engine itself, whatever its status."""
        reason = f"internal error: {type(exc).__name__}"
        self._emit(LogLevel.ERROR, f"Execution failed: {reason}")
        await self._finish_as(
            ExecutionStatus.FAILED,
            {ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING},
            error=reason,
        )

    async def _after_lost_race(self) -> None:
        """The execution was not RUNNING any more at its end: a cancel may have come first."""
        record = await self._context.read(
            lambda conn: store_executions.get_execution(conn, self._execution_id)
        )
        if record is not None and record.status is ExecutionStatus.CANCELLING:
            await self.cancelled()
        else:
            status = record.status.value if record else "deleted"
            log.warning("execution %s ended while %s; not changed", self._execution_id, status)

    async def _finish_as(
        self,
        to: ExecutionStatus,
        expected: Iterable[ExecutionStatus],
        *,
        steps_to: StepState = StepState.FAILED,
        **fields: Any,
    ) -> bool:
        context = self._context
        return await finish_execution(
            context.db,
            context.logs,
            self._notifier,
            self._execution_id,
            to,
            expected=expected,
            running_steps_to=steps_to,
            keep_trying=context.driving,
            **fields,
        )

    def _emit(self, level: LogLevel, content: str) -> None:
        self._context.emit(level, content)


async def collect_outputs(
    places: Places,
    steps: Mapping[str, StepSettings],
    specs: Mapping[str, OutputSpec],
    *,
    limit: int,
    emit: Emit,
    hidden: Mapping[str, str],
) -> dict[str, str | None]:
    """The workflow's outputs, each read from the place of the step that leaves it (of
    ``steps``), secrets masked; a warning logged for each."""
    values: dict[str, OutputValue] = {}
    for name, spec in specs.items():
        step = steps.get(spec.step)
        place = places.of(step.environment if step is not None else None)
        values[name] = await place.read_output(name, spec.path, limit)
    for value in values.values():
        if value.warning:
            emit(LogLevel.WARN, value.warning)
    return {
        name: mask(value.value, hidden) if value.value is not None else None
        for name, value in values.items()
    }
