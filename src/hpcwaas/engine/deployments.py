"""Deployments: the steps an application runs once per environment before its executions.

A deployment runs as an execution of the application's ``deployment:`` section (workflow
name ``.deployment``, owned by the environment's ``deployment_user``; its steps on another
environment run there as that environment's ``deployment_user``); ``store/deployments.py``
says which execution is the current deployment of (application, environment). An execution
of one of the application's workflows starts once that deployment SUCCEEDED, with its step
outputs as ``deployment.outputs``; it waits (PENDING) while the deployment runs, and fails
with the deployment's error if it failed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ExecutionStatus, LogLevel
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.engine.logsink import LogSink
from hpcwaas.store import deployments as deployment_store
from hpcwaas.store import execution_leases as leases
from hpcwaas.store import executions as execution_store
from hpcwaas.store import users as user_store
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord

# Who asked for a deployment that a trigger started (first trigger, or the file changed).
BY_TRIGGER = "trigger"


@dataclass(frozen=True)
class Gate:
    """Whether an execution may start: with these outputs, not yet, or never (``error``)."""

    outputs: dict[str, dict[str, str]] | None = None
    waiting: str | None = None  # why it waits, for its log
    error: str | None = None


def deployment_label(application: str, environment: str) -> str:
    """How messages name a deployment."""
    return f"the deployment of {application} on {environment}"


async def gate(conn: AsyncConnection, record: ExecutionRecord) -> Gate:
    """Whether ``record`` (of an application that has a deployment) may start now."""
    label = deployment_label(record.application, record.environment)
    current = await deployment_store.get_deployment(conn, record.application, record.environment)
    if current is None:
        return Gate(
            error=f"{label} was never started; an operator starts it with "
            f"`hpcwaas-api deployments run {record.application} {record.environment}`"
        )
    if current.status is ExecutionStatus.SUCCEEDED:
        return Gate(outputs=await deployment_store.deployment_outputs(conn, current.execution_id))
    if current.status is ExecutionStatus.FAILED:
        return Gate(error=f"{label} failed: {current.error or 'no reason recorded'}")
    if current.status is ExecutionStatus.CANCELLED:
        return Gate(error=f"{label} was cancelled; an operator runs it again")
    return Gate(waiting=f"Waiting for {label} (execution {current.execution_id})")


async def start_deployment(
    conn: AsyncConnection,
    deployment: DeployedWorkflow,
    *,
    owner: str,
    cluster_login: str | None,
    key_id: str | None,
    places: dict[str, dict[str, str | None]],
    requested_by: str,
) -> str:
    """Record a new PENDING execution of ``deployment`` and make it the current one; its ID.

    ``places``: the accounts on the other environments its steps name (as an execution's).
    """
    execution_id = str(uuid.uuid4())
    await user_store.ensure_user(conn, owner)
    await execution_store.create_execution(
        conn,
        execution_id=execution_id,
        owner=owner,
        workflow_id=deployment.id,
        application=deployment.application.application,
        environment=deployment.environment,
        workflow=deployment.name,
        inputs={},
        definition_digest=deployment.digest,
        step_names=deployment.step_order(),
        cluster_login=cluster_login,
        key_id=key_id,
        places=places,
    )
    await deployment_store.set_deployment(
        conn,
        application=deployment.application.application,
        environment=deployment.environment,
        execution_id=execution_id,
        definition_digest=deployment.digest,
        requested_by=requested_by,
    )
    return execution_id


class DeploymentWaits:
    """The engine's side: which executions wait here for a deployment, which deployments run.

    An execution whose deployment has not ended is left PENDING and its lease released, so
    that the next claim round (at the latest the engine's sweep later, at once when a
    deployment ends here) looks again, on whichever replica claims it.
    """

    def __init__(self, db: Database, replica: str, logs: LogSink) -> None:
        self._db = db
        self._replica = replica
        self._logs = logs
        self._waiting: set[str] = set()  # executions whose wait was logged here
        self._running: set[str] = set()  # deployments running here

    async def gate(
        self, record: ExecutionRecord, workflow: DeployedWorkflow, *, resume: bool
    ) -> Gate:
        """Whether ``record`` starts now (a Gate with the deployment's outputs, if any).

        A resumed execution started long ago: it goes on with the outputs there are.
        """
        if workflow.application.deployment is None or workflow.is_deployment:
            return Gate()
        async with self._db.read() as conn:
            found = await gate(conn, record)
        if resume:
            return Gate(outputs=found.outputs)
        if found.waiting is not None:
            if record.id not in self._waiting:
                self._waiting.add(record.id)
                self._logs.emit(record.id, LogLevel.INFO, found.waiting)
            async with self._db.write() as conn:
                await leases.release(conn, self._replica, [record.id])
            return found
        self._waiting.discard(record.id)
        return found

    def started(self, workflow: DeployedWorkflow, execution_id: str) -> None:
        """A runner started here for ``execution_id``."""
        if workflow.is_deployment:
            self._running.add(execution_id)

    def ended(self, execution_id: str) -> bool:
        """A runner ended here; whether it ran a deployment (others may wait for it)."""
        if execution_id in self._running:
            self._running.discard(execution_id)
            return True
        return False

    def forget(self, execution_id: str) -> None:
        """``execution_id`` will not start (it failed before)."""
        self._waiting.discard(execution_id)
