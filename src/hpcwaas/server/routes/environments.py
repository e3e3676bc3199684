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
from hpcwaas.server.deps import CurrentUser, RuntimeDep
from hpcwaas.services import identities
from hpcwaas.settings import EnvironmentConfig, SlurmEnvironment
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
async def list_environments(runtime: RuntimeDep, user: CurrentUser) -> EnvironmentList:
    """Every configured environment, sorted by ID, with your registered cluster account."""
    registered = await identities.registered_identities(runtime, user.user_id)
    configured = runtime.settings.environments
    return EnvironmentList(
        environments=[
            _public(env_id, configured[env_id], registered.get(env_id))
            for env_id in sorted(configured)
        ]
    )


@router.get("/environments/{name}", response_model=EnvironmentPublic)
async def get_environment(name: str, runtime: RuntimeDep, user: CurrentUser) -> EnvironmentPublic:
    """One environment with your registered cluster account."""
    config, identity = await identities.registered_identity(runtime, user.user_id, name)
    return _public(name, config, identity)


@router.put("/environments/{name}/identity", response_model=EnvironmentPublic)
async def set_identity(
    name: str, body: ClusterIdentityUpdate, runtime: RuntimeDep, user: CurrentUser, audit: Audit
) -> EnvironmentPublic:
    """Register the cluster login and SSH key your steps run with on this environment."""
    config, identity = await identities.register_identity(
        runtime, audit, user.user_id, name, body.login, body.key_id
    )
    return _public(name, config, identity)


@router.delete("/environments/{name}/identity", status_code=204, response_class=Response)
async def delete_identity(
    name: str, runtime: RuntimeDep, user: CurrentUser, audit: Audit
) -> Response:
    """Forget your cluster account on this environment."""
    await identities.forget_identity(runtime, audit, user.user_id, name)
    return Response(status_code=204)
