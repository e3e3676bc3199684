"""Deployments: started by the first trigger (or the first after the file changed), or by an
operator; listed and shown to operators only (engine/deployments.py runs them)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.catalog.catalog import Catalog, DeployedWorkflow
from hpcwaas.engine.deployments import BY_TRIGGER, deployment_label, start_deployment
from hpcwaas.services.audit import AuditRecorder, places_detail
from hpcwaas.services.errors import Conflict, NotFound, Unavailable
from hpcwaas.settings import Settings, SlurmEnvironment
from hpcwaas.store import deployments as deployment_store
from hpcwaas.store import identities as identity_store
from hpcwaas.store.audit import AuditAction
from hpcwaas.store.database import Database
from hpcwaas.store.deployments import DeploymentRecord


async def _start(
    conn: AsyncConnection,
    settings: Settings,
    deployment: DeployedWorkflow,
    requested_by: str,
    audit: AuditRecorder,
    actor: str,
) -> str:
    """Start ``deployment`` as its environment's ``deployment_user``, audited in the same
    transaction as the ``deployment.run`` of ``actor``; the execution's ID.

    Its steps on other environments (``environment:``) run there as that environment's
    ``deployment_user``: every account is checked before anything is recorded.
    """
    home = deployment.environment
    owner, login, key_id = await _account(conn, settings, deployment, home)
    places: dict[str, dict[str, str | None]] = {}
    for environment in deployment.other_environments():
        user, other_login, other_key = await _account(conn, settings, deployment, environment)
        places[environment] = {"login": other_login, "key_id": other_key}
        if user != owner:
            places[environment]["user_id"] = user
    execution_id = await start_deployment(
        conn,
        deployment,
        owner=owner,
        cluster_login=login,
        key_id=key_id,
        places=places,
        requested_by=requested_by,
    )
    await audit.record(
        actor,
        AuditAction.DEPLOYMENT_RUN,
        execution_id,
        details={
            "application": deployment.application.application,
            "environment": home,
            "requested_by": requested_by,
            "deployment_user": owner,
            "cluster_login": login,
            "key_id": key_id,
            **places_detail(places),
        },
        conn=conn,
    )
    return execution_id


async def _account(
    conn: AsyncConnection, settings: Settings, deployment: DeployedWorkflow, environment: str
) -> tuple[str, str | None, str | None]:
    """(deployment_user, cluster login, SSH key ID) of ``environment``; no login on a local
    one. Unavailable when the deployment_user has no account registered on a cluster."""
    config = settings.environments.get(environment)
    if config is None:
        raise NotFound(f"environment {environment!r} is not configured")
    user = config.deployment_user
    if not isinstance(config, SlurmEnvironment):
        return user, None, None
    identity = await identity_store.get_identity(conn, user, environment)
    if identity is None:
        label = deployment_label(deployment.application.application, deployment.environment)
        steps = "" if environment == deployment.environment else " (for its steps there)"
        raise Unavailable(
            f"{label} cannot run: the service identity {user!r} (deployment_user of "
            f"environment {environment}) has no cluster login and SSH key there{steps}; an "
            f"operator registers them (`waas environments set-identity {environment} "
            "--login <login> --key <key id>`, as that user)"
        )
    return user, identity.login, identity.key_id


async def deploy_if_needed(
    conn: AsyncConnection,
    settings: Settings,
    catalog: Catalog,
    workflow: DeployedWorkflow,
    audit: AuditRecorder,
    user_id: str,
) -> None:
    """Start the deployment ``workflow`` needs, in the transaction of ``user_id``'s trigger,
    unless the current one was started from the same file (whatever its state: a failed one
    is run again by an operator, `hpcwaas-api deployments run`)."""
    deployment = catalog.deployment(workflow.application.application, workflow.environment)
    if deployment is None:
        return
    await deployment_store.lock_deployment(
        conn, deployment.application.application, deployment.environment
    )
    current = await deployment_store.get_deployment(
        conn, deployment.application.application, deployment.environment
    )
    if current is None or current.definition_digest != deployment.digest:
        await _start(conn, settings, deployment, BY_TRIGGER, audit, user_id)


async def succeeded_outputs(
    db: Database, catalog: Catalog, workflow: DeployedWorkflow
) -> dict[str, dict[str, str]] | None:
    """The step outputs of the deployment an execution of ``workflow`` would start with now:
    the current one's, if it SUCCEEDED from the same file (None: a trigger would start one,
    wait for it, or fail with its error)."""
    if workflow.application.deployment is None:
        return None
    application, environment = workflow.application.application, workflow.environment
    deployment = catalog.deployment(application, environment)
    if deployment is None:
        return None
    async with db.read() as conn:
        current = await deployment_store.get_deployment(conn, application, environment)
        if (
            current is None
            or current.status is not ExecutionStatus.SUCCEEDED
            or current.definition_digest != deployment.digest
        ):
            return None
        return await deployment_store.deployment_outputs(conn, current.execution_id)


async def run_deployment(
    audit: AuditRecorder,
    settings: Settings,
    catalog: Catalog,
    application: str,
    environment: str,
    by: str,
) -> str:
    """Run the deployment of ``application`` on ``environment`` again now (an operator asks);
    the new execution's ID, audited. Conflict while the current one has not ended."""
    deployment = catalog.deployment(application, environment)
    if deployment is None:
        covering = [
            home
            for (app, home), found in catalog.deployments.items()
            if app == application and environment in found.other_environments()
        ]
        more = (
            f"; its steps there belong to its deployment on {', '.join(covering)}: run that one"
            if covering
            else " (no such application, not deployed there, or no deployment: section)"
        )
        raise NotFound(
            f"application {application!r} has no deployment on environment {environment!r}" + more
        )
    async with audit.db.write() as conn:
        await deployment_store.lock_deployment(conn, application, environment)
        current = await deployment_store.get_deployment(conn, application, environment)
        if current is not None and not current.status.terminal:
            raise Conflict(
                f"{deployment_label(application, environment)} is {current.status.value} "
                f"(execution {current.execution_id}); run it again once it has ended"
            )
        return await _start(conn, settings, deployment, by, audit, by)


async def list_deployments(db: Database) -> list[DeploymentRecord]:
    """Every deployment started so far, by application and environment."""
    async with db.read() as conn:
        return await deployment_store.list_deployments(conn)


async def get_deployment(db: Database, application: str, environment: str) -> DeploymentRecord:
    """The current deployment of ``application`` on ``environment``; NotFound if none ran."""
    async with db.read() as conn:
        record = await deployment_store.get_deployment(conn, application, environment)
    if record is None:
        raise NotFound(
            f"{deployment_label(application, environment)} has not been started "
            f"(`hpcwaas-api deployments run {application} {environment}` starts it)"
        )
    return record
