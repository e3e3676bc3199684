"""The ``ssh_certificates`` setting of a cluster environment: what it refuses, whom it allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hpcwaas.settings import ConfigError, SshCertificatesConfig, load_settings


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
