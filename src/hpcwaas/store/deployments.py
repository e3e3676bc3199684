"""Deployments: which execution deploys each application on each environment.

An application's deployment (its ``deployment:`` steps) runs as an ordinary execution; this
table says which one is the current deployment of (application, environment) and from which
file digest it was started. Its status, error, steps and outputs are that execution's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.store.tables import deployments, executions, steps


@dataclass(frozen=True)
class DeploymentRecord:
    """The current deployment of one application on one environment, with its execution's state."""

    application: str
    environment: str
    execution_id: str
    definition_digest: str
    requested_by: str  # "trigger" (the first trigger, or one after the file changed) or an operator
    requested_at: datetime
    status: ExecutionStatus
    error: str | None
    started_at: datetime | None
    ended_at: datetime | None


# The key space of the PostgreSQL advisory locks that serialize the starts of one deployment.
_DEPLOYMENT_LOCK_SPACE = 0x6877_6470


async def lock_deployment(conn: AsyncConnection, application: str, environment: str) -> None:
    """Hold, until the transaction ends, the right to decide (application, environment)'s
    deployment: two triggers on two replicas then cannot both start one. SQLite has one
    writer at a time."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
            {"space": _DEPLOYMENT_LOCK_SPACE, "key": f"{application}@{environment}"},
        )


_SELECT = select(
    deployments,
    executions.c.status,
    executions.c.error,
    executions.c.started_at,
    executions.c.ended_at,
).join(executions, executions.c.id == deployments.c.execution_id)


def _record(row: object) -> DeploymentRecord:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["status"] = ExecutionStatus(values["status"])
    return DeploymentRecord(**values)


async def get_deployment(
    conn: AsyncConnection, application: str, environment: str
) -> DeploymentRecord | None:
    """The current deployment of ``application`` on ``environment``, if one was ever started."""
    result = await conn.execute(
        _SELECT.where(
            deployments.c.application == application,
            deployments.c.environment == environment,
        )
    )
    row = result.first()
    return None if row is None else _record(row)


async def list_deployments(conn: AsyncConnection) -> list[DeploymentRecord]:
    """Every current deployment, by application then environment."""
    result = await conn.execute(
        _SELECT.order_by(deployments.c.application, deployments.c.environment)
    )
    return [_record(row) for row in result]


async def set_deployment(
    conn: AsyncConnection,
    *,
    application: str,
    environment: str,
    execution_id: str,
    definition_digest: str,
    requested_by: str,
) -> None:
    """Make ``execution_id`` the current deployment of ``application`` on ``environment``."""
    await conn.execute(
        delete(deployments).where(
            deployments.c.application == application,
            deployments.c.environment == environment,
        )
    )
    await conn.execute(
        insert(deployments).values(
            application=application,
            environment=environment,
            execution_id=execution_id,
            definition_digest=definition_digest,
            requested_by=requested_by,
            requested_at=datetime.now(UTC),
        )
    )


async def deployment_outputs(conn: AsyncConnection, execution_id: str) -> dict[str, dict[str, str]]:
    """The step outputs a deployment's execution recorded, by step."""
    result = await conn.execute(
        select(steps.c.name, steps.c.outputs).where(steps.c.execution_id == execution_id)
    )
    return {name: dict(outputs or {}) for name, outputs in result}
