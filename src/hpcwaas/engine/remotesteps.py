"""Steps a remote service runs (``remote_run``): start or re-attach, follow, stop, time out.

The kind's ``prepare`` renders a ``RemoteRequest``; the driver of the service it names
(``RemoteService``, found through ``RemoteServices`` for the execution's environment) starts
the work under an ID derived from the execution, the step and the attempt (``RunKey``), so
that starting again after a restart finds the same run instead of making a second one. The
attempt then follows the run to its end; its log lines become the step's log entries, with a
checkpoint so that a run taken over is read on from where the logs stopped.

A cancel stops the remote run; a stop of the server leaves it running (the step stays
RUNNING and whoever drives the execution next re-attaches); a step ``timeout`` stops it and
fails the attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import Preparation, RemoteRequest, StepKind, StepSettings
from hpcwaas.engine.outcome import Emit, Halt, Outcome
from hpcwaas.engine.secret_inputs import mask
from hpcwaas.store.logs import Checkpoint

log = logging.getLogger(__name__)

# A log line of the remote run, with how far its source was read once it is logged.
LineSink = Callable[[LogLevel, str, Checkpoint | None], Awaitable[None]]


class RemoteError(Exception):
    """The service refused or failed; ``retryable``: another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class RunKey:
    """What a remote run's ID is derived from: the same attempt always gives the same ID."""

    execution_id: str
    step: str
    attempt: int


@dataclass(frozen=True)
class RemoteEnd:
    """How a remote run ended: a terminal step state and, for a failure, why.

    ``outputs``: the step outputs a successful run gives (an image build's file name), or
    None when the step writes its own outputs file.
    """

    state: StepState
    reason: str = ""
    outputs: dict[str, str] | None = None


class RemoteRun(Protocol):
    """A run the service started (or had started before a restart)."""

    @property
    def run_id(self) -> str: ...

    @property
    def reattached(self) -> bool:
        """Whether the run existed already: this attempt took it up again."""
        ...

    async def wait(self, on_line: LineSink, offsets: Mapping[str, int]) -> RemoteEnd:
        """Follow the run to its end; ``offsets``: how far each log source was logged."""
        ...

    async def cancel(self) -> None:
        """Stop the run (it ends failed on the service)."""
        ...


class RemoteService(Protocol):
    """One configured service (an Airflow) as the engine drives it."""

    async def start(self, request: Any, key: RunKey) -> RemoteRun:
        """Start the run of ``key``, or find it if it was started already; RemoteError."""
        ...


# service name -> its driver for the execution's environment; RemoteError when not configured
ServiceLookup = Callable[[str], Awaitable[RemoteService]]
# run ID -> how far each log source of that run was logged (for this execution and step)
OffsetsReader = Callable[[str], Awaitable[dict[str, int]]]


STOP_ATTEMPTS = 3
STOP_FIRST_DELAY = 1.0  # seconds before the second attempt, doubled for each next one


async def stop_run(
    run: RemoteRun, *, attempts: int = STOP_ATTEMPTS, delay: float = STOP_FIRST_DELAY
) -> RemoteError | None:
    """Stop ``run``, trying again after a transient failure (an Airflow answers 500 when its
    update loses a deadlock to its scheduler); the last error when it could not be stopped."""
    error: RemoteError | None = None
    for attempt in range(attempts):
        if attempt:
            log.info("stopping run %s failed (%s); trying again", run.run_id, error)
            await asyncio.sleep(delay * 2 ** (attempt - 1))
        try:
            await run.cancel()
            return None
        except RemoteError as exc:
            error = exc
            if not exc.retryable:
                break
    return error


class RemoteStep:
    """One attempt of a step whose work a remote service does."""

    def __init__(
        self,
        *,
        name: str,
        kind: StepKind[Any, RemoteRequest],
        spec: StepSettings,
        preparation: Preparation,
        key: RunKey,
        services: ServiceLookup,
        read_offsets: OffsetsReader,
        emit: Emit,
        on_line: LineSink,
        halt: Halt,
        detaches: Callable[[], bool],
        hidden: Mapping[str, str],
    ) -> None:
        self._name = name
        self._kind = kind
        self._spec = spec
        self._preparation = preparation
        self._key = key
        self._services = services
        self._read_offsets = read_offsets
        self._emit = emit
        self._on_line = on_line
        self._halt = halt
        self._detaches = detaches  # whether the server stops and leaves the execution running
        self._hidden = hidden
        self._task: asyncio.Task[RemoteEnd] | None = None
        self._run: RemoteRun | None = None

    def cancel(self) -> None:
        """Stop following; ``run`` then stops the remote run, unless the server stops."""
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> Outcome | None:
        """The attempt to its end; None when the server stops meanwhile (re-attach later)."""
        if self._halt.halted():
            return self._halt.not_started()
        try:
            request = self._kind.prepare(self._spec, self._preparation)
        except (RenderError, RemoteError) as exc:
            return Outcome(StepState.FAILED, None, self._masked(f"cannot be started: {exc}"))
        task = asyncio.create_task(self._follow(request))
        self._task = task
        timed_out = False
        try:
            done, _ = await asyncio.wait({task}, timeout=self._spec.timeout)
            if not done:
                timed_out = True
                task.cancel()
                await asyncio.wait({task})
        finally:
            if not task.done():
                task.cancel()
            self._task = None
        if task.cancelled():
            return await self._stopped(timed_out)
        error = task.exception()
        if isinstance(error, RemoteError):
            reason = self._masked(f"failed: {error}")
            return Outcome(StepState.FAILED, None, reason, retryable=error.retryable)
        if error is not None:
            raise error
        end = task.result()
        if end.state is StepState.SUCCEEDED:
            outputs = end.outputs if end.outputs is not None else request.outputs
            if outputs is not None:  # those the step declares, as they are read from a file
                outputs = {k: v for k, v in outputs.items() if k in self._spec.outputs}
            return Outcome(StepState.SUCCEEDED, None, outputs=outputs)
        reason = self._masked(end.reason or f"ended {end.state.value}")
        return Outcome(end.state, None, reason, retryable=end.state is StepState.FAILED)

    async def _follow(self, request: RemoteRequest) -> RemoteEnd:
        service = await self._services(request.service)
        run = await service.start(request, self._key)
        self._run = run
        verb = "re-attached to" if run.reattached else "started"
        self._emit(LogLevel.INFO, f"Step {self._name}: {verb} {request.service} run {run.run_id}")
        offsets = await self._read_offsets(run.run_id) if run.reattached else {}
        return await run.wait(self._on_line, offsets)

    async def _stopped(self, timed_out: bool) -> Outcome | None:
        """Following stopped: a stop of the server detaches; a cancel or timeout stops the run."""
        if not timed_out and self._detaches():
            return None
        if self._run is not None:
            error = await stop_run(self._run)
            if error is not None:
                self._emit(
                    LogLevel.WARN,
                    self._masked(
                        f"Step {self._name}: could not stop run {self._run.run_id}: {error}"
                    ),
                )
        if timed_out:
            reason = f"timed out after {self._spec.timeout:g} s; its run was stopped"
            return Outcome(StepState.FAILED, None, reason, retryable=True)
        return self._halt.killed(None)

    def _masked(self, text: str) -> str:
        return mask(text, self._hidden) if self._hidden else text
