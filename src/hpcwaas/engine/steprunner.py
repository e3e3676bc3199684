"""One step of an execution, from its start to its recorded end, attempt after attempt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hpcwaas.api.states import ACTIVE_STEP_STATES, LogLevel, StepState
from hpcwaas.engine.attempts import StepAttempts
from hpcwaas.engine.outcome import Outcome, read_declared_outputs
from hpcwaas.engine.run_context import RunContext
from hpcwaas.store import executions as store_executions

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

    def __init__(self, context: RunContext, attempts: StepAttempts, on_failure: StepFailed) -> None:
        self._context = context
        self._attempts = attempts
        self._on_failure = on_failure

    async def run(
        self,
        name: str,
        spec: StepSpec,
        *,
        resumed: bool = False,
        cleanup: bool = False,
        ahead: bool = False,
    ) -> None:
        """Run a step to its end, attempt after attempt (``retries``), and record the end.

        ``ahead``: a job submitted before its needs succeeded; it is WAITING until Slurm
        starts it (jobsteps.py moves it to RUNNING then).
        """
        label = "Cleanup step" if cleanup else "Step"
        context = self._context
        if not resumed:
            state = StepState.WAITING if ahead else StepState.RUNNING
            if not cleanup:
                fields = {} if ahead else {"started_at": datetime.now(UTC)}
                await context.write(
                    lambda conn: store_executions.update_step(
                        conn,
                        context.execution_id,
                        name,
                        state,
                        expected={StepState.PENDING},
                        **fields,
                    )
                )
            if ahead:
                needs = ", ".join(spec.needs)
                self._emit(
                    LogLevel.INFO, f"{label} {name} submitted ahead: it waits for {needs}", name
                )
            else:
                self._emit(LogLevel.INFO, f"{label} {name} started", name)
            context.state.started(name, state)
        allowed = 1 + spec.retries
        attempt = context.state.attempts(name)
        while True:
            if not resumed or attempt == 0:
                attempt += 1
                await self._record_attempt(name, attempt, allowed, label, cleanup)
            outcome = await self._attempts.run(name, spec, resumed=resumed)
            resumed = False
            if outcome is None:  # detached: the job runs on after the server stops
                return
            # A means that gives the outputs itself (a remote run) has no outputs file.
            if outcome.state is StepState.SUCCEEDED and spec.outputs and outcome.outputs is None:
                outcome = await read_declared_outputs(
                    context.place_of(spec),
                    name,
                    spec.outputs,
                    outcome,
                    limit=context.settings.limits.max_output_bytes,
                    emit=context.emitter(name),
                    hidden=context.secrets.hidden,
                )
            halted = context.halt.halted()
            if not tries_again(outcome, attempt=attempt, allowed=allowed, halted=halted):
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
            if not await context.halt.pause(spec.retry_delay):
                await self._end_step(
                    name, outcome.state, outcome.exit_code, outcome.reason, cleanup=cleanup
                )
                return

    async def _record_attempt(
        self, name: str, attempt: int, allowed: int, label: str, cleanup: bool
    ) -> None:
        context = self._context
        context.state.attempted(name, attempt)
        if attempt > 1:
            self._emit(LogLevel.INFO, f"{label} {name}: attempt {attempt} of {allowed}", name)
        if not cleanup:
            to, expected = context.state.recorded_as(name)
            await context.write(
                lambda conn: store_executions.update_step(
                    conn,
                    context.execution_id,
                    name,
                    to,
                    expected=expected,
                    attempts=attempt,
                    job_id=None,
                )
            )

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
        context = self._context
        if cleanup:
            context.state.ended(name, state)
            if state is StepState.SUCCEEDED:
                self._emit(LogLevel.INFO, f"Cleanup step {name} succeeded", name)
            else:
                self._emit(LogLevel.ERROR, f"Cleanup step {name} {reason}", name)
            return
        ended_at = datetime.now(UTC)
        await context.write(
            lambda conn: store_executions.update_step(
                conn,
                context.execution_id,
                name,
                state,
                expected=ACTIVE_STEP_STATES,
                ended_at=ended_at,
                exit_code=exit_code,
                **({"outputs": outputs} if outputs is not None else {}),
            )
        )
        context.state.ended(name, state, outputs)
        if state is StepState.SUCCEEDED:
            self._emit(LogLevel.INFO, f"Step {name} succeeded", name)
        elif state is StepState.CANCELLED and context.halt.halted():
            self._emit(LogLevel.INFO, f"Step {name} {reason}", name)
        else:
            if state is StepState.CANCELLED:  # not by us: e.g. scancel by the account or admin
                reason = f"{reason} outside hpcwaas"
            self._emit(LogLevel.ERROR, f"Step {name} {reason}", name)
            self._on_failure(name, reason)

    def _emit(self, level: LogLevel, content: str, step: str) -> None:
        self._context.emit(level, content, step)
