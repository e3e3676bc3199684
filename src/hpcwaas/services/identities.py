"""Cluster identities: which login and SSH key a user's steps run with on an environment.

On a `slurm` environment steps run over SSH as the user's own cluster account. The
account and key come from the trigger's reserved inputs `user_id` and `vault_id`
(docs/compatibility.md, "Routes"), else from the defaults the user registered with
`PUT /environments/{name}/identity`. A key is only ever usable by the user who
generated it (docs/compatibility.md, "Deliberate differences").
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.auth.identity import Identity
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.services.audit import AuditRecorder
from hpcwaas.services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from hpcwaas.services.runtime import Runtime
from hpcwaas.settings import EnvironmentConfig, SlurmEnvironment
from hpcwaas.store import identities as identity_store
from hpcwaas.store import keys as key_records
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction, Outcome
from hpcwaas.store.identities import ClusterIdentity

LOGIN_RULE = r"^[a-z_][a-z0-9_.-]{0,31}$"
_LOGIN = re.compile(LOGIN_RULE)
# Values echoed in error details are cut to this many characters.
_SHOWN = 64


def cut(value: str) -> str:
    """A value for an error detail, cut short if long."""
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "..."


def environment_config(runtime: Runtime, name: str) -> EnvironmentConfig:
    """The configured environment, or NotFound."""
    config = runtime.settings.environments.get(name)
    if config is None:
        raise NotFound(f"environment {name!r} not found")
    return config


def cluster_environment(runtime: Runtime, name: str) -> SlurmEnvironment:
    """The environment if it is reached over SSH as the user's account, else a refusal."""
    config = environment_config(runtime, name)
    if not isinstance(config, SlurmEnvironment):
        raise InvalidRequest(
            f"environment {name} runs steps on the server's host and needs no cluster account"
        )
    return config


def check_login(login: str, field: str, input_name: str | None = None) -> None:
    """InvalidRequest naming `field` and the rule unless `login` is a valid cluster login.

    ``input_name``: the trigger input the login came from, named in the error's source.
    """
    # fullmatch: `$` alone would accept a trailing newline.
    if _LOGIN.fullmatch(login) is None:
        raise InvalidRequest(
            f"{field} {cut(login)!r} is not a valid cluster login: it must match {LOGIN_RULE} "
            "(lower-case letters, digits, '_', '.' and '-', at most 32 characters, "
            "starting with a letter or '_')",
            input_name=input_name,
        )


def check_signable(
    config: SlurmEnvironment,
    environment: str,
    user_id: str,
    login: str,
    input_name: str | None = None,
) -> None:
    """Forbidden when the environment signs SSH certificates and the user may not have one
    for ``login``: the service would otherwise log in to any account the CA accepts."""
    certificates = config.ssh_certificates
    if certificates is not None and not certificates.may_sign(user_id, login):
        raise Forbidden(
            f"you may not run as the cluster login {cut(login)!r} on environment {environment}: "
            "its SSH certificates are signed only for the logins its operator allowed you "
            f"(environments.{environment}.ssh_certificates.logins)",
            input_name=input_name,
        )


async def check_key(
    conn: AsyncConnection, key_id: str, user_id: str, input_name: str | None = None
) -> None:
    """InvalidRequest unless the SSH key is one of the user's.

    Someone else's key gets the answer an unknown ID gets, so key IDs leak nothing
    (docs/security.md, "Operators").
    """
    if await key_records.get_key(conn, key_id, user_id) is None:
        raise InvalidRequest(
            f"no SSH key {cut(key_id)}: generate one with `waas ssh_keys key-gen`",
            input_name=input_name,
        )


def _given(inputs: dict[str, Any], name: str) -> str | None:
    value = inputs.get(name)
    if value is None or value == "":
        return None
    return str(value)


async def resolve_identity(
    runtime: Runtime, user: Identity, workflow: DeployedWorkflow, inputs: dict[str, Any]
) -> tuple[str | None, str | None]:
    """The (cluster login, SSH key ID) the workflow's steps run with; (None, None) locally.

    The login inputs (`user_id`; for a TOSCA topology `<Node>_user`, `user`, `<Node>_user_id`
    first) and `vault_id` win over the registered defaults, which win over the workflow's
    default login; anything missing or unusable is a ServiceError raised before the
    execution is recorded.
    """
    return await _identity_on(runtime, user, workflow, inputs, workflow.environment, (None, None))


async def resolve_places(
    runtime: Runtime,
    user: Identity,
    workflow: DeployedWorkflow,
    inputs: dict[str, Any],
    home: tuple[str | None, str | None],
) -> dict[str, dict[str, str | None]]:
    """The cluster account on each environment the steps name besides the workflow's own.

    The same rules as ``resolve_identity``, per environment: the inputs apply to every
    environment; else the account the user registered for that environment; else ``home``,
    the account on the workflow's environment. Checked there as on the home.
    """
    places: dict[str, dict[str, str | None]] = {}
    for environment in workflow.other_environments():
        login, key_id = await _identity_on(runtime, user, workflow, inputs, environment, home)
        places[environment] = {"login": login, "key_id": key_id}
    return places


async def _identity_on(
    runtime: Runtime,
    user: Identity,
    workflow: DeployedWorkflow,
    inputs: dict[str, Any],
    environment: str,
    fallback: tuple[str | None, str | None],
) -> tuple[str | None, str | None]:
    """The (login, key ID) of the workflow's steps on ``environment``; (None, None) locally."""
    config = runtime.settings.environments.get(environment)
    if not isinstance(config, SlurmEnvironment):
        return None, None
    login_input = next((n for n in workflow.login_inputs if _given(inputs, n) is not None), None)
    login = _given(inputs, login_input) if login_input is not None else None
    key_id = _given(inputs, "vault_id")
    async with runtime.db.read() as conn:
        registered = None
        if login is None or key_id is None:
            registered = await identity_store.get_identity(conn, user.user_id, environment)
            if registered is not None:
                login = login or registered.login
                key_id = key_id or registered.key_id
        from_home = registered is None and login is None and fallback[0] is not None
        login = login or fallback[0]
        key_id = key_id or fallback[1]
        from_topology = login is None and workflow.default_login is not None
        login = login or workflow.default_login
        if login is None or key_id is None:
            runs = "runs on" if environment == workflow.environment else "runs steps on"
            raise InvalidRequest(
                f"workflow {workflow.id} {runs} {environment} as your cluster account: "
                "pass -i user_id=<login> -i vault_id=<key id>, or register defaults with "
                f"`waas environments set-identity {environment} --login <login> --key <key id>`",
            )
        if login_input is not None:
            field = f"input {login_input!r}"
        elif from_home:
            field = f"the login on {workflow.environment}"
        else:
            field = "the workflow's default login" if from_topology else "registered login"
        check_login(login, field, login_input)
        check_signable(config, environment, user.user_id, login, login_input)
        key_input = "vault_id" if _given(inputs, "vault_id") is not None else None
        await check_key(conn, key_id, user.user_id, key_input)
    return login, key_id


async def registered_identities(runtime: Runtime, user_id: str) -> dict[str, ClusterIdentity]:
    """The cluster accounts the user registered, by environment."""
    async with runtime.db.read() as conn:
        return await identity_store.list_identities(conn, user_id)


async def registered_identity(
    runtime: Runtime, user_id: str, environment: str
) -> tuple[EnvironmentConfig, ClusterIdentity | None]:
    """The configured environment (else NotFound) and the user's account on it, if any."""
    config = environment_config(runtime, environment)
    async with runtime.db.read() as conn:
        identity = await identity_store.get_identity(conn, user_id, environment)
    return config, identity


async def register_identity(
    runtime: Runtime,
    audit: AuditRecorder,
    user_id: str,
    environment: str,
    login: str,
    key_id: str,
) -> tuple[SlurmEnvironment, ClusterIdentity]:
    """Register the login and SSH key the user's steps run with on a cluster environment.

    Refusals after the environment is found are audited: among them is someone else's key.
    """
    config = cluster_environment(runtime, environment)
    details = {"login": login, "key_id": key_id}
    try:
        check_login(login, "login")
        check_signable(config, environment, user_id, login)
        async with runtime.db.write() as conn:
            await check_key(conn, key_id, user_id)
            await user_store.ensure_user(conn, user_id)
            await identity_store.set_identity(conn, user_id, environment, login, key_id)
            await audit.record(
                user_id, AuditAction.IDENTITY_SET, environment, details=details, conn=conn
            )
    except ServiceError as exc:
        # Recorded after the transaction, which is over.
        await audit.record(
            user_id,
            AuditAction.IDENTITY_SET,
            environment,
            outcome=Outcome.FAILURE,
            details={**details, "reason": str(exc)},
        )
        raise
    return config, ClusterIdentity(environment, login, key_id)


async def forget_identity(
    runtime: Runtime, audit: AuditRecorder, user_id: str, environment: str
) -> None:
    """Forget the user's account on the environment; NotFound if none is registered."""
    environment_config(runtime, environment)
    async with runtime.db.write() as conn:
        deleted = await identity_store.delete_identity(conn, user_id, environment)
        if deleted:
            await audit.record(user_id, AuditAction.IDENTITY_UNSET, environment, conn=conn)
    if not deleted:
        raise NotFound(f"no cluster account registered on environment {environment!r}")
