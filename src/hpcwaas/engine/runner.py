"""Runs one execution: working directory, DAG of steps, outcome; resumes one after a restart.

The runner decides what runs and when it halts; the parts live apart: starting and resuming
(execution_start.py), its secrets (execution_secrets.py), one step from start to end with its
retries (steprunner.py), one attempt by the step's kind (attempts.py), the end (execution_end.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.catalog.dag import topological_order
from hpcwaas.engine.ahead import AheadPlan
from hpcwaas.engine.attempts import StepAttempts
from hpcwaas.engine.execution_end import ExecutionEnd, collect_outputs
from hpcwaas.engine.execution_secrets import ExecutionSecrets
from hpcwaas.engine.execution_start import mark_running, prepare_run, read_progress
from hpcwaas.engine.logsink import LogNotifier, LogSink
from hpcwaas.engine.outcome import SERVER_STOPPED, Halt
from hpcwaas.engine.places import Places
from hpcwaas.engine.remote_services import RemoteServices
from hpcwaas.engine.run_context import RunContext, RunState
from hpcwaas.engine.steprunner import StepRunner
from hpcwaas.secrets.base import KeyStore
from hpcwaas.settings import Settings
from hpcwaas.store.database import Database, is_unavailable
from hpcwaas.store.executions import ExecutionRecord

if TYPE_CHECKING:
    from hpcwaas.catalog.catalog import DeployedWorkflow

log = logging.getLogger(__name__)

__all__ = ["SERVER_STOPPED", "ExecutionRunner"]


class ExecutionRunner:
    """Runs one execution from PENDING to its end; ``request_cancel``/``request_stop`` halt it."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        logs: LogSink,
        notifier: LogNotifier,
        places: Places,
        execution: ExecutionRecord,
        workflow: DeployedWorkflow,
        max_parallel_steps: int,
        resume: bool = False,
        keystore: KeyStore | None = None,
        remote: RemoteServices | None = None,
        deployment_outputs: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.execution_id = execution.id
        self._db = db
        self._settings = settings
        self._logs = logs
        self._notifier = notifier
        self._places = places
        self._execution = execution
        self._workflow = workflow
        self._max_parallel = max(1, max_parallel_steps)
        self._resume = resume
        self._step_tasks: dict[asyncio.Task[None], str] = {}
        self._cancelled_by: str | None = None
        self._stopping = False
        self.abandoned = False  # another replica drives it now: write nothing more
        self._failure: str | None = None
        self._secrets = ExecutionSecrets(
            db=db, keystore=keystore, execution_id=execution.id, spec=workflow.spec
        )
        self._cleaning = False  # running the on_failure steps
        self._plan = AheadPlan.of(
            workflow.spec.steps,
            on_cluster=lambda environment: places.of(environment).cluster is not None,
        )
        self._state = RunState(workflow.spec.steps, self._plan)
        # Set when steps must stop: ends a wait between attempts.
        self._halt = Halt(self._halted, self._halted_state)
        context = RunContext(
            db=db,
            settings=settings,
            logs=logs,
            places=places,
            execution=execution,
            secrets=self._secrets,
            state=self._state,
            halt=self._halt,
            stopping=lambda: self._stopping,
            driving=lambda: not (self.abandoned or self._stopping),
            remote=remote,
            deployment_outputs=deployment_outputs,
        )
        self._attempts = StepAttempts(context)
        self._steps = StepRunner(context, self._attempts, on_failure=self._step_failed)
        self._end = ExecutionEnd(context, notifier, cancelled_by=lambda: self._cancelled_by)
        # Set once the runner has decided whether the execution starts (PENDING -> RUNNING).
        self.start_decided = asyncio.Event()

    def request_cancel(self, by_user: str) -> None:
        """Cancel for ``by_user``: kill running steps, start no more; the run ends CANCELLED."""
        if self._cancelled_by is None:
            self._cancelled_by = by_user
        self._kill_running(self._settings.step_grace_seconds)

    def request_stop(self, grace: float) -> None:
        """The server stops: kill running steps after ``grace`` seconds; the run ends FAILED.

        Batch jobs on a cluster are left running: another replica, or the next start of the
        server, follows them.
        """
        self._stopping = True
        self._kill_running(grace)

    def request_abandon(self, grace: float) -> None:
        """Stop driving the execution without ending it: another replica goes on with it.

        Jobs run on; local steps are killed (their execution is ended by whoever takes it).
        """
        self.abandoned = True
        self.request_stop(grace)

    @property
    def cancelling(self) -> bool:
        """Whether a cancel was requested."""
        return self._cancelled_by is not None

    @property
    def detaches_on_stop(self) -> bool:
        """Whether a server stop leaves this execution running (its steps run on a cluster)."""
        return self._places.survive_restart

    async def run(self) -> None:
        """Run the execution to its end; an unexpected error ends it FAILED, never raises."""
        try:
            if await self._start():
                await self._schedule()
                await self._run_cleanup()
                await self._finish()
        except Exception as exc:
            if is_unavailable(exc):
                # Not the execution's fault: leave it as it is; once the database is back,
                # it is claimed again (here or on another replica) and goes on from there.
                log.warning(
                    "execution %s: the database is unreachable; left to be taken over",
                    self.execution_id,
                )
                self.request_abandon(self._attempts.kill_grace)
            else:
                log.exception("execution %s: internal error in the engine", self.execution_id)
                await self._fail_internal(exc)
        finally:
            self.start_decided.set()
            await self._secrets.forget()

    # -- start -----------------------------------------------------------------------------

    async def _start(self) -> bool:
        if self._resume:
            return await self._resume_state()
        if self._stopping:
            return False  # still PENDING: another replica or the next start runs it
        if self._cancelled_by is not None:  # start_decided waits for this end (see run())
            await self._end.cancelled(expected={ExecutionStatus.PENDING})
            return False
        recorded = await mark_running(self._db, self.execution_id, str(self._places.home.work_dir))
        self.start_decided.set()
        if recorded is None:
            log.info("execution %s is no longer pending: not run", self.execution_id)
            return False
        self._notifier.notify(self.execution_id)
        self._emit(LogLevel.INFO, f"Execution started: workflow {self._workflow.id}")
        self._failure = await prepare_run(
            places=self._places,
            secrets=self._secrets,
            workflow=self._workflow,
            execution=self._execution,
            recorded=recorded,
            emit=self._emit,
        )
        return True

    async def _resume_state(self) -> bool:
        """Pick up where the last run of the server left: finished steps stay finished."""
        self.start_decided.set()
        self._state.restore(
            await read_progress(self._db, self.execution_id, self._workflow.spec.steps)
        )
        self._emit(
            LogLevel.INFO, "Execution resumed after a restart of the server, or by another replica"
        )
        secrets_failure = await self._secrets.load()
        if secrets_failure is not None:
            self._failure = secrets_failure
        for cluster in self._places.clusters():
            await cluster.reconnect()
        if self._state.any_lost():
            self._failure = "a step had failed before the server restarted"
        return True

    # -- steps -----------------------------------------------------------------------------

    async def _schedule(self) -> None:
        steps = self._workflow.spec.steps
        order = self._workflow.step_order()
        launched = self._state.launched()
        active = self._state.active()
        for name in order:  # resumed: steps that were running run (or are followed) again
            if name not in active:
                continue
            task = asyncio.create_task(self._steps.run(name, steps[name], resumed=True))
            self._step_tasks[task] = name
        try:
            while True:
                changed = self._state.changed()
                for name in order:
                    if self._halted() or len(self._step_tasks) >= self._max_parallel:
                        break
                    if name in launched:
                        continue
                    needs = steps[name].needs
                    ready = self._state.succeeded(needs)
                    # Submitted ahead once the jobs of its needs are known (ahead.py).
                    ahead = not ready and self._ahead(name)
                    if ready or ahead:
                        launched.add(name)
                        task = asyncio.create_task(self._steps.run(name, steps[name], ahead=ahead))
                        self._step_tasks[task] = name
                if not self._step_tasks:
                    break
                change = asyncio.create_task(_until_set(changed))
                try:
                    done, _ = await asyncio.wait(
                        [*self._step_tasks, change], return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    change.cancel()
                for task in done:
                    if task is not change:
                        del self._step_tasks[task]
                        task.result()  # an error of the engine itself: ends the execution FAILED
        finally:
            for task in self._step_tasks:
                task.cancel()
            await asyncio.gather(*self._step_tasks, return_exceptions=True)
            self._step_tasks.clear()
        never_ran = [n for n in order if n not in launched] + sorted(set(steps) - set(order))
        if not self._halted() and never_ran:
            self._failure = (
                f"steps {', '.join(never_ran)} can never start (their needs are not met)"
            )

    def _ahead(self, name: str) -> bool:
        """Whether step ``name`` is submitted now, before its needs succeeded: the jobs of its
        needs are submitted, and none of them failed."""
        needs = self._workflow.spec.steps[name].needs
        return (
            name in self._plan.ahead
            and not self._state.lost(needs)
            and self._state.jobs_to_wait_for(needs) is not None
        )

    # -- on_failure ------------------------------------------------------------------------

    async def _run_cleanup(self) -> None:
        """Run the workflow's ``on_failure`` steps after a failure, in the order of their needs.

        Their own failure is logged only: the execution keeps the failure that started them.
        """
        cleanup = self._workflow.spec.on_failure
        if not cleanup or self._failure is None or self._cancelled_by is not None:
            return
        if self._stopping:
            return
        self._cleaning = True
        self._halt.signal.clear()  # set by the failure; from now on only a cancel or a stop sets it
        self._emit(LogLevel.INFO, f"Running the on_failure steps: {', '.join(cleanup)}")
        order = topological_order({name: step.needs for name, step in cleanup.items()})
        for name in order:
            if self._cancelled_by is not None or self._stopping:
                break
            spec = cleanup[name]
            if not self._state.succeeded(spec.needs):
                self._emit(LogLevel.WARN, f"Cleanup step {name} skipped: its needs did not succeed")
                continue
            await self._steps.run(name, spec, cleanup=True)

    def _step_failed(self, name: str, reason: str) -> None:
        if self._failure is None and self._cancelled_by is None and not self._stopping:
            # Fail fast: the execution is lost, so free the host from its other steps.
            self._failure = f"step {name} {reason}"
            self._kill_running(self._settings.step_grace_seconds)

    def _halted(self) -> bool:
        if self._cleaning:  # the on_failure steps run after the failure: only a stop halts them
            return self._cancelled_by is not None or self._stopping
        return self._cancelled_by is not None or self._stopping or self._failure is not None

    def _halted_state(self) -> StepState:
        """What a step stopped by the engine ends as: FAILED only when the server stops."""
        if self._stopping and self._cancelled_by is None:
            return StepState.FAILED
        return StepState.CANCELLED

    def _kill_running(self, grace: float) -> None:
        self._halt.signal.set()
        detach = self._stopping and self._cancelled_by is None and self.detaches_on_stop
        self._attempts.halt(grace, detach_jobs=detach)

    # -- end -------------------------------------------------------------------------------

    async def _finish(self) -> None:
        # A cancel the user asked for wins over a server stop, which wins over a step failure.
        if self.abandoned:
            return
        if self._cancelled_by is not None:
            await self._end.cancelled()
        elif self._stopping and self.detaches_on_stop:
            self._emit(
                LogLevel.INFO,
                "The server is stopping; another replica, or its next start, follows this "
                "execution",
            )
        elif self._stopping:
            await self._end.failed(SERVER_STOPPED)
        elif self._failure is not None:
            await self._end.failed(self._failure)
        else:
            outputs = await collect_outputs(
                self._places,
                self._workflow.spec.steps,
                self._workflow.spec.outputs,
                limit=self._settings.limits.max_output_bytes,
                emit=self._emit,
                hidden=self._secrets.hidden,
            )
            await self._end.succeeded(outputs)

    async def _fail_internal(self, exc: BaseException) -> None:
        try:
            self._attempts.kill_commands(self._attempts.kill_grace)
            await self._end.failed_internally(exc)
        except Exception:
            log.exception("execution %s: its failure could not be recorded", self.execution_id)

    def _emit(self, level: LogLevel, content: str, step: str | None = None) -> None:
        self._logs.emit(self.execution_id, level, content, step)


async def _until_set(event: asyncio.Event) -> None:
    await event.wait()
