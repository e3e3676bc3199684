"""Executions: trigger (or plan, for a dry run), cancel, and remove a finished one's data."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from hpcwaas.api.models import DryRunPlan
from hpcwaas.api.states import ExecutionStatus, LogLevel
from hpcwaas.auth.identity import Identity
from hpcwaas.auth.operators import is_operator
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.catalog.model import WorkflowSpec
from hpcwaas.engine.data_removal import DataRemover
from hpcwaas.engine.errors import EngineError
from hpcwaas.engine.plan import build_plan
from hpcwaas.engine.secret_inputs import forget_secrets, secret_inputs_path, split_secrets
from hpcwaas.logging_setup import request_id_var
from hpcwaas.services.audit import AuditRecorder, places_detail
from hpcwaas.services.deployments import deploy_if_needed, succeeded_outputs
from hpcwaas.services.errors import Conflict, NotFound, ServiceError, Unavailable
from hpcwaas.services.identities import check_key, resolve_identity, resolve_places
from hpcwaas.services.quotas import check_running_executions, check_trigger_rate
from hpcwaas.services.ratelimit import TriggerRateLimiter
from hpcwaas.services.runtime import Runtime
from hpcwaas.settings import EnvironmentConfig
from hpcwaas.store import executions as execution_store
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction, Outcome
from hpcwaas.store.executions import ExecutionRecord

log = logging.getLogger(__name__)

# Seconds a client should wait before asking again when a cluster could not be reached.
DATA_REMOVAL_RETRY_AFTER_SECONDS = 60


async def owned_execution(runtime: Runtime, user: Identity, execution_id: str) -> ExecutionRecord:
    """The caller's execution; someone else's is reported as not found, so IDs leak nothing.

    Operators reach every user's executions.
    """
    owner = None if is_operator(runtime.settings.operators, user) else user.user_id
    async with runtime.db.read() as conn:
        record = await execution_store.get_execution(conn, execution_id, owner=owner)
    if record is None:
        raise NotFound(f"execution {execution_id!r} not found")
    return record


@dataclass(frozen=True)
class _Checked:
    """A trigger request that passed every check: what recording or planning it needs."""

    workflow: DeployedWorkflow
    inputs: dict[str, Any]
    environment: EnvironmentConfig
    cluster_login: str | None
    key_id: str | None
    # the account on each environment its steps name besides the workflow's own
    places: dict[str, dict[str, str | None]]


async def _check_trigger(
    runtime: Runtime,
    user: Identity,
    workflow_id: str,
    given_inputs: dict[str, Any],
    audit: AuditRecorder | None,
) -> _Checked:
    """Validate a trigger as far as it goes without recording anything.

    Refused cluster identities are audited through ``audit`` (a dry run passes None).
    """
    workflow = runtime.catalog.get(workflow_id, user.user_id, user.groups)
    limits = runtime.settings.limits
    inputs = validate_inputs(
        workflow.spec,
        given_inputs,
        max_inputs=limits.max_inputs,
        max_value_bytes=limits.max_input_bytes,
    )
    environment = runtime.settings.environments.get(workflow.environment)
    if environment is None:
        raise NotFound(f"environment {workflow.environment!r} is not configured")
    # Refused before anything is recorded; (None, None) on local environments.
    try:
        cluster_login, key_id = await resolve_identity(runtime, user, workflow, inputs)
        home = (cluster_login, key_id)
        places = await resolve_places(runtime, user, workflow, inputs, home)
    except ServiceError as exc:
        if audit is not None:
            # Audited: among these is the use of someone else's SSH key.
            await audit.record(
                user.user_id,
                AuditAction.EXECUTION_TRIGGER,
                None,
                outcome=Outcome.FAILURE,
                details={"workflow_id": workflow.id, "reason": str(exc)},
            )
        raise
    await _check_key_inputs(runtime, user.user_id, workflow.spec, inputs)
    return _Checked(workflow, inputs, environment, cluster_login, key_id, places)


async def _check_key_inputs(
    runtime: Runtime, user_id: str, spec: WorkflowSpec, inputs: dict[str, Any]
) -> None:
    """A refusal unless every ``ssh_key`` input names one of the user's SSH keys."""
    names = [n for n, s in spec.inputs.items() if s.type == "ssh_key" and inputs.get(n)]
    if not names:
        return
    async with runtime.db.read() as conn:
        for name in names:
            await check_key(conn, str(inputs[name]), user_id, name)


async def plan_trigger(
    runtime: Runtime, user: Identity, workflow_id: str, given_inputs: dict[str, Any]
) -> DryRunPlan:
    """What a trigger would run, checked as a trigger is; nothing is run, counted or recorded."""
    checked = await _check_trigger(runtime, user, workflow_id, given_inputs, audit=None)
    return build_plan(
        checked.workflow,
        checked.inputs,
        checked.environment,
        local_work_root=runtime.settings.work_dir,
        cluster_login=checked.cluster_login,
        deployment_outputs=await succeeded_outputs(runtime.db, runtime.catalog, checked.workflow),
        others={
            name: runtime.settings.environments[name]
            for name in checked.places
            if name in runtime.settings.environments
        },
    )


async def trigger(
    runtime: Runtime,
    limiter: TriggerRateLimiter,
    audit: AuditRecorder,
    user: Identity,
    workflow_id: str,
    given_inputs: dict[str, Any],
) -> str:
    """Start an execution of the workflow; its ID once it is durably recorded."""
    # Every attempt counts against the rate, so a client retrying in a loop is slowed down.
    check_trigger_rate(limiter, user.user_id)
    checked = await _check_trigger(runtime, user, workflow_id, given_inputs, audit)
    execution_id = str(uuid.uuid4())
    # Secrets go to the key store first: a failure there leaves nothing recorded.
    inputs, secrets = split_secrets(checked.workflow.spec, checked.inputs)
    if secrets:
        await runtime.keystore.put(secret_inputs_path(execution_id), secrets)
    try:
        await _record(runtime, user, checked, inputs, execution_id, audit)
    except BaseException:
        if secrets:
            await forget_secrets(runtime.keystore, execution_id)
        raise
    runtime.engine.logs.emit(
        execution_id,
        LogLevel.DEBUG,
        f"Triggered by {user.user_id} (request {request_id_var.get()})",
    )
    runtime.engine.wake()
    return execution_id


async def _record(
    runtime: Runtime,
    user: Identity,
    checked: _Checked,
    inputs: dict[str, Any],
    execution_id: str,
    audit: AuditRecorder,
) -> None:
    """Record the new execution, its steps and the audit event in one transaction."""
    workflow = checked.workflow
    limits = runtime.settings.limits
    async with runtime.db.write() as conn:
        await user_store.ensure_user(conn, user.user_id)
        await user_store.lock_user(conn, user.user_id)
        # In the transaction that records the execution, so two triggers cannot both pass.
        await check_running_executions(conn, limits, user.user_id)
        # The application's deployment, if it has one that was never started from this file.
        await deploy_if_needed(
            conn, runtime.settings, runtime.catalog, workflow, audit, user.user_id
        )
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
            cluster_login=checked.cluster_login,
            key_id=checked.key_id,
            places=checked.places,
        )
        # Never the input values: some are secrets (docs/security.md, "Audit log").
        await audit.record(
            user.user_id,
            AuditAction.EXECUTION_TRIGGER,
            execution_id,
            details={
                "workflow_id": workflow.id,
                "environment": workflow.environment,
                "cluster_login": checked.cluster_login,
                "key_id": checked.key_id,
                **places_detail(checked.places),
            },
            conn=conn,
        )


async def cancel(
    runtime: Runtime, audit: AuditRecorder, user: Identity, execution_id: str
) -> ExecutionStatus:
    """Cancel the caller's execution; its status after the request (CANCELLED or CANCELLING)."""
    try:
        await owned_execution(runtime, user, execution_id)
        status = await runtime.engine.cancel(execution_id, by_user=user.user_id)
    except (ServiceError, EngineError) as exc:
        # Refused cancels are audited too: someone else's execution shows up here as not found.
        await audit.record(
            user.user_id,
            AuditAction.EXECUTION_CANCEL,
            execution_id,
            outcome=Outcome.FAILURE,
            details={"reason": str(exc)},
        )
        raise
    await audit.record(
        user.user_id, AuditAction.EXECUTION_CANCEL, execution_id, details={"status": status.value}
    )
    return status


async def remove_data(
    runtime: Runtime, audit: AuditRecorder, user: Identity, execution_id: str
) -> ExecutionRecord:
    """Remove a finished execution's data now; the execution as it is afterwards.

    Conflict while it has not finished; Unavailable when some data could not be removed
    (its cluster is out of reach), after removing the rest.
    """
    record = await owned_execution(runtime, user, execution_id)
    if not record.status.terminal:
        raise Conflict(
            f"execution {execution_id} is {record.status.value}: its data can be removed once "
            f"it has ended; cancel it first (DELETE /executions/{execution_id}) or wait for it",
        )
    remover = runtime.data_remover or DataRemover(runtime.db, runtime.settings, None)
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
        raise Unavailable(
            f"some data of execution {execution_id} could not be removed now ({reasons}); "
            f"removed: {done}. Send the same request again later to remove the rest",
            retry_after=DATA_REMOVAL_RETRY_AFTER_SECONDS,
        )
    await audit.record(
        user.user_id, AuditAction.EXECUTION_DATA_REMOVE, execution_id, details=details
    )
    async with runtime.db.read() as conn:
        fresh = await execution_store.get_execution(conn, execution_id)
    return fresh or record
