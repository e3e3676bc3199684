"""What the parts that drive one execution share: its context, and the state of its steps.

The runner (runner.py) creates one ``RunContext`` per execution and hands it to the parts that
run its steps (steprunner.py, attempts.py and the means: commandsteps.py, jobsteps.py,
transfersteps.py) instead of a long list of parameters each. The steps' state (``RunState``)
is the runner's: it changes only through its methods, so each change is one named move.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ACTIVE_STEP_STATES, LogLevel, StepState
from hpcwaas.catalog.kinds.base import ClusterAccess, Preparation, StepSettings
from hpcwaas.engine.ahead import AheadPlan
from hpcwaas.engine.execution_secrets import ExecutionSecrets
from hpcwaas.engine.execution_start import Progress
from hpcwaas.engine.logsink import LogSink
from hpcwaas.engine.outcome import Emit, Halt
from hpcwaas.engine.places import ClusterPlace, Place, Places, cluster_defaults
from hpcwaas.engine.remote_services import RemoteServices
from hpcwaas.settings import Settings
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord

log = logging.getLogger(__name__)

T = TypeVar("T")


class RunState:
    """Where each step of one execution stands, what the finished ones wrote, how often each
    was attempted, the Slurm jobs a previous run of the server left to follow, and the job
    each step that is a job has now (what the steps submitted ahead wait for)."""

    def __init__(self, names: Iterable[str], plan: AheadPlan | None = None) -> None:
        self._states = {name: StepState.PENDING for name in names}
        self._outputs: dict[str, dict[str, str]] = {}  # of the steps that succeeded
        self._attempts: dict[str, int] = {}
        self._job_ids: dict[str, str] = {}  # steps that are jobs, known from a previous run
        self._jobs: dict[str, str] = {}  # the job of each step's current attempt, once known
        self._changed: asyncio.Event | None = None
        self.plan = plan or AheadPlan()

    def restore(self, progress: Progress) -> None:
        """Take what a previous run of the server recorded: finished steps stay finished."""
        self._states.update(progress.states)
        self._outputs.update(progress.outputs)
        self._attempts.update(progress.attempts)
        self._job_ids.update(progress.job_ids)
        self._jobs.update(progress.job_ids)

    def changed(self) -> asyncio.Event:
        """An event set at the next change of a step's state or job (take it, then look)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def state(self, name: str) -> StepState | None:
        """The state of step ``name`` (None for a step of another workflow, e.g. on_failure)."""
        return self._states.get(name)

    def started(self, name: str, state: StepState = StepState.RUNNING) -> None:
        """Step ``name`` runs, or is followed again (WAITING: submitted ahead, not running)."""
        self._states[name] = state
        self._notify()

    def ended(self, name: str, state: StepState, outputs: Mapping[str, str] | None = None) -> None:
        """Step ``name`` ended in ``state``; a success keeps the outputs it wrote."""
        self._states[name] = state
        if state is StepState.SUCCEEDED and outputs is not None:
            self._outputs[name] = dict(outputs)
        self._notify()

    def submitted(self, name: str, job_id: str) -> None:
        """The current attempt of step ``name`` is Slurm job ``job_id``."""
        self._jobs[name] = job_id
        self._notify()

    def recorded_as(self, name: str) -> tuple[StepState, frozenset[StepState]]:
        """The state to record for an active step ``name`` (with its attempt or job), and the
        states it may be found in: WAITING stays WAITING; any other is RUNNING."""
        if self._states.get(name) is StepState.WAITING:
            return StepState.WAITING, frozenset({StepState.WAITING})
        return StepState.RUNNING, ACTIVE_STEP_STATES

    def job_of(self, name: str) -> str | None:
        """The job of the current attempt of step ``name``, once submitted."""
        return self._jobs.get(name)

    def jobs_to_wait_for(self, needs: Iterable[str]) -> list[str] | None:
        """The jobs of ``needs`` still to succeed, once each has one; None while one has none.

        A need that ended without success is in no list: the caller checks ``succeeded``.
        """
        jobs: list[str] = []
        for need in needs:
            state = self._states.get(need)
            if state is StepState.SUCCEEDED:
                continue
            job = self._jobs.get(need)
            if state not in ACTIVE_STEP_STATES or job is None:
                return None
            jobs.append(job)
        return jobs

    def lost(self, needs: Iterable[str]) -> bool:
        """Whether one of ``needs`` ended without success."""
        return any(
            (s := self._states.get(need)) is not None
            and s.terminal
            and s is not StepState.SUCCEEDED
            for need in needs
        )

    def succeeded(self, needs: Iterable[str]) -> bool:
        """Whether every step of ``needs`` succeeded."""
        return all(self._states.get(name) is StepState.SUCCEEDED for name in needs)

    def active(self) -> set[str]:
        """The steps a previous run left running: they are run (or followed) again."""
        return {name for name, state in self._states.items() if state in ACTIVE_STEP_STATES}

    def launched(self) -> set[str]:
        """The steps that left PENDING."""
        return {name for name, state in self._states.items() if state is not StepState.PENDING}

    def any_lost(self) -> bool:
        """Whether a step failed or was cancelled."""
        return any(s in (StepState.FAILED, StepState.CANCELLED) for s in self._states.values())

    @property
    def outputs(self) -> Mapping[str, Mapping[str, str]]:
        """The outputs of the steps that succeeded, by step (read-only)."""
        return MappingProxyType(self._outputs)

    def attempts(self, name: str) -> int:
        """How many attempts of step ``name`` were made."""
        return self._attempts.get(name, 0)

    def attempted(self, name: str, attempt: int) -> None:
        """Attempt number ``attempt`` of step ``name`` starts (its job is not known yet)."""
        self._attempts[name] = attempt
        self._jobs.pop(name, None)

    def take_job_id(self, name: str) -> str | None:
        """The job a previous run submitted for step ``name``, once: a retry submits anew."""
        return self._job_ids.pop(name, None)


@dataclass
class RunContext:
    """One execution as the parts that run its steps see it."""

    db: Database
    settings: Settings
    logs: LogSink
    places: Places
    execution: ExecutionRecord
    secrets: ExecutionSecrets  # loaded when the execution starts
    state: RunState
    halt: Halt  # whether its steps must stop, and how they end then
    stopping: Callable[[], bool]  # whether the server stops: jobs are then left running
    # Whether this replica still drives the execution: not given up to another replica, and
    # the server is not stopping. While it does, a database outage delays what it records.
    driving: Callable[[], bool]
    # The drivers of the remote services (an Airflow) the engine shares between executions.
    remote: RemoteServices | None = None
    # the step outputs of the application's deployment, when it has one
    deployment_outputs: dict[str, dict[str, str]] | None = None
    _database_away: bool = field(default=False, init=False, repr=False)

    @property
    def execution_id(self) -> str:
        """The execution's ID."""
        return self.execution.id

    def emit(self, level: LogLevel, content: str, step: str | None = None) -> None:
        """Add an entry to the execution's log."""
        self.logs.emit(self.execution.id, level, content, step)

    def emitter(self, step: str) -> Emit:
        """What logs for step ``step``."""
        return lambda level, content: self.logs.emit(self.execution.id, level, content, step)

    def place_of(self, spec: StepSettings) -> Place:
        """Where a step runs: the place of its ``environment:``, else the execution's."""
        return self.places.of(spec.environment)

    def environment_of(self, spec: StepSettings) -> str:
        """The environment a step runs on."""
        return spec.environment or self.execution.environment

    def preparation(self, name: str, spec: StepSettings) -> Preparation:
        """What a kind's ``prepare`` needs for an attempt of step ``name`` now."""
        place = self.place_of(spec)
        cluster = place.cluster
        return Preparation(
            execution_id=self.execution.id,
            step_name=name,
            inputs=self.execution.inputs,
            step_outputs=self.state.outputs,
            secrets=self.secrets.inputs,
            workflow_secrets=self.secrets.workflow_secrets,
            outputs_path=place.outputs_path(name) if spec.outputs else None,
            work_dir=str(place.work_dir),
            cluster=cluster_defaults(cluster.environment) if cluster is not None else None,
            limits=self.settings.limits.model_dump(),
            access=_access(cluster),
            deployment_outputs=self.deployment_outputs,
        )

    async def write(self, op: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Record what a step did (``op``, safe to run twice) in one transaction.

        While the database is unreachable, the execution goes on and this waits for it to
        come back, as long as this replica drives the execution: only a takeover by another
        replica, or a stop of the server, gives the record up.
        """
        return await self._until_recorded(op, write=True)

    async def read(self, op: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Read for a running step; waits out a database outage as ``write`` does."""
        return await self._until_recorded(op, write=False)

    async def _until_recorded(
        self, op: Callable[[AsyncConnection], Awaitable[T]], write: bool
    ) -> T:
        result = await self.db.until_recorded(
            op, keep_trying=self.driving, on_wait=self._database_went_away, write=write
        )
        if self._database_away:
            self._database_away = False
            self.emit(LogLevel.INFO, "The database is back: the execution's progress is recorded")
        return result

    def _database_went_away(self, exc: BaseException) -> None:
        if self._database_away:
            return
        self._database_away = True
        log.warning(
            "execution %s: the database is unreachable (%s); its steps go on and their "
            "progress is recorded once it is back",
            self.execution.id,
            type(exc).__name__,
        )
        self.emit(
            LogLevel.WARN,
            "The database cannot be reached: the execution goes on, and its progress is "
            "recorded once the database is back",
        )


def _access(cluster: ClusterPlace | None) -> ClusterAccess | None:
    """The execution's account on a cluster place, for a remote service that reaches it."""
    if cluster is None:
        return None
    target, environment = cluster.target, cluster.environment
    return ClusterAccess(environment.host, environment.port, target.login, target.key_id)
