"""One attempt of a step, run by its kind on the means the engine offers (``StepRuntime``).

A command on the place's transport, a batch job, a download, a copy into the result store or a
run of a remote service.
The attempts running now are kept, so that a cancel or a stop of the server reaches them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Coroutine
from typing import Any

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.kinds import kind_of
from hpcwaas.catalog.kinds.base import (
    CommandInvocation,
    JobSubmission,
    RemoteRequest,
    StepKind,
    StepSettings,
)
from hpcwaas.catalog.kinds.transfers import StageInPlan, StageOutPlan
from hpcwaas.engine.commandsteps import CommandStep
from hpcwaas.engine.jobsteps import JobStep
from hpcwaas.engine.outcome import Emit, Outcome
from hpcwaas.engine.remotesteps import RemoteError, RemoteService, RemoteStep, RunKey
from hpcwaas.engine.resultstore import ResultStore
from hpcwaas.engine.run_context import RunContext
from hpcwaas.engine.secret_inputs import mask
from hpcwaas.engine.stagein import stage_in
from hpcwaas.engine.stageout import stage_out
from hpcwaas.engine.transfersteps import Move, P, TransferStep
from hpcwaas.store import logs as store_logs
from hpcwaas.store.logs import Checkpoint
from hpcwaas.transports.base import LineCallback, RunningCommand
from hpcwaas.transports.errors import TransportError

# How the engine sees an attempt start: a coroutine that ends it (None: detached by a stop).
Attempt = Coroutine[Any, Any, Outcome | None]

log = logging.getLogger(__name__)


class StepAttempts:
    """Runs each attempt of a step on its kind; halts the attempts that run when asked.

    It is the ``StepRuntime`` the kinds run on.
    """

    def __init__(self, context: RunContext) -> None:
        self._context = context
        self._commands: dict[str, CommandStep] = {}
        self._jobs: dict[str, JobStep] = {}
        self._transfers: dict[str, TransferStep[Any]] = {}
        self._remote_steps: dict[str, RemoteStep] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.kill_grace = context.settings.step_grace_seconds

    async def run(self, name: str, spec: StepSettings, *, resumed: bool) -> Outcome | None:
        """One attempt of a step; None when a job is detached by a server stop."""
        kind = kind_of(spec)
        # An attempt taken up again after a restart may be writing its file: keep it then.
        if spec.outputs and not (resumed and kind.reattaches):
            try:
                await self._context.place_of(spec).clear_step_outputs(name)
            except (OSError, TransportError) as exc:
                return Outcome(
                    StepState.FAILED, None, f"could not be started: {exc}", retryable=True
                )
        attempt: Attempt = kind.run(self, name, spec, resumed=resumed)
        return await attempt

    def halt(self, grace: float, *, detach_jobs: bool) -> None:
        """Kill the running commands and transfers; cancel the jobs, or leave them running."""
        self.kill_grace = min(self.kill_grace, grace)
        self.kill_commands(grace)
        for transfer in list(self._transfers.values()):
            transfer.cancel()
        for remote in list(self._remote_steps.values()):
            remote.cancel()  # its run is stopped, unless the server stops (then re-attached)
        for job in list(self._jobs.values()):
            if detach_jobs:
                job.detach()  # the job runs on; whoever drives the execution next follows it
            else:
                self._spawn(job.cancel())

    def kill_commands(self, grace: float) -> None:
        """Kill the running commands of steps, after ``grace`` seconds."""
        for step in list(self._commands.values()):
            if step.command is not None:
                self._kill(step.command, grace)

    def command(
        self, kind: StepKind[Any, CommandInvocation], name: str, step: StepSettings
    ) -> Attempt:
        """Run a command in the execution's directory through the place's transport."""
        return self._run_command(kind, name, step)

    def batch_job(
        self, kind: StepKind[Any, JobSubmission], name: str, step: StepSettings, *, resumed: bool
    ) -> Attempt:
        """Submit a batch job (or find the one submitted before a restart) and follow it."""
        return self._run_job(kind, name, step, resumed=resumed)

    def download(self, kind: StepKind[Any, StageInPlan], name: str, step: StepSettings) -> Attempt:
        """Stream an HTTP(S) download into the execution's place."""
        context = self._context
        files = context.place_of(step).files
        environment = context.environment_of(step)

        def move(plan: StageInPlan, emit: Emit) -> Coroutine[Any, Any, None]:
            remote, tls_of = context.remote, plan.tls_of
            verify: ssl.SSLContext | bool = True
            if remote is not None and tls_of is not None:
                verify = remote.verify(environment, tls_of)
            return stage_in(plan, files, emit, verify=verify)

        return self._run_transfer(kind, name, step, move)

    def store_result(
        self, kind: StepKind[Any, StageOutPlan], name: str, step: StepSettings
    ) -> Attempt:
        """Copy a file or directory of the execution's place into the result store."""
        context = self._context
        files, store = context.place_of(step).files, ResultStore(context.settings.results_root)

        def move(plan: StageOutPlan, emit: Emit) -> Coroutine[Any, Any, object]:
            return stage_out(plan, files, store, context.db, context.execution_id, emit)

        return self._run_transfer(kind, name, step, move)

    def offers(self, service: str, step: StepSettings) -> bool:
        """Whether ``step``'s environment has the remote service ``service``."""
        remote, environment = self._context.remote, self._context.environment_of(step)
        return remote is not None and remote.configured(environment, service)

    def remote_run(
        self, kind: StepKind[Any, RemoteRequest], name: str, step: StepSettings, *, resumed: bool
    ) -> Attempt:
        """Have a remote service do the work; re-attach to the run of this attempt if any."""
        return self._run_remote(kind, name, step)

    async def _run_remote(
        self, kind: StepKind[Any, RemoteRequest], name: str, spec: StepSettings
    ) -> Outcome | None:
        context = self._context
        environment = context.environment_of(spec)

        async def services(service: str) -> RemoteService:
            if context.remote is None:
                raise RemoteError(f"no {service} is configured", retryable=False)
            return await context.remote.lookup(environment, service)

        async def read_offsets(run_id: str) -> dict[str, int]:
            async def read(conn: Any) -> dict[str, int]:
                return await store_logs.read_offsets(conn, context.execution_id, name, run_id)

            return await context.read(read)

        step = RemoteStep(
            name=name,
            kind=kind,
            spec=spec,
            preparation=context.preparation(name, spec),
            key=RunKey(context.execution_id, name, max(1, context.state.attempts(name))),
            services=services,
            read_offsets=read_offsets,
            emit=context.emitter(name),
            on_line=functools.partial(self._output_line, name),
            halt=context.halt,
            detaches=lambda: context.stopping() and context.places.survive_restart,
            hidden=context.secrets.hidden,
        )
        self._remote_steps[name] = step
        try:
            return await step.run()
        finally:
            del self._remote_steps[name]

    async def _run_command(
        self, kind: StepKind[Any, CommandInvocation], name: str, spec: StepSettings
    ) -> Outcome:
        command = CommandStep(
            self._context,
            name,
            kind,
            spec,
            on_stdout=self._lines(name, LogLevel.INFO),
            on_stderr=self._lines(name, LogLevel.WARN),
            kill=lambda command: self._kill(command, self.kill_grace),
        )
        self._commands[name] = command
        try:
            return await command.run()
        finally:
            del self._commands[name]

    async def _run_job(
        self, kind: StepKind[Any, JobSubmission], name: str, spec: StepSettings, *, resumed: bool
    ) -> Outcome | None:
        context = self._context
        cluster = context.place_of(spec).cluster
        if cluster is None:
            reason = f"is a {spec.kind} job, which needs a cluster environment"
            return Outcome(StepState.FAILED, None, reason)
        job = JobStep(
            context,
            cluster,
            name,
            kind,
            spec,
            on_line=functools.partial(self._output_line, name),
            job_id=context.state.take_job_id(name) if resumed else None,
            resumed=resumed,
        )
        self._jobs[name] = job
        try:
            if context.halt.halted() and not context.stopping():
                await job.cancel()
            return await job.run()
        finally:
            del self._jobs[name]

    async def _run_transfer(
        self, kind: StepKind[Any, P], name: str, spec: StepSettings, move: Move[P]
    ) -> Outcome | None:
        """A transfer the service makes itself.

        None when the server stops meanwhile: the step stays RUNNING and is run again at
        the next start.
        """
        transfer = TransferStep(self._context, name, kind, spec, move)
        self._transfers[name] = transfer
        try:
            return await transfer.run()
        finally:
            del self._transfers[name]

    async def _output_line(
        self, step: str, level: LogLevel, line: str, checkpoint: Checkpoint | None = None
    ) -> None:
        """A line a step printed becomes a log entry; a full queue holds the step back."""
        context = self._context
        hidden = context.secrets.hidden
        if hidden:  # a step that prints a secret must not leak it into the logs
            line = mask(line, hidden)
        context.logs.emit(context.execution_id, level, line, step, checkpoint)
        await context.logs.room()

    def _lines(self, step: str, level: LogLevel) -> LineCallback:
        return functools.partial(self._output_line, step, level)

    def _kill(self, command: RunningCommand, grace: float) -> None:
        self._spawn(command.kill(grace))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._killed)

    def _killed(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("execution %s: killing a step failed: %r", self._context.execution_id, exc)
