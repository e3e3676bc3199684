"""Keys made by key-gen work for the eFlows4HPC Data Logistics Service, for every key type.

The DLS pipelines (eflows4hpc/dls-dags) read the user's key with Airflow's Vault hook at
``/ssh-credentials/<vault_id>`` of the KV v2 mount ``secret`` (hvac ``read_secret_version``),
take the field ``privateKey``, and hand it to Airflow's SSH hook, which loads it with paramiko:
it needs a header and a footer on lines of their own, tries paramiko's RSA, ECDSA and Ed25519
key classes in turn and keeps the first that loads and signs. These tests do the same against
a real OpenBao filled by a real ``hpcwaas-api``, as a DLS with a read-only AppRole of its own,
then log in to the test cluster with the key.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import hvac
import paramiko
import pytest
import yaml
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port
from tests.openbao_support import DLS_POLICY, OpenBao

from hpcwaas.secrets.sshkeys import KEY_TYPES

PARAMIKO_CLASS = {
    "rsa": paramiko.RSAKey,
    "rsa4096": paramiko.RSAKey,
    "ed25519": paramiko.Ed25519Key,
}


@pytest.fixture
def vault_backed(openbao: OpenBao, tmp_path: Path) -> Iterator[LiveServer]:
    path = tmp_path / "hpcwaas.yml"
    path.write_text(yaml.safe_dump({"vault_config": openbao.hpcwaas_config()}))
    server = LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(path)])
    server.start()
    yield server
    server.stop()


def read_as_the_dls(bao: OpenBao, vault_id: str) -> dict[str, str]:
    """The key's fields, read as the DLS's Vault hook reads them (leading slash included)."""
    bao.policy("dls", DLS_POLICY)
    role_id, secret_id = bao.approle("dls", ["dls"])
    client = hvac.Client(url=bao.address, token="")
    try:
        client.auth.approle.login(role_id=role_id, secret_id=secret_id)
        answer = client.secrets.kv.v2.read_secret_version(
            path=f"/ssh-credentials/{vault_id}", mount_point="secret", raise_on_deleted_version=True
        )
    finally:
        client.adapter.close()
    fields: dict[str, str] = answer["data"]["data"]
    return fields


def load_as_the_dls(private_key: str) -> paramiko.PKey:
    """The first of paramiko's key classes that loads the key and signs with it."""
    assert len(private_key.splitlines()) >= 2, "no header and footer on lines of their own"
    failures = []
    for key_class in (paramiko.RSAKey, paramiko.ECDSAKey, paramiko.Ed25519Key):
        try:
            key: paramiko.PKey = key_class.from_private_key(io.StringIO(private_key))
            key.sign_ssh_data(b"")
            return key
        except (paramiko.SSHException, ValueError) as exc:
            failures.append(f"{key_class.__name__}: {exc}")
    raise AssertionError("paramiko cannot load the key: " + "; ".join(failures))


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_a_generated_key_is_read_and_loaded_as_the_dls_does_and_logs_in_to_the_cluster(
    key_type: str,
    vault_backed: LiveServer,
    openbao: OpenBao,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    with vault_backed.client(vault_backed.token("dana")) as api:
        created = api.post("/ssh_keys", json={"type": key_type})
        assert created.status_code == 201, created.text
        key = created.json()
    fields = read_as_the_dls(openbao, key["id"])
    assert fields["publicKey"] == key["public_key"]
    pkey = load_as_the_dls(fields["privateKey"])
    assert isinstance(pkey, PARAMIKO_CLASS[key_type])
    assert f"{pkey.get_name()} {pkey.get_base64()}" == " ".join(key["public_key"].split()[:2])

    cluster.clear_authorized("hpcuser1")
    cluster.authorize("hpcuser1", key["public_key"])
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(cluster.known_hosts + "\n")
    with paramiko.SSHClient() as ssh:
        ssh.load_host_keys(str(known_hosts))
        ssh.connect(
            cluster.host,
            port=cluster.port,
            username="hpcuser1",
            pkey=pkey,
            look_for_keys=False,
            allow_agent=False,
            timeout=20,
        )
        _, stdout, _ = ssh.exec_command("whoami")
        assert stdout.read().decode().strip() == "hpcuser1"
