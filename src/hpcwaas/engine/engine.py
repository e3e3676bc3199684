"""The engine: picks up pending executions, runs them, cancels them, recovers after a restart.

One ``ExecutionRunner`` task per running execution. The server calls ``wake()`` after it commits
a trigger; a slow sweep catches anything a wake-up missed. Decisions about executions that no
runner owns (dispatch, cancel of a PENDING one, recovery) are serialized by one lock, so that a
cancel and a dispatch of the same execution cannot interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.catalog.model import SECRET_PLACEHOLDER
from hpcwaas.engine.errors import ExecutionAlreadyFinished, ExecutionNotFound
from hpcwaas.engine.finish import finish_execution
from hpcwaas.engine.jobs import JobTracker
from hpcwaas.engine.logsink import LogNotifier, LogSink
from hpcwaas.engine.places import ClusterPlace, LocalPlace, Place
from hpcwaas.engine.runner import SERVER_STOPPED, ExecutionRunner
from hpcwaas.engine.secret_inputs import forget_secrets
from hpcwaas.secrets.base import KeyStore, KeyStoreUnavailable, ssh_key_path
from hpcwaas.settings import EnvironmentConfig, LocalEnvironment, Settings
from hpcwaas.store import audit as audit_store
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.transports.base import Transport
from hpcwaas.transports.local import LocalTransport, kill_leftovers
from hpcwaas.transports.ssh import SshPool, SshTarget

if TYPE_CHECKING:
    from hpcwaas.catalog.catalog import DeployedWorkflow

log = logging.getLogger(__name__)

RECOVERY_MESSAGE = (
    "The server stopped while this execution was running; "
    "steps on the local environment do not survive a restart"
)
RECOVERY_ERROR = "the server stopped while this execution was running"
SWEEP_SECONDS = 5.0
# Stopping the server must be quick: running steps get at most this long after SIGTERM.
STOP_GRACE_SECONDS = 1.0
_ACTIVE = (ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)

WorkflowLookup = Callable[[str], "DeployedWorkflow | None"]
# (workflow ID, digest of the definition an execution was triggered with) -> that definition
DefinitionLookup = Callable[[str, str], "DeployedWorkflow | None"]


class Engine:
    """Runs the executions of the ``local`` environment in this process."""

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
        self._db = db
        self._settings = settings
        self._workflows = workflows
        self._definitions = definitions
        self._keystore = keystore
        self._transport: Transport = transport if transport is not None else LocalTransport()
        # per cluster environment: its SSH connections (bounded by its max_sessions) and jobs
        self._clusters: dict[str, tuple[SshPool, JobTracker]] = {}
        self.notifier = LogNotifier()
        self.logs = LogSink(db, self.notifier)
        self._runners: dict[str, ExecutionRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._dispatcher: asyncio.Task[None] | None = None

    async def _load_key(self, key_id: str) -> str:
        """A private key from the key store, for the SSH client's memory only."""
        if self._keystore is None:
            raise KeyStoreUnavailable("no key store is configured")
        secret = await self._keystore.get(ssh_key_path(key_id))
        if secret is None or "privateKey" not in secret:
            raise KeyStoreUnavailable(f"SSH key {key_id} is not in the key store any more")
        return secret["privateKey"]

    async def start(self) -> None:
        """Start the log writer, close what the last run left behind, then start dispatching."""
        self.logs.start()
        await self._recover()
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="hpcwaas-dispatch")

    def wake(self) -> None:
        """Look for pending executions now (called after a trigger is committed)."""
        self._wake.set()

    def running_count(self) -> int:
        """How many executions this engine is running."""
        return len(self._tasks)

    async def cancel(self, execution_id: str, by_user: str) -> ExecutionStatus:
        """Cancel an execution; return its status after the request (CANCELLED or CANCELLING).

        Raise ExecutionNotFound, or ExecutionAlreadyFinished if it is already terminal.
        """
        async with self._lock:
            runner = self._runners.get(execution_id)
            if runner is not None:
                return await self._cancel_with_runner(runner, by_user)
            return await self._cancel_without_runner(execution_id, by_user)

    async def stop(self) -> None:
        """Stop dispatching, kill running local steps (their executions end FAILED), flush logs."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
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
        for pool, tracker in self._clusters.values():
            await tracker.close()
            await pool.close()
        self._clusters.clear()
        await self.logs.stop()

    # -- cancel ----------------------------------------------------------------------------

    async def _cancel_with_runner(self, runner: ExecutionRunner, by_user: str) -> ExecutionStatus:
        # Tell the runner first: whatever it writes last then ends the execution CANCELLED.
        runner.request_cancel(by_user)
        await runner.start_decided.wait()
        execution_id = runner.execution_id
        async with self._db.write() as conn:
            moved = await store_executions.transition(
                conn,
                execution_id,
                ExecutionStatus.CANCELLING,
                allowed_from={ExecutionStatus.RUNNING},
                cancel_requested=True,
            )
            record = await store_executions.get_execution(conn, execution_id)
        if moved:
            self.notifier.notify(execution_id)
            return ExecutionStatus.CANCELLING
        if record is not None and record.status is ExecutionStatus.PENDING:
            # The runner did not start it (the server is stopping): cancel it here.
            return await self._cancel_without_runner(execution_id, by_user)
        return _cancel_outcome(record, execution_id)

    async def _cancel_without_runner(self, execution_id: str, by_user: str) -> ExecutionStatus:
        async with self._db.read() as conn:
            record = await store_executions.get_execution(conn, execution_id)
        if record is None:
            raise ExecutionNotFound(execution_id)
        status = record.status
        if status is ExecutionStatus.PENDING or (
            status in _ACTIVE and self._runs_here(record.environment)
        ):
            # Nothing of it runs in this process (no runner): end it here and now.
            self.logs.emit(execution_id, LogLevel.INFO, f"Execution cancelled by {by_user}")
            if await finish_execution(
                self._db,
                self.logs,
                self.notifier,
                execution_id,
                ExecutionStatus.CANCELLED,
                allowed_from={status},
                running_steps_to=StepState.CANCELLED,
                cancel_requested=True,
            ):
                await self._forget_secrets(record)
                return ExecutionStatus.CANCELLED
            async with self._db.read() as conn:
                record = await store_executions.get_execution(conn, execution_id)
        return _cancel_outcome(record, execution_id)

    # -- recovery and dispatch -------------------------------------------------------------

    def _runs_here(self, environment: str) -> bool:
        """Whether this engine ends ``environment``'s executions itself (local, or unknown)."""
        config = self._settings.environments.get(environment)
        return config is None or config.kind == "local"

    async def _recover(self) -> None:
        async with self._db.read() as conn:
            active = await store_executions.with_status(conn, _ACTIVE)
        for record in active:
            if not self._runs_here(record.environment):
                # Its jobs ran on while the server was down: follow them to the end.
                async with self._lock:
                    await self._dispatch(record.id, resume=True)
        orphans = [r for r in active if self._runs_here(r.environment)]
        for record in orphans:
            self.logs.emit(record.id, LogLevel.ERROR, RECOVERY_MESSAGE)
            await self._kill_leftovers(record.id)
        for record in orphans:
            cancelling = record.status is ExecutionStatus.CANCELLING
            log.warning(
                "execution %s was %s when the server stopped: ended", record.id, record.status
            )
            await finish_execution(
                self._db,
                self.logs,
                self.notifier,
                record.id,
                ExecutionStatus.CANCELLED if cancelling else ExecutionStatus.FAILED,
                allowed_from={record.status},
                running_steps_to=StepState.CANCELLED if cancelling else StepState.FAILED,
                **({} if cancelling else {"error": RECOVERY_ERROR}),
            )

    async def _kill_leftovers(self, execution_id: str) -> None:
        """Stop the processes of steps a killed server left running (they outlive it)."""
        killed = await asyncio.to_thread(kill_leftovers, execution_id)
        if killed:
            self.logs.emit(
                execution_id, LogLevel.WARN, f"Stopped {killed} process(es) left running"
            )

    async def _dispatch_loop(self) -> None:
        while True:
            self._wake.clear()  # before reading: a trigger committed during the read wakes us
            try:
                await self._dispatch_pending()
            except Exception:
                log.exception("dispatching pending executions failed; retrying soon")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)

    async def _dispatch_pending(self) -> None:
        async with self._db.read() as conn:
            pending = await store_executions.with_status(conn, [ExecutionStatus.PENDING])
        for record in pending:
            if record.id in self._tasks:
                continue
            async with self._lock:
                try:
                    await self._dispatch(record.id)
                except Exception:
                    log.exception("execution %s could not be dispatched", record.id)

    async def _dispatch(self, execution_id: str, *, resume: bool = False) -> None:
        if execution_id in self._tasks:
            return
        async with self._db.read() as conn:  # fresh: a cancel may have come since the sweep
            record = await store_executions.get_execution(conn, execution_id)
        expected = _ACTIVE if resume else (ExecutionStatus.PENDING,)
        if record is None or record.status not in expected:
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
        place = self._place(record, config)
        if isinstance(place, str):
            await self._fail_pending(record, place)
            return
        runner = ExecutionRunner(
            db=self._db,
            settings=self._settings,
            logs=self.logs,
            notifier=self.notifier,
            place=place,
            execution=record,
            workflow=workflow,
            max_parallel_steps=config.max_parallel_steps,
            resume=resume,
            keystore=self._keystore,
        )
        if record.status is ExecutionStatus.CANCELLING:
            runner.request_cancel("a cancel requested before the restart")
        task = asyncio.create_task(runner.run(), name=f"hpcwaas-execution-{execution_id}")
        self._runners[execution_id] = runner
        self._tasks[execution_id] = task
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

    def _place(self, record: ExecutionRecord, config: EnvironmentConfig) -> Place | str:
        """Where the execution runs, or why it cannot."""
        if isinstance(config, LocalEnvironment):
            return LocalPlace(self._settings.work_dir, record.id, self._transport)
        if not record.cluster_login or not record.key_id:
            return "no cluster account or SSH key was recorded for this execution"
        target = SshTarget(
            host=config.host,
            port=config.port,
            login=record.cluster_login,
            key_id=record.key_id,
            known_hosts="\n".join(config.host_keys),
        )
        if record.environment not in self._clusters:
            pool = SshPool(self._load_key, max_sessions=config.max_sessions)
            self._clusters[record.environment] = (pool, JobTracker(pool, record.environment))
        pool, tracker = self._clusters[record.environment]
        return ClusterPlace(
            config,
            pool,
            tracker,
            target,
            record.id,
            on_key_use=functools.partial(self._record_key_use, record),
        )

    async def _record_key_use(
        self, record: ExecutionRecord, target: SshTarget, failure: str | None
    ) -> None:
        """Audit which key an execution used, where and as whom (once per run of it)."""
        try:
            async with self._db.write() as conn:
                await audit_store.record(
                    conn,
                    actor=record.owner,
                    action=audit_store.AuditAction.SSH_KEY_USE,
                    target=target.key_id,
                    source=audit_store.ENGINE_SOURCE,
                    outcome=audit_store.Outcome.FAILURE if failure else audit_store.Outcome.SUCCESS,
                    details={
                        "execution_id": record.id,
                        "host": target.host,
                        "port": target.port,
                        "login": target.login,
                        **({"reason": failure} if failure else {}),
                    },
                )
        except Exception:
            # The execution goes on: its own database writes will fail loudly if the database
            # is gone; the server log keeps what the audit log could not.
            log.exception(
                "execution %s: could not audit the use of SSH key %s on %s",
                record.id,
                target.key_id,
                target.where,
            )

    def _runner_done(self, execution_id: str, task: asyncio.Task[None]) -> None:
        self._runners.pop(execution_id, None)
        self._tasks.pop(execution_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("execution %s: runner ended with %r", execution_id, exc)
        self.logs.forget(execution_id)
        self.notifier.forget(execution_id)

    async def _fail_pending(self, record: ExecutionRecord, reason: str) -> None:
        self.logs.emit(record.id, LogLevel.ERROR, f"Execution failed: {reason}")
        await self._forget_secrets(record)  # the execution never runs
        await finish_execution(
            self._db,
            self.logs,
            self.notifier,
            record.id,
            ExecutionStatus.FAILED,
            allowed_from={record.status},
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
                allowed_from=_ACTIVE,
                running_steps_to=StepState.FAILED,
                error=SERVER_STOPPED,
            )
        except Exception:
            log.exception("execution %s: could not record that the server stopped", execution_id)


def _cancel_outcome(record: ExecutionRecord | None, execution_id: str) -> ExecutionStatus:
    """The answer to a cancel that found the execution already moving on its own."""
    if record is None:
        raise ExecutionNotFound(execution_id)
    if record.status in (ExecutionStatus.CANCELLING, ExecutionStatus.CANCELLED):
        return record.status
    if record.status.terminal:
        raise ExecutionAlreadyFinished(record.status)
    return record.status
