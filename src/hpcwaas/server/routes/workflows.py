"""`/workflows`: list, show, trigger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from hpcwaas.api.models import DryRunPlan, TriggerRequest, WorkflowDetail, WorkflowList
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, RuntimeDep, TriggerLimiterDep, page_size
from hpcwaas.server.openapi import problems
from hpcwaas.services import executions

router = APIRouter(tags=["workflows"])


@router.get("/workflows", response_model=WorkflowList, response_model_exclude_none=True)
async def list_workflows(
    runtime: RuntimeDep,
    user: CurrentUser,
    limit: int | None = None,
    cursor: str | None = None,
) -> WorkflowList:
    """The workflows the caller may trigger, sorted by ID; all of them unless `limit` is given."""
    visible = runtime.catalog.visible(user.user_id, user.groups)
    start = 0
    if cursor:
        start = next((i for i, wf in enumerate(visible) if wf.id > cursor), len(visible))
    if limit is None:
        page = visible[start:]
        return WorkflowList(workflows=[wf.to_public() for wf in page])
    size = page_size(limit, runtime, default=limit)
    page = visible[start : start + size]
    more = start + size < len(visible)
    return WorkflowList(
        workflows=[wf.to_public() for wf in page], next_cursor=page[-1].id if more else None
    )


@router.get("/workflows/{workflow_id}", response_model=WorkflowDetail, responses=problems(403))
async def get_workflow(workflow_id: str, runtime: RuntimeDep, user: CurrentUser) -> WorkflowDetail:
    """One workflow with its inputs, steps and outputs."""
    return runtime.catalog.get(workflow_id, user.user_id, user.groups).to_detail()


@router.post(
    "/workflows/{workflow_id}",
    status_code=201,
    response_class=Response,
    responses={
        200: {
            "description": "With `dry_run=true`: the plan; nothing was run or recorded.",
            "model": DryRunPlan,
        },
        201: {"description": "Triggered; `Location` names the new execution."},
        **problems(403, 429),
    },
)
async def trigger_workflow(
    workflow_id: str,
    runtime: RuntimeDep,
    user: CurrentUser,
    limiter: TriggerLimiterDep,
    audit: Audit,
    body: Annotated[TriggerRequest | None, Body()] = None,
    dry_run: Annotated[
        bool,
        Query(
            description="Validate the inputs as a trigger does and return the rendered plan "
            "(200) without running or recording anything."
        ),
    ] = False,
) -> Response:
    """Start an execution; returns once it is durably recorded. `dry_run=true`: the plan only."""
    # null, as the original client sends without -i, means no inputs
    given_inputs = (body.inputs if body else None) or {}
    if dry_run:
        plan = await executions.plan_trigger(runtime, user, workflow_id, given_inputs)
        return JSONResponse(plan.model_dump(mode="json"), status_code=200)
    execution_id = await executions.trigger(
        runtime, limiter, audit, user, workflow_id, given_inputs
    )
    return Response(status_code=201, headers={"Location": f"/executions/{execution_id}"})
