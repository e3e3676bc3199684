"""`/environments`: the configured environments and the caller's cluster account on each."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hpcwaas.api.models import (
    ClusterIdentityPublic,
    ClusterIdentityUpdate,
    EnvironmentList,
    EnvironmentPublic,
)
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, ServicesDep
from hpcwaas.server.identity import (
    check_key,
    check_login,
    cluster_environment,
    environment_config,
)
from hpcwaas.server.problems import ApiProblem
from hpcwaas.settings import EnvironmentConfig, SlurmEnvironment
from hpcwaas.store import identities as identity_store
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction, Outcome
from hpcwaas.store.identities import ClusterIdentity

router = APIRouter(tags=["environments"])


def _public(
    env_id: str, config: EnvironmentConfig, identity: ClusterIdentity | None
) -> EnvironmentPublic:
    return EnvironmentPublic(
        id=env_id,
        name=config.name or env_id,
        kind=config.kind,
        host=config.host if isinstance(config, SlurmEnvironment) else None,
        identity=(
            None
            if identity is None
            else ClusterIdentityPublic(login=identity.login, key_id=identity.key_id)
        ),
    )


@router.get("/environments", response_model=EnvironmentList)
async def list_environments(services: ServicesDep, user: CurrentUser) -> EnvironmentList:
    """Every configured environment, sorted by ID, with your registered cluster account."""
    async with services.db.read() as conn:
        identities = await identity_store.list_identities(conn, user.user_id)
    configured = services.settings.environments
    return EnvironmentList(
        environments=[
            _public(env_id, configured[env_id], identities.get(env_id))
            for env_id in sorted(configured)
        ]
    )


@router.get("/environments/{name}", response_model=EnvironmentPublic)
async def get_environment(name: str, services: ServicesDep, user: CurrentUser) -> EnvironmentPublic:
    """One environment with your registered cluster account."""
    config = environment_config(services, name)
    async with services.db.read() as conn:
        identity = await identity_store.get_identity(conn, user.user_id, name)
    return _public(name, config, identity)


@router.put("/environments/{name}/identity", response_model=EnvironmentPublic)
async def set_identity(
    name: str, body: ClusterIdentityUpdate, services: ServicesDep, user: CurrentUser, audit: Audit
) -> EnvironmentPublic:
    """Register the cluster login and SSH key your steps run with on this environment."""
    config = cluster_environment(services, name)
    details = {"login": body.login, "key_id": body.key_id}
    try:
        check_login(body.login, "login")
        async with services.db.write() as conn:
            await check_key(conn, body.key_id, user.user_id)
            await user_store.ensure_user(conn, user.user_id)
            await identity_store.set_identity(conn, user.user_id, name, body.login, body.key_id)
            await audit.record(
                user.user_id, AuditAction.IDENTITY_SET, name, details=details, conn=conn
            )
    except ApiProblem as exc:
        # Recorded after the transaction, which is over: among these is someone else's key.
        await audit.record(
            user.user_id,
            AuditAction.IDENTITY_SET,
            name,
            outcome=Outcome.FAILURE,
            details={**details, "reason": "; ".join(exc.details)},
        )
        raise
    return _public(name, config, ClusterIdentity(name, body.login, body.key_id))


@router.delete("/environments/{name}/identity", status_code=204, response_class=Response)
async def delete_identity(
    name: str, services: ServicesDep, user: CurrentUser, audit: Audit
) -> Response:
    """Forget your cluster account on this environment."""
    environment_config(services, name)
    async with services.db.write() as conn:
        deleted = await identity_store.delete_identity(conn, user.user_id, name)
        if deleted:
            await audit.record(user.user_id, AuditAction.IDENTITY_UNSET, name, conn=conn)
    if not deleted:
        raise ApiProblem(404, f"no cluster account registered on environment {name!r}")
    return Response(status_code=204)
