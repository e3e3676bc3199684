"""One step of an execution, from its start to its recorded end, attempt after attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hpcwaas.api.states import ACTIVE_STEP_STATES, LogLevel, StepState
from hpcwaas.engine.attempts import StepAttempts
from hpcwaas.engine.execution_secrets import ExecutionSecrets
from hpcwaas.engine.logsink import LogSink
from hpcwaas.engine.outcome import Outcome, read_declared_outputs
from hpcwaas.engine.places import Place
from hpcwaas.settings import Settings
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database

if TYPE_CHECKING:
    from hpcwaas.catalog.model import StepSpec

# (step name, why it failed): the execution is lost, unless it was halted already.
StepFailed = Callable[[str, str], None]


def tries_again(outcome: Outcome, *, attempt: int, allowed: int, halted: bool) -> bool:
    """Whether a step is attempted again after ``outcome`` of its ``attempt`` (of ``allowed``).

    Only a failure found retryable, with attempts left, and while its execution goes on.
    """
    return (
        outcome.state is StepState.FAILED and outcome.retryable and attempt < allowed and not halted
    )


class StepRunner:
    """Runs the steps of one execution to their end: attempts, ``retries``, recorded end."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        logs: LogSink,
        place: Place,
        execution_id: str,
        secrets: ExecutionSecrets,
        attempts: StepAttempts,
        states: dict[str, StepState],
        step_outputs: dict[str, dict[str, str]],
        halted: Callable[[], bool],
        halt: asyncio.Event,
        on_failure: StepFailed,
    ) -> None:
        self._db = db
        self._settings = settings
        self._logs = logs
        self._place = place
        self._execution_id = execution_id
        self._secrets = secrets
        self._attempts = attempts
        self._states = states  # the runner's: it starts the steps whose needs succeeded
        self._step_outputs = step_outputs
        self._halted = halted
        self._halt = halt  # set when steps must stop: ends a wait between attempts
        self._on_failure = on_failure
        self.attempt_counts: dict[str, int] = {}  # known from a previous run, when resumed

    async def run(
        self, name: str, spec: StepSpec, *, resumed: bool = False, cleanup: bool = False
    ) -> None:
        """Run a step to its end, attempt after attempt (``retries``), and record the end."""
        label = "Cleanup step" if cleanup else "Step"
        if not resumed:
            if not cleanup:
                async with self._db.write() as conn:
                    await store_executions.update_step(
                        conn,
                        self._execution_id,
                        name,
                        StepState.RUNNING,
                        expected={StepState.PENDING},
                        started_at=datetime.now(UTC),
                    )
            self._emit(LogLevel.INFO, f"{label} {name} started", name)
        self._states[name] = StepState.RUNNING
        allowed = 1 + spec.retries
        attempt = self.attempt_counts.get(name, 0)
        while True:
            if not resumed or attempt == 0:
                attempt += 1
                await self._record_attempt(name, attempt, allowed, label, cleanup)
            outcome = await self._attempts.run(name, spec, resumed=resumed, attempt=attempt)
            resumed = False
            if outcome is None:  # detached: the job runs on after the server stops
                return
            if outcome.state is StepState.SUCCEEDED and spec.outputs:
                outcome = await read_declared_outputs(
                    self._place,
                    name,
                    spec.outputs,
                    outcome,
                    limit=self._settings.limits.max_output_bytes,
                    emit=lambda level, text: self._emit(level, text, name),
                    hidden=self._secrets.hidden,
                )
            if not tries_again(outcome, attempt=attempt, allowed=allowed, halted=self._halted()):
                await self._end_step(
                    name,
                    outcome.state,
                    outcome.exit_code,
                    outcome.reason,
                    cleanup=cleanup,
                    outputs=outcome.outputs,
                )
                return
            self._emit(
                LogLevel.WARN,
                f"{label} {name} {outcome.reason} (attempt {attempt} of {allowed}); "
                f"trying again in {spec.retry_delay:g} s",
                name,
            )
            if not await self._pause(spec.retry_delay):
                await self._end_step(
                    name, outcome.state, outcome.exit_code, outcome.reason, cleanup=cleanup
                )
                return

    async def _record_attempt(
        self, name: str, attempt: int, allowed: int, label: str, cleanup: bool
    ) -> None:
        self.attempt_counts[name] = attempt
        if attempt > 1:
            self._emit(LogLevel.INFO, f"{label} {name}: attempt {attempt} of {allowed}", name)
        if not cleanup:
            async with self._db.write() as conn:
                await store_executions.update_step(
                    conn,
                    self._execution_id,
                    name,
                    StepState.RUNNING,
                    expected=ACTIVE_STEP_STATES,
                    attempts=attempt,
                    job_id=None,
                )

    async def _pause(self, seconds: float) -> bool:
        """Wait between attempts; False if the execution was halted meanwhile."""
        if self._halted():
            return False
        try:
            await asyncio.wait_for(self._halt.wait(), timeout=seconds)
        except TimeoutError:
            return not self._halted()
        return False

    async def _end_step(
        self,
        name: str,
        state: StepState,
        exit_code: int | None,
        reason: str = "",
        *,
        cleanup: bool = False,
        outputs: dict[str, str] | None = None,
    ) -> None:
        if cleanup:
            self._states[name] = state
            if state is StepState.SUCCEEDED:
                self._emit(LogLevel.INFO, f"Cleanup step {name} succeeded", name)
            else:
                self._emit(LogLevel.ERROR, f"Cleanup step {name} {reason}", name)
            return
        async with self._db.write() as conn:
            await store_executions.update_step(
                conn,
                self._execution_id,
                name,
                state,
                expected=ACTIVE_STEP_STATES,
                ended_at=datetime.now(UTC),
                exit_code=exit_code,
                **({"outputs": outputs} if outputs is not None else {}),
            )
        self._states[name] = state
        if state is StepState.SUCCEEDED:
            if outputs is not None:
                self._step_outputs[name] = outputs
            self._emit(LogLevel.INFO, f"Step {name} succeeded", name)
        elif state is StepState.CANCELLED and self._halted():
            self._emit(LogLevel.INFO, f"Step {name} {reason}", name)
        else:
            if state is StepState.CANCELLED:  # not by us: e.g. scancel by the account or admin
                reason = f"{reason} outside hpcwaas"
            self._emit(LogLevel.ERROR, f"Step {name} {reason}", name)
            self._on_failure(name, reason)

    def _emit(self, level: LogLevel, content: str, step: str) -> None:
        self._logs.emit(self._execution_id, level, content, step)
