"""The engine: claims unfinished executions, runs them, cancels them, takes over after a crash.

One ``ExecutionRunner`` task per execution this replica drives. Every replica sharing the
database claims executions through leases (engine/leasing.py, store/execution_leases.py),
renews them on a heartbeat, and releases them when it stops, so that another replica takes
over at once; a replica that died loses them when they expire. Other replicas' changes reach
this one through store/notify.py. The server calls ``wake()`` after it commits a trigger; a
slow sweep catches anything a wake-up missed. Decisions about executions that no runner here
owns (dispatch, cancel, takeover) are serialized by one lock, so that a cancel and a dispatch
of the same execution cannot interleave; what a cancel does is decided in engine/cancels.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.catalog.model import SECRET_PLACEHOLDER
from hpcwaas.engine.cancels import ACTIVE, Cancels
from hpcwaas.engine.deployments import DeploymentWaits
from hpcwaas.engine.execution_places import PlaceMaker
from hpcwaas.engine.finish import finish_execution
from hpcwaas.engine.leasing import Leases
from hpcwaas.engine.logsink import LogNotifier, LogSink
from hpcwaas.engine.remote_services import RemoteServices
from hpcwaas.engine.runner import SERVER_STOPPED, ExecutionRunner
from hpcwaas.engine.secret_inputs import forget_secrets
from hpcwaas.replica import replica_id
from hpcwaas.secrets.base import KeyStore
from hpcwaas.settings import Settings
from hpcwaas.store import execution_leases as leases
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.store.notify import open_broadcast
from hpcwaas.transports.base import Transport
from hpcwaas.transports.local import LocalTransport, kill_leftovers

if TYPE_CHECKING:
    from hpcwaas.catalog.catalog import DeployedWorkflow

log = logging.getLogger(__name__)

RECOVERY_MESSAGE = (
    "The server stopped while this execution was running; "
    "steps on the local environment do not survive a restart"
)
RECOVERY_ERROR = "the server stopped while this execution was running"


def lost_replica_message(owner: str) -> tuple[str, str]:
    """The log line and error of a local execution whose replica stopped renewing its lease."""
    error = (
        f"replica {owner}, which ran this execution, stopped renewing its lease (it stopped, "
        "or lost the database)"
    )
    return f"The {error}; steps on the local environment cannot be followed from here", error


SWEEP_SECONDS = 5.0
# Stopping the server must be quick: running steps get at most this long after SIGTERM.
STOP_GRACE_SECONDS = 1.0

WorkflowLookup = Callable[[str], "DeployedWorkflow | None"]
# (workflow ID, digest of the definition an execution was triggered with) -> that definition
DefinitionLookup = Callable[[str, str], "DeployedWorkflow | None"]


class Engine:
    """Drives the executions this replica holds leases on."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        workflows: WorkflowLookup,
        *,
        keystore: KeyStore | None = None,
        transport: Transport | None = None,
        definitions: DefinitionLookup | None = None,
    ) -> None:
        # The engine waits for a database that went away; the API answers 503 at once.
        self._db = db.waiting(settings.lease_seconds)
        self._single_process = db.is_sqlite
        self.replica = replica_id()
        self._heartbeat: asyncio.Task[None] | None = None
        self._settings = settings
        self._workflows = workflows
        self._definitions = definitions
        self._keystore = keystore
        self._transport: Transport = transport if transport is not None else LocalTransport()
        # builds executions' places; holds each cluster environment's connections and jobs
        self._places = PlaceMaker(self._db, settings, keystore, self._transport)
        # per remote service (an Airflow): its driver, whose poll loop follows all its runs
        self.remote = RemoteServices(settings, keystore)
        self.broadcast = open_broadcast(db.url)
        self.notifier = LogNotifier()
        self.notifier.on_change = self.broadcast.changed
        self.logs = LogSink(self._db, self.notifier)
        self._runners: dict[str, ExecutionRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._draining = False
        self._lock = asyncio.Lock()
        self._dispatcher: asyncio.Task[None] | None = None
        self._leases = Leases(
            db=db,
            replica=self.replica,
            lease_seconds=settings.lease_seconds,
            lock=self._lock,
            runners=self._runners,
            tasks=self._tasks,
            take=self._take,
            abandon_grace=min(settings.step_grace_seconds, STOP_GRACE_SECONDS),
            broadcast=self.broadcast,
        )
        self._deployments = DeploymentWaits(self._db, self.replica, self.logs)
        self._cancels = Cancels(
            db=self._db,
            replica=self.replica,
            runners=self._runners,
            logs=self.logs,
            notifier=self.notifier,
            broadcast=self.broadcast,
            runs_here=self._runs_here,
            forget_secrets=self._forget_secrets,
        )

    async def start(self) -> None:
        """Start the log writer, take what is unfinished and free, then start dispatching."""
        self.logs.start()
        if self._single_process:  # nobody else drives them: what is unfinished is ours
            async with self._db.write() as conn:
                await leases.release_all(conn)
        await self.broadcast.start(self._heard)
        await self._leases.claim_round()
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="hpcwaas-dispatch")
        self._heartbeat = asyncio.create_task(self._leases.heartbeat(), name="hpcwaas-heartbeat")

    def wake(self) -> None:
        """Look for executions to claim now, here and on every replica (after a trigger)."""
        self._wake.set()
        self.broadcast.publish({"t": "wake"})

    def drain(self) -> None:
        """Start nothing new: the server is stopping.

        Executions triggered meanwhile stay PENDING for the other replicas, or for this one
        after a restart; those running here go on until `stop`.
        """
        self._draining = True
        self._wake.set()  # the dispatch loop sees the flag at once and ends

    def _heard(self, message: dict[str, Any]) -> None:
        """A message from another replica (store/notify.py)."""
        kind = message.get("t")
        if kind == "changed":
            for execution_id in message.get("ids", []):
                self.notifier.wake(str(execution_id))
        elif kind == "wake":
            self._wake.set()
        elif kind == "cancel":
            runner = self._runners.get(str(message.get("id")))
            if runner is not None:
                runner.request_cancel(str(message.get("by") or ""))
        elif kind == "resync":  # messages may have been missed: read everything again
            self.notifier.wake_all()
            self._wake.set()

    def running_count(self) -> int:
        """How many executions this engine is running."""
        return len(self._tasks)

    async def cancel(self, execution_id: str, by_user: str) -> ExecutionStatus:
        """Cancel an execution; return its status after the request (CANCELLED or CANCELLING).

        Raise ExecutionNotFound, or ExecutionAlreadyFinished if it is already terminal.
        """
        async with self._lock:
            return await self._cancels.cancel(execution_id, by_user)

    async def stop(self) -> None:
        """Stop dispatching, kill running local steps (their executions end FAILED), flush logs."""
        for task in (self._dispatcher, self._heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._dispatcher = self._heartbeat = None
        grace = min(self._settings.step_grace_seconds, STOP_GRACE_SECONDS)
        detached = {eid for eid, r in self._runners.items() if r.detaches_on_stop}
        for runner in list(self._runners.values()):
            runner.request_stop(grace)
        tasks = dict(self._tasks)
        if tasks:
            _, stuck = await asyncio.wait(tasks.values(), timeout=grace + 5.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
            for execution_id, task in tasks.items():
                if task in stuck and execution_id not in detached:
                    await self._fail_stuck(execution_id)
        await self._places.close()
        await self.remote.aclose()
        await self.logs.stop()
        await self._leases.release()
        await self.broadcast.stop()

    # -- recovery and dispatch -------------------------------------------------------------

    def _runs_here(self, environment: str) -> bool:
        """Whether this engine ends ``environment``'s executions itself (local, or unknown)."""
        config = self._settings.environments.get(environment)
        return config is None or config.kind == "local"

    async def _take_orphan(self, record: ExecutionRecord) -> None:
        """End a local execution whose runner is gone: its steps do not survive a restart,
        and cannot be followed from another replica."""
        owner = record.lease_owner
        if owner is not None and owner != self.replica:
            message, error = lost_replica_message(owner)
        else:
            message, error = RECOVERY_MESSAGE, RECOVERY_ERROR
        self.logs.emit(record.id, LogLevel.ERROR, message)
        for done in await self._places.cancel_left_jobs(record):
            self.logs.emit(record.id, LogLevel.WARN, done)
        await self._kill_leftovers(record.id)
        cancelling = record.status is ExecutionStatus.CANCELLING
        log.warning("execution %s was %s when its runner was lost: ended", record.id, record.status)
        fields: dict[str, Any] = {} if cancelling else {"error": error}
        await finish_execution(
            self._db,
            self.logs,
            self.notifier,
            record.id,
            ExecutionStatus.CANCELLED if cancelling else ExecutionStatus.FAILED,
            expected={record.status},
            running_steps_to=StepState.CANCELLED if cancelling else StepState.FAILED,
            **fields,
        )

    async def _kill_leftovers(self, execution_id: str) -> None:
        """Stop the processes of steps a killed server left running (they outlive it)."""
        killed = await asyncio.to_thread(kill_leftovers, execution_id)
        if killed:
            self.logs.emit(
                execution_id, LogLevel.WARN, f"Stopped {killed} process(es) left running"
            )

    async def _dispatch_loop(self) -> None:
        while not self._draining:
            self._wake.clear()  # before reading: a trigger committed during the read wakes us
            try:
                await self._leases.claim_round()
            except Exception as exc:  # noqa: BLE001 - e.g. the database is away: next round
                log.warning("claiming executions failed (%s); retrying soon", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)

    async def _take(self, record: ExecutionRecord) -> None:
        """Start a claimed execution, or go on with one another replica (or run) left."""
        if self._draining:
            # Claimed in a round that was under way when the stop came: its lease is
            # released at `stop`, and another replica (or the next start) takes it.
            return
        if record.status is ExecutionStatus.PENDING:
            await self._dispatch(record)
        elif self._runs_here(record.environment):
            await self._take_orphan(record)
        else:  # its jobs ran on meanwhile: follow them to the end
            if record.lease_owner is not None:
                log.info("execution %s taken over from %s", record.id, record.lease_owner)
            await self._dispatch(record, resume=True)

    async def _dispatch(self, record: ExecutionRecord, *, resume: bool = False) -> None:
        """Start a runner for ``record``, as just claimed (under the engine's lock, so no
        cancel came in between; one made elsewhere reaches the runner through its lease).
        The claim round passes only executions no runner here drives."""
        execution_id = record.id
        expected = ACTIVE if resume else (ExecutionStatus.PENDING,)
        if record.status not in expected:
            return
        config = self._settings.environments.get(record.environment)
        if config is None:
            reason = f"environment {record.environment} is not configured on this server"
            await self._fail_pending(record, reason)
            return
        workflow = self._workflow_of(record)
        if workflow is None:
            reason = f"workflow {record.workflow_id} is no longer in the catalog"
            await self._fail_pending(record, reason)
            return
        gate = await self._deployments.gate(record, workflow, resume=resume)
        if gate.waiting is not None:
            return  # left PENDING: a later claim round looks again
        if gate.error is not None:
            await self._fail_pending(record, gate.error)
            return
        missing = set(workflow.other_environments()) - set(record.places or {})
        if missing:
            reason = (
                f"workflow {record.workflow_id} changed since this execution was triggered "
                f"(steps now run on {', '.join(sorted(missing))}); trigger it again"
            )
            await self._fail_pending(record, reason)
            return
        places = self._places.places(record, config)
        if isinstance(places, str):
            await self._fail_pending(record, places)
            return
        runner = ExecutionRunner(
            db=self._db,
            settings=self._settings,
            logs=self.logs,
            notifier=self.notifier,
            places=places,
            execution=record,
            workflow=workflow,
            max_parallel_steps=config.max_parallel_steps,
            resume=resume,
            keystore=self._keystore,
            remote=self.remote,
            deployment_outputs=gate.outputs,
        )
        if record.status is ExecutionStatus.CANCELLING:
            runner.request_cancel("a cancel requested before the restart")
        task = asyncio.create_task(runner.run(), name=f"hpcwaas-execution-{execution_id}")
        self._runners[execution_id] = runner
        self._tasks[execution_id] = task
        self._deployments.started(workflow, execution_id)
        task.add_done_callback(functools.partial(self._runner_done, execution_id))

    def _workflow_of(self, record: ExecutionRecord) -> DeployedWorkflow | None:
        """The definition the execution was triggered with if still known, else the current one.

        A catalog reload must not change what a triggered execution runs; only after a restart
        may the definition be gone (the runner then says the file changed).
        """
        if self._definitions is not None:
            kept = self._definitions(record.workflow_id, record.definition_digest)
            if kept is not None:
                return kept
        return self._workflows(record.workflow_id)

    def _runner_done(self, execution_id: str, task: asyncio.Task[None]) -> None:
        self._runners.pop(execution_id, None)
        self._tasks.pop(execution_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("execution %s: runner ended with %r", execution_id, exc)
        self.notifier.forget(execution_id)
        if self._deployments.ended(execution_id):
            self.wake()  # executions waiting for this deployment start, or fail, now

    async def _fail_pending(self, record: ExecutionRecord, reason: str) -> None:
        self._deployments.forget(record.id)
        self.logs.emit(record.id, LogLevel.ERROR, f"Execution failed: {reason}")
        await self._forget_secrets(record)  # the execution never runs
        await finish_execution(
            self._db,
            self.logs,
            self.notifier,
            record.id,
            ExecutionStatus.FAILED,
            expected={record.status},
            running_steps_to=StepState.FAILED,
            error=reason,
        )

    async def _forget_secrets(self, record: ExecutionRecord | None) -> None:
        """Delete an execution's secret inputs from the key store, if it has any."""
        if record is None or SECRET_PLACEHOLDER not in record.inputs.values():
            return  # no secret: the key store is not asked (a Vault policy may not allow it)
        try:
            await forget_secrets(self._keystore, record.id)
        except Exception:
            log.exception("execution %s: its secrets could not be deleted", record.id)

    async def _fail_stuck(self, execution_id: str) -> None:
        """End an execution whose runner did not stop in time."""
        try:
            async with self._db.read() as conn:
                await self._forget_secrets(await store_executions.get_execution(conn, execution_id))
        except Exception:
            log.exception("execution %s: its secrets could not be deleted", execution_id)
        try:
            self.logs.emit(execution_id, LogLevel.ERROR, f"Execution failed: {SERVER_STOPPED}")
            await finish_execution(
                self._db,
                self.logs,
                self.notifier,
                execution_id,
                ExecutionStatus.FAILED,
                expected=ACTIVE,
                running_steps_to=StepState.FAILED,
                error=SERVER_STOPPED,
            )
        except Exception:
            log.exception("execution %s: could not record that the server stopped", execution_id)
