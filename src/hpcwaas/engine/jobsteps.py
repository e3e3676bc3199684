"""Steps that are batch jobs (``slurm``, ``pycompss``): submit once, follow, cancel.

Submission is idempotent: a step found RUNNING without a job ID after a restart (the server
died between the submission and recording its job ID) is looked up by its job's tag before
anything is submitted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hpcwaas.api.states import ACTIVE_STEP_STATES, LogLevel, StepState
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import JobSubmission, StepKind, StepSettings
from hpcwaas.engine.job_accounting import record_job_accounting
from hpcwaas.engine.jobs import JobLost, LineHandler
from hpcwaas.engine.outcome import Outcome
from hpcwaas.engine.places import ClusterPlace
from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.slurm import SubmitError
from hpcwaas.store import executions as store_executions
from hpcwaas.store import logs as store_logs
from hpcwaas.transports.errors import TransportError

if TYPE_CHECKING:
    from hpcwaas.engine.run_context import RunContext

log = logging.getLogger(__name__)


class JobStep:
    """One step that is a batch job, from submission (or adoption) to its final state."""

    def __init__(
        self,
        context: RunContext,
        cluster: ClusterPlace,
        name: str,
        kind: StepKind[Any, JobSubmission],
        spec: StepSettings,
        *,
        on_line: LineHandler,
        job_id: str | None,
        resumed: bool = False,
    ) -> None:
        self._context = context
        self._cluster = cluster  # the context's place
        self._name = name
        self._kind = kind
        self._spec = spec
        self._emit = context.emitter(name)
        self._on_line = on_line
        self.job_id = job_id
        # Whether a job may exist already: after a restart, or after a submission whose
        # answer was lost; then it is looked for before anything is submitted.
        self._maybe_submitted = resumed
        self._cancelled = False
        self._waiting: asyncio.Task[slurm.FinalState] | None = None
        self._detached = False
        self._timed_out = False

    def detach(self) -> None:
        """Stop following the job (the server stops); the job itself runs on."""
        self._detached = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def cancel(self) -> None:
        """scancel the job; ``run`` then ends CANCELLED once Slurm says it ended."""
        self._cancelled = True
        if self.job_id is not None:
            await self._cluster.tracker.cancel(self._cluster.target, [self.job_id])

    async def run(self) -> Outcome | None:
        """Submit (or find) the job and follow it; None when detached by a server stop.

        A failure may be tried again, unless its job cannot be rendered (it would fail
        again); a job cancelled, by hpcwaas or outside it, may not.
        """
        try:
            submission = self._prepare()
        except RenderError as exc:
            self._emit(LogLevel.ERROR, f"Step {self._name}: its job cannot be rendered: {exc}")
            return Outcome(StepState.FAILED, None, "failed: its job cannot be rendered")
        try:
            fresh = self.job_id is None
            if self.job_id is None:
                if self._cancelled:
                    return Outcome(StepState.CANCELLED, None, "was cancelled")
                self.job_id = await self._cluster.retrying(lambda: self._submit_once(submission))
            await self._record_job_id(fresh)
            if self._cancelled:
                await self.cancel()
            self._waiting = asyncio.ensure_future(self._wait(submission))
            timer = self._start_timer(self._spec.timeout)
            try:
                final = await self._waiting
            finally:
                if timer is not None:
                    timer.cancel()
        except asyncio.CancelledError:
            if self._detached:
                return None
            raise
        except (TransportError, SubmitError, JobLost) as exc:
            return Outcome(StepState.FAILED, None, f"failed: {exc}", retryable=True)
        assert self.job_id is not None
        await record_job_accounting(
            self._cluster,
            self._context.db,
            self._context.execution_id,
            self._name,
            self.job_id,
            self._emit,
        )
        if self._timed_out and final.state.outcome != "SUCCEEDED":
            reason = f"timed out after {self._spec.timeout:g} s (Slurm job {self.job_id} cancelled)"
            return Outcome(StepState.FAILED, final.exit_code, reason, retryable=True)
        return _outcome(final, self.job_id)

    def _start_timer(self, timeout: float | None) -> asyncio.Task[None] | None:
        """Cancel the job once it ran ``timeout`` seconds (from its submission, as followed)."""
        if timeout is None:
            return None

        async def expire() -> None:
            await asyncio.sleep(timeout)
            self._timed_out = True
            self._emit(LogLevel.ERROR, f"Step {self._name}: timed out after {timeout:g} s")
            await self.cancel()

        return asyncio.ensure_future(expire())

    def _prepare(self) -> JobSubmission:
        return self._kind.prepare(self._spec, self._context.preparation(self._name, self._spec))

    async def _find_submitted(self, submission: JobSubmission) -> str | None:
        """A job already submitted for this step by an earlier run of the server, if any."""
        cluster = self._cluster
        result = await cluster.transport.run(slurm.find_jobs_command(cluster.target.login))
        found = slurm.parse_find_jobs(
            result.exit_code, result.stdout, result.stderr, execution_id=self._context.execution_id
        ).latest(self._name)
        if found is None:
            return None
        self._emit(LogLevel.INFO, f"Step {self._name}: found its Slurm job {found.job_id} again")
        return found.job_id

    async def _submit_once(self, submission: JobSubmission) -> str:
        """Submit the job unless an earlier attempt did; its job ID either way."""
        if self._maybe_submitted:
            found = await self._find_submitted(submission)
            if found is not None:
                return found
        self._maybe_submitted = True
        job_id = await self._submit(submission)
        self._emit(LogLevel.INFO, f"Step {self._name} submitted as Slurm job {job_id}")
        return job_id

    async def _submit(self, submission: JobSubmission) -> str:
        cluster = self._cluster
        for path, data in submission.files.items():
            await cluster.transport.put_file(path, data, mode=0o700)
        result = await cluster.transport.run(submission.submit_command)
        job_id: str = submission.parse(result.exit_code, result.stdout, result.stderr)
        return job_id

    async def _record_job_id(self, fresh: bool) -> None:
        """Record the job's ID; a new job (a retry's) has not been seen running yet."""
        job_id = self.job_id
        reset = {"running_at": None} if fresh else {}
        await self._context.write(
            lambda conn: store_executions.update_step(
                conn,
                self._context.execution_id,
                self._name,
                StepState.RUNNING,
                expected=ACTIVE_STEP_STATES,
                job_id=job_id,
                **reset,
            )
        )

    async def _job_running(self) -> None:
        """The job left the queue: its time spent queued ends now (the execution timeline)."""
        assert self.job_id is not None
        try:
            async with self._context.db.write() as conn:
                await store_executions.mark_job_running(
                    conn, self._context.execution_id, self._name, self.job_id, datetime.now(UTC)
                )
        except Exception:  # the timeline misses a point; the job itself is followed on
            log.warning("recording when job %s started failed", self.job_id, exc_info=True)
        # The log entry also wakes those who follow the execution (its events).
        self._emit(LogLevel.INFO, f"Step {self._name}: Slurm job {self.job_id} is running")

    async def _wait(self, submission: JobSubmission) -> slurm.FinalState:
        cluster = self._cluster
        outputs = [(submission.stdout_path, LogLevel.INFO), (submission.stderr_path, LogLevel.WARN)]
        assert self.job_id is not None
        job_id = self.job_id
        # A job taken over: go on from what was logged.
        offsets = await self._context.read(
            lambda conn: store_logs.read_offsets(
                conn, self._context.execution_id, self._name, job_id
            )
        )
        return await cluster.tracker.wait(
            cluster.target,
            self.job_id,
            interval=cluster.environment.poll_interval,
            deadline=cluster.environment.unreachable_deadline,
            outputs=outputs,
            exit_path=submission.exit_path,
            on_line=self._on_line,
            on_unknown=self._set_unknown,
            step=self._name,
            offsets=offsets,
            on_running=self._job_running,
        )

    async def _set_unknown(self, unknown: bool) -> None:
        """The job's state could not be read (UNKNOWN), or can be again (RUNNING)."""
        to, start = (
            (StepState.UNKNOWN, StepState.RUNNING)
            if unknown
            else (StepState.RUNNING, StepState.UNKNOWN)
        )
        with contextlib.suppress(Exception):
            async with self._context.db.write() as conn:
                await store_executions.update_step(
                    conn, self._context.execution_id, self._name, to, expected={start}
                )
        if unknown:
            self._emit(
                LogLevel.WARN,
                f"Step {self._name}: the state of Slurm job {self.job_id} cannot be read now; "
                "retrying",
            )


def _outcome(final: slurm.FinalState, job_id: str | None) -> Outcome:
    outcome = final.state.outcome
    if outcome == "SUCCEEDED":
        return Outcome(StepState.SUCCEEDED, final.exit_code or 0)
    if outcome == "CANCELLED":
        return Outcome(StepState.CANCELLED, final.exit_code, "was cancelled")
    code = f" with exit code {final.exit_code}" if final.exit_code is not None else ""
    return Outcome(
        StepState.FAILED,
        final.exit_code,
        f"failed: Slurm job {job_id} ended {final.state.value}{code}",
        retryable=True,
    )
