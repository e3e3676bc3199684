"""`/workflows`: list, show, trigger."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from hpcwaas.api.models import DryRunPlan, TriggerRequest, WorkflowDetail, WorkflowList
from hpcwaas.api.states import LogLevel
from hpcwaas.auth.identity import Identity
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.catalog.model import WorkflowSpec
from hpcwaas.engine.plan import build_plan
from hpcwaas.engine.secret_inputs import forget_secrets, secret_inputs_path, split_secrets
from hpcwaas.server.auditing import Audit, RequestAudit
from hpcwaas.server.deps import CurrentUser, ServicesDep, TriggerLimiterDep, page_size
from hpcwaas.server.identity import check_key, resolve_identity
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem
from hpcwaas.server.quotas import check_running_executions, check_trigger_rate
from hpcwaas.server.requestid import request_id_var
from hpcwaas.server.services import Services
from hpcwaas.store import executions as execution_store
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction, Outcome

router = APIRouter(tags=["workflows"])


@router.get("/workflows", response_model=WorkflowList, response_model_exclude_none=True)
async def list_workflows(
    services: ServicesDep,
    user: CurrentUser,
    limit: int | None = None,
    cursor: str | None = None,
) -> WorkflowList:
    """The workflows the caller may trigger, sorted by ID; all of them unless `limit` is given."""
    visible = services.catalog.visible(user.user_id, user.groups)
    start = 0
    if cursor:
        start = next((i for i, wf in enumerate(visible) if wf.id > cursor), len(visible))
    if limit is None:
        page = visible[start:]
        return WorkflowList(workflows=[wf.to_public() for wf in page])
    size = page_size(limit, services, default=limit)
    page = visible[start : start + size]
    more = start + size < len(visible)
    return WorkflowList(
        workflows=[wf.to_public() for wf in page], next_cursor=page[-1].id if more else None
    )


@router.get("/workflows/{workflow_id}", response_model=WorkflowDetail, responses=problems(403))
async def get_workflow(
    workflow_id: str, services: ServicesDep, user: CurrentUser
) -> WorkflowDetail:
    """One workflow with its inputs, steps and outputs."""
    return services.catalog.get(workflow_id, user.user_id, user.groups).to_detail()


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
    services: ServicesDep,
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
    if not dry_run:
        # Every attempt counts against the rate, so a client retrying in a loop is slowed down.
        # A dry run starts nothing: it does not count.
        check_trigger_rate(limiter, user.user_id)
    workflow = services.catalog.get(workflow_id, user.user_id, user.groups)
    limits = services.settings.limits
    inputs = validate_inputs(
        workflow.spec,
        (body.inputs if body else None) or {},
        max_inputs=limits.max_inputs,
        max_value_bytes=limits.max_input_bytes,
    )
    environment = services.settings.environments.get(workflow.environment)
    if environment is None:
        raise ApiProblem(404, f"environment {workflow.environment!r} is not configured")
    # Refused (400) before anything is recorded; (None, None) on local environments.
    try:
        cluster_login, key_id = await resolve_identity(services, user, workflow, inputs)
    except ApiProblem as exc:
        if not dry_run:  # a dry run runs nothing: no audit event
            # Audited: among these is the use of someone else's SSH key.
            await audit.record(
                user.user_id,
                AuditAction.EXECUTION_TRIGGER,
                None,
                outcome=Outcome.FAILURE,
                details={"workflow_id": workflow.id, "reason": "; ".join(exc.details)},
            )
        raise
    await check_key_inputs(services, user.user_id, workflow.spec, inputs)
    if dry_run:
        plan = build_plan(
            workflow,
            inputs,
            environment,
            local_work_root=services.settings.work_dir,
            cluster_login=cluster_login,
        )
        return JSONResponse(plan.model_dump(mode="json"), status_code=200)
    execution_id = str(uuid.uuid4())
    # Secrets go to the key store first: a failure there leaves nothing recorded.
    inputs, secrets = split_secrets(workflow.spec, inputs)
    if secrets:
        await services.keystore.put(secret_inputs_path(execution_id), secrets)
    try:
        await _record(services, user, workflow, inputs, execution_id, cluster_login, key_id, audit)
    except BaseException:
        if secrets:
            await forget_secrets(services.keystore, execution_id)
        raise
    services.engine.logs.emit(
        execution_id,
        LogLevel.DEBUG,
        f"Triggered by {user.user_id} (request {request_id_var.get()})",
    )
    services.engine.wake()
    return Response(status_code=201, headers={"Location": f"/executions/{execution_id}"})


async def check_key_inputs(
    services: Services, user_id: str, spec: WorkflowSpec, inputs: dict[str, Any]
) -> None:
    """A 400 unless every ``ssh_key`` input names one of the caller's SSH keys."""
    names = [n for n, s in spec.inputs.items() if s.type == "ssh_key" and inputs.get(n)]
    if not names:
        return
    async with services.db.read() as conn:
        for name in names:
            await check_key(conn, str(inputs[name]), user_id, name)


async def _record(
    services: Services,
    user: Identity,
    workflow: DeployedWorkflow,
    inputs: dict[str, Any],
    execution_id: str,
    cluster_login: str | None,
    key_id: str | None,
    audit: RequestAudit,
) -> None:
    """Record the new execution, its steps and the audit event in one transaction."""
    limits = services.settings.limits
    async with services.db.write() as conn:
        await user_store.ensure_user(conn, user.user_id)
        await user_store.lock_user(conn, user.user_id)
        # In the transaction that records the execution, so two triggers cannot both pass.
        await check_running_executions(conn, limits, user.user_id)
        await execution_store.create_execution(
            conn,
            execution_id=execution_id,
            owner=user.user_id,
            workflow_id=workflow.id,
            application=workflow.application.application,
            environment=workflow.environment,
            workflow=workflow.name,
            inputs=inputs,
            definition_digest=workflow.digest,
            step_names=workflow.step_order(),
            cluster_login=cluster_login,
            key_id=key_id,
        )
        # Never the input values: some are secrets (docs/security.md, "Audit log").
        await audit.record(
            user.user_id,
            AuditAction.EXECUTION_TRIGGER,
            execution_id,
            details={
                "workflow_id": workflow.id,
                "environment": workflow.environment,
                "cluster_login": cluster_login,
                "key_id": key_id,
            },
            conn=conn,
        )
