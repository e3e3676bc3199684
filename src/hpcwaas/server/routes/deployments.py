"""`/deployments`: the applications' deployments, for operators."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hpcwaas.api.models import DeploymentList, DeploymentPublic
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import OperatorUser, RuntimeDep
from hpcwaas.server.openapi import problems
from hpcwaas.services import deployments
from hpcwaas.store.deployments import DeploymentRecord

router = APIRouter(tags=["deployments"])


def _public(record: DeploymentRecord) -> DeploymentPublic:
    return DeploymentPublic(
        application_id=record.application,
        environment_id=record.environment,
        execution_id=record.execution_id,
        status=record.status.value,
        error=record.error,
        definition_digest=record.definition_digest,
        requested_by=record.requested_by,
        requested_at=record.requested_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
    )


@router.get("/deployments", response_model=DeploymentList, responses=problems(403))
async def list_deployments(runtime: RuntimeDep, _operator: OperatorUser) -> DeploymentList:
    """Every application's current deployment on each environment. Operators only."""
    records = await deployments.list_deployments(runtime.db)
    return DeploymentList(deployments=[_public(record) for record in records])


@router.get(
    "/deployments/{application_id}/{environment_id}",
    response_model=DeploymentPublic,
    responses=problems(403, 404),
)
async def get_deployment(
    application_id: str, environment_id: str, runtime: RuntimeDep, _operator: OperatorUser
) -> DeploymentPublic:
    """The current deployment of an application on an environment: its status and execution
    ID (its steps and logs: `GET /executions/{id}`, `GET /executions/{id}/logs`). Operators only.
    """
    return _public(await deployments.get_deployment(runtime.db, application_id, environment_id))


@router.post(
    "/deployments/{application_id}/{environment_id}",
    status_code=201,
    response_class=Response,
    responses=problems(403, 404, 409, 503),
)
async def run_deployment(
    application_id: str,
    environment_id: str,
    runtime: RuntimeDep,
    operator: OperatorUser,
    audit: Audit,
) -> Response:
    """Run the deployment again now (after a failure, or to refresh what it made); 409 while
    the current one has not ended. The new execution is in `Location`. Operators only."""
    execution_id = await deployments.run_deployment(
        audit,
        runtime.settings,
        runtime.catalog,
        application_id,
        environment_id,
        operator.user_id,
    )
    runtime.engine.wake()
    return Response(status_code=201, headers={"Location": f"/executions/{execution_id}"})
