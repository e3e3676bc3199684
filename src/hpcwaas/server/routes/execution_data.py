"""`DELETE /executions/{id}/data`: remove a finished execution's data before retention does."""

from __future__ import annotations

from fastapi import APIRouter

from hpcwaas.api.models import ExecutionPublic
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, RuntimeDep
from hpcwaas.server.openapi import problems
from hpcwaas.server.routes.executions import execution_public
from hpcwaas.services import executions

router = APIRouter(tags=["executions"])


@router.delete(
    "/executions/{execution_id}/data",
    response_model=ExecutionPublic,
    responses=problems(404, 409, 503),
)
async def remove_execution_data(
    execution_id: str, runtime: RuntimeDep, user: CurrentUser, audit: Audit
) -> ExecutionPublic:
    """Remove a finished execution's working directories (here and on the cluster), logs and
    stored output files now. The execution stays listed with its status; `data_removed`
    says what was removed and when. 409 while it has not finished; 503 (with `Retry-After`)
    when its cluster cannot be reached, after removing the rest.
    """
    record = await executions.remove_data(runtime, audit, user, execution_id)
    return await execution_public(runtime, record)
