"""Deployments: the steps an application runs once per environment before its executions.

A deployment runs as an execution of the application's ``deployment:`` section (workflow
name ``.deployment``, owned by the environment's ``deployment_user``); ``store/deployments.py``
says which execution is the current deployment of (application, environment). An execution
of one of the application's workflows starts once that deployment SUCCEEDED, with its step
outputs as ``deployment.outputs``; it waits (PENDING) while the deployment runs, and fails
with the deployment's error if it failed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.store import deployments as deployment_store
from hpcwaas.store import executions as execution_store
from hpcwaas.store import users as user_store
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
    requested_by: str,
) -> str:
    """Record a new PENDING execution of ``deployment`` and make it the current one; its ID."""
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
