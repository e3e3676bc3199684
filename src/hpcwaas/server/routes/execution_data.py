"""`DELETE /executions/{id}/data`: remove a finished execution's data before retention does."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from hpcwaas.api.models import ExecutionPublic
from hpcwaas.engine.data_removal import DataRemover
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, ServicesDep
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem
from hpcwaas.server.routes.executions import execution_public, owned_execution
from hpcwaas.store import executions as execution_store
from hpcwaas.store.audit import AuditAction, Outcome

log = logging.getLogger(__name__)
router = APIRouter(tags=["executions"])

# Seconds a client should wait before asking again when a cluster could not be reached.
RETRY_AFTER = "60"


@router.delete(
    "/executions/{execution_id}/data",
    response_model=ExecutionPublic,
    responses=problems(404, 409, 503),
)
async def remove_execution_data(
    execution_id: str, services: ServicesDep, user: CurrentUser, audit: Audit
) -> ExecutionPublic:
    """Remove a finished execution's working directories (here and on the cluster), logs and
    stored output files now. The execution stays listed with its status; `data_removed`
    says what was removed and when. 409 while it has not finished; 503 (with `Retry-After`)
    when its cluster cannot be reached, after removing the rest.
    """
    record = await owned_execution(services, user, execution_id)
    if not record.status.terminal:
        raise ApiProblem(
            409,
            f"execution {execution_id} is {record.status.value}: its data can be removed once "
            f"it has ended; cancel it first (DELETE /executions/{execution_id}) or wait for it",
        )
    remover = services.data_remover or DataRemover(services.db, services.settings, None)
    kinds = remover.applicable(record)
    outcome = await remover.remove(record, kinds, by=user.user_id)
    details = {
        "removed": ",".join(kind.value for kind in outcome.removed),
        "log_entries": outcome.log_entries,
        "output_files": outcome.output_files,
    }
    if outcome.failed:
        reasons = "; ".join(f"{kind.value}: {why}" for kind, why in outcome.failed.items())
        log.warning("execution %s: some of its data stays for now: %s", execution_id, reasons)
        await audit.record(
            user.user_id,
            AuditAction.EXECUTION_DATA_REMOVE,
            execution_id,
            outcome=Outcome.FAILURE,
            details={**details, "reason": reasons},
        )
        done = ", ".join(k.value for k in outcome.removed) or "nothing else"
        raise ApiProblem(
            503,
            f"some data of execution {execution_id} could not be removed now ({reasons}); "
            f"removed: {done}. Send the same request again later to remove the rest",
            headers={"Retry-After": RETRY_AFTER},
        )
    await audit.record(
        user.user_id, AuditAction.EXECUTION_DATA_REMOVE, execution_id, details=details
    )
    async with services.db.read() as conn:
        fresh = await execution_store.get_execution(conn, execution_id)
    return await execution_public(services, fresh or record)
