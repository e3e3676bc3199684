"""The ``ssh_certificates`` setting of a cluster environment: what it refuses, whom it allows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.engine.cluster_keys import ClusterKeys, execution_target
from hpcwaas.settings import ConfigError, SlurmEnvironment, SshCertificatesConfig, load_settings
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.transports.errors import AccessRefused


def _config_file(tmp_path: Path, **certificates: Any) -> Path:
    signing = {
        "vault": {"address": "https://vault.example.org", "role_id": "r", "secret_id": "s"},
        "role": "hpcwaas-users",
        **certificates,
    }
    environments = {
        "mn5": {
            "kind": "slurm",
            "host": "login.example.org",
            "host_keys": ["login.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"],
            "ssh_certificates": signing,
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"environments": environments}))
    return path


def test_a_signing_environment_loads_with_its_defaults(tmp_path: Path) -> None:
    settings = load_settings(_config_file(tmp_path, logins={"alice": ["proj042"]}))
    certificates = settings.environments["mn5"].ssh_certificates  # type: ignore[union-attr]
    assert certificates is not None
    assert (certificates.mount, certificates.ttl_seconds) == ("ssh", 600)
    assert certificates.renew_before_seconds == 60


def test_signing_without_an_approle_is_refused_naming_the_keys(tmp_path: Path) -> None:
    path = _config_file(tmp_path, vault={"address": "https://vault.example.org"})
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "environments.mn5.slurm.ssh_certificates" in str(info.value)
    assert "vault.role_id and vault.secret_id are required" in str(info.value)


def test_renewing_no_earlier_than_the_certificate_lives_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"renew_before_seconds \(600\) must be below ttl"):
        load_settings(_config_file(tmp_path, ttl_seconds=600, renew_before_seconds=600))


@pytest.mark.parametrize("role", ["", "../sys", "ssh//users", "users/"])
def test_a_role_that_is_not_a_plain_path_is_refused(tmp_path: Path, role: str) -> None:
    with pytest.raises(ConfigError, match=r"ssh_certificates\.role"):
        load_settings(_config_file(tmp_path, role=role))


def test_only_the_listed_logins_may_be_signed_and_the_own_name_when_configured() -> None:
    vault = {"address": "https://vault.example.org", "role_id": "r", "secret_id": "s"}
    listed = SshCertificatesConfig(vault=vault, role="users", logins={"alice": ["proj042"]})  # type: ignore[arg-type]
    assert listed.may_sign("alice", "proj042")
    assert not listed.may_sign("alice", "alice")
    assert not listed.may_sign("bob", "proj042")
    own = SshCertificatesConfig(vault=vault, role="users", login_is_user_id=True)  # type: ignore[arg-type]
    assert own.may_sign("alice", "alice") and not own.may_sign("alice", "bob")


def _deployment(places: dict[str, dict[str, str | None]]) -> ExecutionRecord:
    """A deployment's record: owned by the home's deployment_user, a step on ``mn5``."""
    return ExecutionRecord(
        id="e1",
        owner="svc-home",
        workflow_id="app@home@.deployment",
        application="app",
        environment="home",
        workflow=".deployment",
        inputs={},
        status=ExecutionStatus.PENDING,
        error=None,
        outputs=None,
        definition_digest="d",
        work_dir=None,
        created_at=datetime.now(UTC),
        started_at=None,
        ended_at=None,
        cancel_requested=False,
        cluster_login=None,
        key_id=None,
        places=places,
    )


async def test_a_deployment_step_elsewhere_is_signed_for_that_environments_deployment_user(
    tmp_path: Path,
) -> None:
    config = load_settings(_config_file(tmp_path, logins={"svc-mn5": ["deploy042"]}))
    mn5 = config.environments["mn5"]
    assert isinstance(mn5, SlurmEnvironment)
    keys = ClusterKeys(None, None, "mn5", mn5)  # type: ignore[arg-type]
    target = execution_target(mn5, "deploy042", "k1", "e1")
    as_mn5s = {"mn5": {"login": "deploy042", "key_id": "k1", "user_id": "svc-mn5"}}
    keys._check_principal(_deployment(as_mn5s), target)  # mn5's deployment_user may
    as_owner = {"mn5": {"login": "deploy042", "key_id": "k1"}}
    refused = "svc-home may not be signed for the cluster login deploy042"
    with pytest.raises(AccessRefused, match=refused):
        keys._check_principal(_deployment(as_owner), target)  # the home's may not
    await keys.aclose()
