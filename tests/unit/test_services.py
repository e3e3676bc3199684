"""The use cases of services/ called directly, without a server: refusals, audit, HTTP mapping."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hpcwaas.auth.identity import Identity
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.catalog.model import ApplicationSpec
from hpcwaas.server.problems import install_error_handlers
from hpcwaas.services import executions, identities
from hpcwaas.services.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    ServiceError,
    Unavailable,
)
from hpcwaas.services.ratelimit import TriggerRateLimiter
from hpcwaas.settings import Settings, SlurmEnvironment, SshCertificatesConfig
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction, Outcome
from hpcwaas.store.database import Database
from hpcwaas.store.keys import SSHKeyRecord, insert_key

ALICE = Identity(user_id="alice")
SLURM = SlurmEnvironment(
    kind="slurm",
    host="login.example.org",
    host_keys=["login.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"],
)
WORKFLOW_ID = "demo@hpc@wf"


def _workflow() -> DeployedWorkflow:
    app = ApplicationSpec.model_validate(
        {
            "application": "demo",
            "environments": ["hpc"],
            "expose": ["wf"],
            "workflows": {"wf": {"steps": {"s": {"kind": "slurm", "script": "hostname"}}}},
        }
    )
    return DeployedWorkflow(
        id=WORKFLOW_ID,
        application=app,
        environment="hpc",
        environment_name="HPC",
        name="wf",
        spec=app.workflows["wf"],
        digest="d" * 64,
        source=Path("demo.yaml"),
    )


class OneWorkflow:
    """A catalog holding the one workflow, visible to everybody."""

    def get(self, workflow_id: str, user_id: str, groups: frozenset[str]) -> DeployedWorkflow:
        assert workflow_id == WORKFLOW_ID
        return _workflow()


class Recorder:
    """An audit recorder keeping the events in memory."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def record(self, actor: str, action: AuditAction, target: str | None, **fields: Any):
        self.events.append({"actor": actor, "action": action, "target": target, **fields})


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Any]:
    """What the use cases reach: settings, a database holding alice and bob and a key of
    each, the catalog."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'hpcwaas.sqlite3'}")
    await db.prepare_schema()
    async with db.write() as conn:
        for user in ("alice", "bob"):
            await user_store.ensure_user(conn, user)
            await insert_key(
                conn,
                SSHKeyRecord(
                    id=f"{user}s-key",
                    owner=user,
                    public_key="ssh-ed25519 AAAA",
                    fingerprint=f"SHA256:{user}",
                    key_type="ed25519",
                    metadata={},
                    created_at=datetime.now(UTC),
                ),
            )
    settings = Settings(data_dir=tmp_path, environments={"hpc": SLURM})
    yield SimpleNamespace(settings=settings, db=db, catalog=OneWorkflow())
    await db.dispose()


async def test_a_trigger_over_the_rate_is_refused_before_the_workflow_is_looked_up() -> None:
    limiter = TriggerRateLimiter(1)
    limiter.acquire("alice")
    audit = Recorder()
    with pytest.raises(LimitExceeded) as info:
        await executions.trigger(SimpleNamespace(), limiter, audit, ALICE, WORKFLOW_ID, {})  # type: ignore[arg-type]
    assert info.value.retry_after == 60
    assert "limits.max_triggers_per_minute" in str(info.value)
    assert audit.events == []


async def test_a_trigger_without_a_cluster_account_is_refused_and_audited(runtime: Any) -> None:
    audit = Recorder()
    with pytest.raises(InvalidRequest) as info:
        await executions.trigger(runtime, TriggerRateLimiter(10), audit, ALICE, WORKFLOW_ID, {})
    assert "runs on hpc as your cluster account" in str(info.value)
    [event] = audit.events
    assert (event["action"], event["target"], event["outcome"]) == (
        AuditAction.EXECUTION_TRIGGER,
        None,
        Outcome.FAILURE,
    )
    assert event["details"] == {"workflow_id": WORKFLOW_ID, "reason": str(info.value)}


async def test_a_trigger_with_someone_elses_key_is_refused_as_an_unknown_key_naming_the_input(
    runtime: Any,
) -> None:
    audit = Recorder()
    inputs = {"user_id": "alice", "vault_id": "bobs-key"}
    with pytest.raises(InvalidRequest) as info:
        await executions.trigger(runtime, TriggerRateLimiter(10), audit, ALICE, WORKFLOW_ID, inputs)
    assert info.value.input_name == "vault_id"
    assert str(info.value).startswith("no SSH key bobs-key:")
    assert [e["outcome"] for e in audit.events] == [Outcome.FAILURE]


async def test_a_bad_login_input_is_refused_naming_the_input_and_the_rule(runtime: Any) -> None:
    inputs = {"user_id": "Alice Smith", "vault_id": "bobs-key"}
    with pytest.raises(InvalidRequest) as info:
        await executions.trigger(
            runtime, TriggerRateLimiter(10), Recorder(), ALICE, WORKFLOW_ID, inputs
        )
    assert info.value.input_name == "user_id"
    assert identities.LOGIN_RULE in str(info.value)


async def test_a_dry_run_is_refused_as_the_trigger_would_be(runtime: Any) -> None:
    with pytest.raises(InvalidRequest) as planned:
        await executions.plan_trigger(runtime, ALICE, WORKFLOW_ID, {})
    with pytest.raises(InvalidRequest) as triggered:
        await executions.trigger(
            runtime, TriggerRateLimiter(10), Recorder(), ALICE, WORKFLOW_ID, {}
        )
    assert str(planned.value) == str(triggered.value)


async def test_a_dry_run_plans_with_the_registered_cluster_account(runtime: Any) -> None:
    audit = Recorder()
    await identities.register_identity(runtime, audit, "alice", "hpc", "alice", "alices-key")
    assert [(e["action"], "outcome" in e) for e in audit.events] == [
        (AuditAction.IDENTITY_SET, False)
    ]
    plan = await executions.plan_trigger(runtime, ALICE, WORKFLOW_ID, {})
    assert (plan.workflow_id, plan.cluster_login) == (WORKFLOW_ID, "alice")
    assert [step.name for step in plan.steps] == ["s"]


async def test_registering_someone_elses_key_is_refused_as_unknown_and_audited(
    runtime: Any,
) -> None:
    audit = Recorder()
    with pytest.raises(InvalidRequest, match="no SSH key bobs-key"):
        await identities.register_identity(runtime, audit, "alice", "hpc", "alice", "bobs-key")
    [event] = audit.events
    assert (event["action"], event["outcome"]) == (AuditAction.IDENTITY_SET, Outcome.FAILURE)
    assert event["details"]["key_id"] == "bobs-key"
    assert await identities.registered_identities(runtime, "alice") == {}


async def test_identities_on_unknown_environments_are_not_found(runtime: Any) -> None:
    with pytest.raises(NotFound, match="environment 'nowhere' not found"):
        await identities.registered_identity(runtime, "alice", "nowhere")
    with pytest.raises(NotFound, match="no cluster account registered on environment 'hpc'"):
        await identities.forget_identity(runtime, Recorder(), "alice", "hpc")


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (InvalidRequest, 400),
        (Forbidden, 403),
        (NotFound, 404),
        (Conflict, 409),
        (LimitExceeded, 429),
        (Unavailable, 503),
    ],
)
async def test_each_refusal_is_answered_with_its_status_in_the_envelope(
    refusal: type[ServiceError], status: int
) -> None:
    app = FastAPI()
    install_error_handlers(app, 'Bearer realm="hpcwaas"')

    @app.get("/refused")
    async def refused() -> None:
        raise refusal("why and what to do", input_name="user_id", retry_after=7)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/refused")
    assert response.status_code == status
    assert response.headers["Retry-After"] == "7"
    [item] = response.json()["errors"]
    assert item["detail"] == "why and what to do"
    assert item["source"] == {"input": "user_id"}


def test_the_services_do_not_import_the_web_framework() -> None:
    modules = ("audit", "errors", "executions", "identities", "quotas", "ssh_keys")
    code = "; ".join(f"import hpcwaas.services.{m}" for m in modules)
    code += "; import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('fastapi', 'starlette')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _signing(runtime: Any, logins: dict[str, list[str]]) -> None:
    """Make the environment ``hpc`` of ``runtime`` sign SSH certificates for ``logins``."""
    certificates = {
        "vault": {"address": "http://127.0.0.1:1", "role_id": "r", "secret_id": "s"},
        "role": "users",
        "logins": logins,
    }
    environment = SLURM.model_copy(
        update={"ssh_certificates": SshCertificatesConfig.model_validate(certificates)}
    )
    runtime.settings = Settings(
        data_dir=runtime.settings.data_dir, environments={"hpc": environment}
    )


async def test_on_a_signing_environment_a_login_not_allowed_is_refused_at_trigger_and_dry_run(
    runtime: Any,
) -> None:
    _signing(runtime, {"alice": ["proj042"]})
    inputs = {"user_id": "root", "vault_id": "alices-key"}
    audit = Recorder()
    with pytest.raises(Forbidden) as triggered:
        await executions.trigger(runtime, TriggerRateLimiter(10), audit, ALICE, WORKFLOW_ID, inputs)
    with pytest.raises(Forbidden) as planned:
        await executions.plan_trigger(runtime, ALICE, WORKFLOW_ID, inputs)
    assert str(triggered.value) == str(planned.value)
    assert "you may not run as the cluster login 'root' on environment hpc" in str(planned.value)
    assert "environments.hpc.ssh_certificates.logins" in str(planned.value)
    assert triggered.value.input_name == "user_id"
    assert [e["outcome"] for e in audit.events] == [Outcome.FAILURE]
    plan = await executions.plan_trigger(
        runtime, ALICE, WORKFLOW_ID, {"user_id": "proj042", "vault_id": "alices-key"}
    )
    assert plan.cluster_login == "proj042"


async def test_on_a_signing_environment_registering_a_login_not_allowed_is_refused_and_audited(
    runtime: Any,
) -> None:
    _signing(runtime, {"bob": ["alice"]})  # alice is allowed nothing, bob her login
    audit = Recorder()
    with pytest.raises(Forbidden, match="may not run as the cluster login 'alice'"):
        await identities.register_identity(runtime, audit, "alice", "hpc", "alice", "alices-key")
    [event] = audit.events
    assert (event["action"], event["outcome"]) == (AuditAction.IDENTITY_SET, Outcome.FAILURE)
    assert await identities.registered_identities(runtime, "alice") == {}
