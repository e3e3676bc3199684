"""SSH certificates signed by the site's CA: a real OpenBao signs, the loopback sshd trusts it.

The CA is OpenBao's SSH secrets engine (tests/openbao_support.py), with a signing role as
docs/operator-guide.md describes it; the signer's own tests need only OpenBao. The cluster's
sshd (tests/cluster_support.py) trusts the CA's key through its TrustedUserCAKeys file for
the length of each test, and the account ``hpccert`` has no authorized_keys: only a
certificate logs in there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest
from tests.cluster_support import CERT_USER, Cluster
from tests.conftest import LiveServer, free_port, wait_for_status
from tests.openbao_support import OpenBao

from hpcwaas.secrets.ssh_ca import SigningRefused, SigningUnavailable, SshSigner
from hpcwaas.secrets.sshkeys import generate_ed25519
from hpcwaas.settings import SshCertificatesConfig

pytestmark = pytest.mark.certs

ROLE = "hpcwaas-users"
# What hpcwaas's AppRole may do on the signing OpenBao: sign with its role, nothing else.
SIGN_POLICY = f'path "ssh/sign/{ROLE}" {{\n  capabilities = ["update"]\n}}\n'

CATALOG = """
application: certs
environments: [cluster]
expose: [hello, waits]
workflows:
  hello:
    steps:
      greet:
        kind: shell
        run: echo "hello from $(whoami)"
      compute:
        kind: slurm
        needs: [greet]
        script: echo "job of $(whoami)"
        options: {ntasks: 1, time: "00:05:00"}
  waits:
    inputs:
      seconds: {type: integer, default: 15}
    steps:
      job:
        kind: slurm
        script: sleep {{ inputs.seconds }}
        options: {ntasks: 1, time: "00:05:00"}
      after:
        kind: shell
        needs: [job]
        run: echo done
"""


@dataclass
class SshCa:
    """The OpenBao SSH CA: its public key, and hpcwaas's AppRole on it."""

    bao: OpenBao
    public_key: str
    role_id: str
    secret_id: str

    def sign(self, public_key: str, principal: str, ttl: str = "5m") -> str:
        """A certificate signed as root (as an administrator would), for direct logins."""
        answer = self.bao.api(
            "POST",
            f"ssh/sign/{ROLE}",
            {
                "public_key": public_key,
                "valid_principals": principal,
                "ttl": ttl,
                "cert_type": "user",
                "key_id": "test",
            },
        )
        assert answer is not None
        return str(answer["data"]["signed_key"])


@pytest.fixture
def ca_engine(openbao: OpenBao) -> SshCa:
    """OpenBao's SSH engine with a CA, the role ``hpcwaas-users`` and an AppRole to sign."""
    openbao.enable_ssh()
    openbao.api("POST", "ssh/config/ca", {"generate_signing_key": True, "key_type": "ed25519"})
    openbao.api(
        "POST",
        f"ssh/roles/{ROLE}",
        {
            "key_type": "ca",
            "allow_user_certificates": True,
            "allowed_users": f"{CERT_USER},hpcuser1",
            "allow_user_key_ids": True,
            "ttl": "10m",
            "max_ttl": "30m",
        },
    )
    openbao.policy("hpcwaas-ssh", SIGN_POLICY)
    role_id, secret_id = openbao.approle("hpcwaas-ssh", ["hpcwaas-ssh"])
    public_key = httpx.get(f"{openbao.address}/v1/ssh/public_key").text.strip()
    return SshCa(openbao, public_key, role_id, secret_id)


@pytest.fixture
def ssh_ca(ca_engine: SshCa, cluster: Cluster) -> Iterator[SshCa]:
    """``ca_engine``, whose CA the cluster's sshd trusts for the length of the test."""
    cluster.trust_user_ca(ca_engine.public_key)
    try:
        yield ca_engine
    finally:
        cluster.distrust_user_cas()


def _signer(ca: SshCa, role_id: str, secret_id: str, **more: Any) -> SshSigner:
    config = SshCertificatesConfig.model_validate(
        {
            "vault": {"address": ca.bao.address, "role_id": role_id, "secret_id": secret_id},
            "role": ROLE,
            **more,
        }
    )
    return SshSigner(config, "environments.cluster.ssh_certificates")


async def test_the_signer_gets_a_certificate_for_the_one_login_with_the_key_id_asked(
    ca_engine: SshCa,
) -> None:
    signer = _signer(ca_engine, ca_engine.role_id, ca_engine.secret_id, ttl_seconds=120)
    try:
        signed = await signer.sign(
            generate_ed25519().public_line, principal=CERT_USER, key_id="hpcwaas-execution-1"
        )
    finally:
        await signer.aclose()
    assert (signed.principal, signed.key_id) == (CERT_USER, "hpcwaas-execution-1")
    assert 100 < signed.seconds_left() <= 120
    certificate = asyncssh.import_certificate(signed.line)
    assert certificate.principals == [CERT_USER]


async def test_an_approle_whose_policy_cannot_sign_is_refused_saying_what_to_allow(
    ca_engine: SshCa,
) -> None:
    # The key store's AppRole: its policy has no ssh/ path.
    bao = ca_engine.bao
    signer = _signer(ca_engine, bao.role_id("hpcwaas"), bao.secret_id("hpcwaas"))
    try:
        with pytest.raises(SigningRefused) as refused:
            await signer.sign(generate_ed25519().public_line, principal=CERT_USER, key_id="k")
    finally:
        await signer.aclose()
    assert "environments.cluster.ssh_certificates" in str(refused.value)
    assert f"its policy must allow update on ssh/sign/{ROLE}" in str(refused.value)


async def test_a_role_without_user_key_ids_is_refused_saying_to_allow_them(
    ca_engine: SshCa,
) -> None:
    bao = ca_engine.bao
    role = bao.api("GET", f"ssh/roles/{ROLE}")
    assert role is not None
    bao.api("POST", f"ssh/roles/{ROLE}", {**role["data"], "allow_user_key_ids": False})
    signer = _signer(ca_engine, ca_engine.role_id, ca_engine.secret_id)
    try:
        with pytest.raises(SigningRefused) as refused:
            await signer.sign(generate_ed25519().public_line, principal=CERT_USER, key_id="k")
    finally:
        await signer.aclose()
    assert "set allow_user_key_ids=true on the role" in str(refused.value)


async def test_a_signing_vault_that_is_down_is_unavailable_not_a_refusal(
    ca_engine: SshCa,
) -> None:
    ca_engine.bao.stop()
    signer = _signer(ca_engine, ca_engine.role_id, ca_engine.secret_id)
    try:
        with pytest.raises(SigningUnavailable, match="cannot be reached"):
            await signer.sign(generate_ed25519().public_line, principal=CERT_USER, key_id="k")
    finally:
        await signer.aclose()


class CertServer:
    """An hpcwaas server whose environment ``cluster`` signs certificates with ``ssh_ca``."""

    def __init__(self, tmp_path: Path, cluster: Cluster, ca: SshCa, **signing: Any) -> None:
        catalog = tmp_path / "catalog"
        catalog.mkdir()
        (catalog / "certs.yaml").write_text(CATALOG)
        certificates = {
            "vault": {
                "address": ca.bao.address,
                "role_id": ca.role_id,
                "secret_id": ca.secret_id,
            },
            "mount": "ssh",
            "role": ROLE,
            "logins": {"alice": [cluster.cert_user]},
            **signing,
        }
        environments = {
            "cluster": {
                "kind": "slurm",
                "host": cluster.host,
                "port": cluster.port,
                "host_keys": [cluster.known_hosts],
                "poll_interval": 1,
                "unreachable_deadline": 120,
                "ssh_certificates": certificates,
            },
        }
        self.server = LiveServer(tmp_path / "data", free_port())
        self.server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
        self.server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])

    def __enter__(self) -> CertServer:
        self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop()

    def trigger(
        self, token: str, workflow: str, login: str, *, dry_run: bool = False, **inputs: Any
    ) -> tuple[httpx.Response, str | None]:
        """A new key (never put in any authorized_keys), then a trigger as ``login``."""
        with self.server.client(token) as client:
            key = client.post("/ssh_keys", json={"type": "ed25519"})
            assert key.status_code == 201, key.text
            response = client.post(
                f"/workflows/certs@cluster@{workflow}",
                params={"dry_run": "true"} if dry_run else None,
                json={"inputs": {"user_id": login, "vault_id": key.json()["id"], **inputs}},
            )
        location = response.headers.get("location")
        return response, location.rsplit("/", 1)[1] if location else None

    def signings(self) -> list[dict[str, Any]]:
        listed = self.server.admin(
            "audit", "list", "-o", "json", "--action", "ssh_certificate.sign"
        )
        assert listed.returncode == 0, listed.stderr
        return [json.loads(line) for line in listed.stdout.splitlines()]


async def _login(cluster: Cluster, user: str, private_pem: str, certificate: str) -> str:
    """Log in to the cluster as ``user`` with a key and its certificate; ``whoami``."""
    key = asyncssh.import_private_key(private_pem)
    async with asyncssh.connect(
        cluster.host,
        cluster.port,
        username=user,
        client_keys=[(key, asyncssh.import_certificate(certificate))],
        known_hosts=asyncssh.import_known_hosts(cluster.known_hosts),
        config=None,
        agent_path=None,
        preferred_auth="publickey",
    ) as conn:
        result = await conn.run("whoami", check=True)
        return str(result.stdout).strip()


def _accepted_certificates(cluster: Cluster, key_id: str) -> list[str]:
    """sshd's log lines of logins with a certificate of this key ID."""
    return [
        line
        for line in cluster.sshd_log.read_text(errors="replace").splitlines()
        if "Accepted publickey" in line and f"ID {key_id} " in line
    ]


def test_a_workflow_runs_as_an_account_without_authorized_keys_with_a_signed_certificate(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster, ssh_ca: SshCa
) -> None:
    with CertServer(tmp_path, cluster, ssh_ca) as setup:
        token = setup.server.token("alice")
        response, execution_id = setup.trigger(token, "hello", cluster.cert_user)
        assert response.status_code == 201, response.text
        with setup.server.client(token) as client:
            body = wait_for_status(client, str(execution_id), {"SUCCEEDED", "FAILED"}, 120)
            logs = client.get(f"/executions/{execution_id}/logs").text
        assert body["status"] == "SUCCEEDED", body
        assert f"hello from {cluster.cert_user}" in logs and f"job of {cluster.cert_user}" in logs
        (signing,) = setup.signings()  # one connection, one certificate, many commands

    key_id = f"hpcwaas-execution-{execution_id}"
    assert (signing["actor"], signing["outcome"], signing["source"]) == (
        "alice",
        "success",
        "engine",
    )
    details = signing["details"]
    assert details["execution_id"] == execution_id
    assert details["login"] == cluster.cert_user
    assert details["certificate_key_id"] == key_id
    assert "PRIVATE KEY" not in json.dumps(signing) and "cert-v01" not in json.dumps(signing)
    valid_until = datetime.fromisoformat(details["valid_until"]).timestamp()
    assert 0 < valid_until - time.time() <= 600  # ttl_seconds' default: 10 minutes
    # The cluster's auth log names the execution.
    assert _accepted_certificates(cluster, key_id)
    assert ssh_ca.bao.requests(f"ssh/sign/{ROLE}") == ["update"]  # one signing reached it


def test_sshd_refuses_a_certificate_for_another_principal(cluster: Cluster, ssh_ca: SshCa) -> None:
    pair = generate_ed25519()
    own = ssh_ca.sign(pair.public_line, cluster.cert_user)
    assert asyncio.run(_login(cluster, cluster.cert_user, pair.private_pem, own)) == "hpccert"

    someone_elses = ssh_ca.sign(pair.public_line, "hpcuser1")
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(_login(cluster, cluster.cert_user, pair.private_pem, someone_elses))


def test_sshd_refuses_an_expired_certificate(cluster: Cluster, ssh_ca: SshCa) -> None:
    pair = generate_ed25519()
    certificate = ssh_ca.sign(pair.public_line, cluster.cert_user, ttl="2s")
    time.sleep(3)
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(_login(cluster, cluster.cert_user, pair.private_pem, certificate))


def test_a_new_connection_after_the_certificate_expired_logs_in_with_a_new_one(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster, ssh_ca: SshCa
) -> None:
    with CertServer(tmp_path, cluster, ssh_ca, ttl_seconds=10, renew_before_seconds=2) as setup:
        token = setup.server.token("alice")
        response, execution_id = setup.trigger(token, "waits", cluster.cert_user, seconds=18)
        assert response.status_code == 201, response.text
        deadline = time.monotonic() + 30
        while not setup.signings() and time.monotonic() < deadline:
            time.sleep(0.2)
        (first,) = setup.signings()
        expires = datetime.fromisoformat(first["details"]["valid_until"]).timestamp()
        # The job runs with no SSH; the engine's squeue polls go on over the connection it
        # opened, past the certificate's end. Then the connection drops.
        time.sleep(max(expires - time.time(), 0) + 1)
        cluster.stop_sshd()
        cluster.start_sshd()
        with setup.server.client(token) as client:
            body = wait_for_status(client, str(execution_id), {"SUCCEEDED", "FAILED"}, 120)
        assert body["status"] == "SUCCEEDED", body
        signings = setup.signings()

    # One certificate per connection (not per command), the second signed after the first
    # had expired: the expired one was not used for the new connection.
    assert len(signings) == 2, signings
    second = next(s for s in signings if s["id"] != first["id"])
    signed_at = datetime.fromisoformat(second["at"]).timestamp()
    assert signed_at >= expires
    assert second["details"]["serial"] != first["details"]["serial"]
    # Signed for the new connection: valid for the whole TTL from then on.
    valid_until = datetime.fromisoformat(second["details"]["valid_until"]).timestamp()
    assert signed_at + 8 <= valid_until <= signed_at + 10
    assert len(_accepted_certificates(cluster, f"hpcwaas-execution-{execution_id}")) == 2


def test_a_login_the_user_was_not_allowed_is_refused_before_anything_is_signed(
    tmp_path: Path, cluster: Cluster, ssh_ca: SshCa
) -> None:
    with CertServer(tmp_path, cluster, ssh_ca) as setup:
        token = setup.server.token("mallory")  # allowed no login at all
        response, execution_id = setup.trigger(token, "hello", cluster.cert_user)
        dry_run, _ = setup.trigger(token, "hello", cluster.cert_user, dry_run=True)
        assert setup.signings() == []
    assert (response.status_code, execution_id) == (403, None)
    assert "you may not run as the cluster login 'hpccert' on environment cluster" in (
        response.text
    )
    assert "ssh_certificates.logins" in response.text
    assert dry_run.status_code == 403 and "ssh_certificates.logins" in dry_run.text
    assert ssh_ca.bao.requests(f"ssh/sign/{ROLE}") == []


def test_a_signing_the_role_refuses_fails_the_execution_with_the_reason(
    tmp_path: Path, cluster: Cluster, ssh_ca: SshCa
) -> None:
    # hpcwaas allows alice hpcuser2, but the CA's role does not list that login.
    with CertServer(tmp_path, cluster, ssh_ca, logins={"alice": ["hpcuser2"]}) as setup:
        token = setup.server.token("alice")
        response, execution_id = setup.trigger(token, "hello", "hpcuser2")
        assert response.status_code == 201, response.text
        with setup.server.client(token) as client:
            body = wait_for_status(client, str(execution_id), {"SUCCEEDED", "FAILED"}, 60)
        (refusal,) = setup.signings()
    assert body["status"] == "FAILED"
    error = str(body["error"])
    assert "environments.cluster.ssh_certificates" in error and f"ssh/sign/{ROLE}" in error
    assert "hpcuser2 is not a valid value for valid_principals" in error
    assert "add the login to the role's allowed_users" in error
    assert refusal["outcome"] == "failure" and refusal["details"]["login"] == "hpcuser2"
    assert "valid_principals" in refusal["details"]["reason"]


def test_a_ttl_over_the_roles_maximum_fails_the_execution_saying_which_to_change(
    tmp_path: Path, cluster: Cluster, ssh_ca: SshCa
) -> None:
    with CertServer(tmp_path, cluster, ssh_ca, ttl_seconds=3600) as setup:  # max_ttl: 30m
        token = setup.server.token("alice")
        response, execution_id = setup.trigger(token, "hello", cluster.cert_user)
        assert response.status_code == 201, response.text
        with setup.server.client(token) as client:
            body = wait_for_status(client, str(execution_id), {"SUCCEEDED", "FAILED"}, 60)
    assert body["status"] == "FAILED"
    assert "ttl is larger than maximum allowed 1800" in str(body["error"])
    assert "lower ttl_seconds or raise the role's max_ttl" in str(body["error"])
