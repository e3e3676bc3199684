"""A real `hpcwaas-api` with `vault_config` on a real OpenBao: SSH keys in KV v2, outages as 503.

The OpenBao server is persistent (raft storage, tests/openbao_support.py), so that it can be
stopped and started again with its keys and the server's token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from tests.conftest import LiveServer, free_port
from tests.openbao_support import OpenBao

TOKEN = re.compile(r"\bs\.[A-Za-z0-9]{24}\b")  # an OpenBao service token


@pytest.fixture
def bao(make_openbao: Callable[..., OpenBao]) -> OpenBao:
    return make_openbao(persistent=True)


@pytest.fixture
def vault_backed(bao: OpenBao, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose key store is the OpenBao server, reached with a wrapped secret ID."""
    path = tmp_path / "hpcwaas.yml"
    path.write_text(yaml.safe_dump({"vault_config": bao.hpcwaas_config(wrapped=True)}))
    server = LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(path)])
    server.start()
    yield server
    server.stop()


def test_key_gen_stores_the_pair_in_vault_as_the_original_and_delete_removes_it(
    vault_backed: LiveServer, bao: OpenBao
) -> None:
    with vault_backed.client(vault_backed.token("vera")) as api:
        created = api.post("/ssh_keys", json={"metadata": {"cluster": "mn5"}})
        assert created.status_code == 201, created.text
        key = created.json()
        stored = bao.kv_read(f"ssh-credentials/{key['id']}")["data"]
        assert set(stored) == {"privateKey", "publicKey", "cluster"}
        assert stored["publicKey"] == key["public_key"] and stored["cluster"] == "mn5"
        assert stored["privateKey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
        private = load_pem_private_key(stored["privateKey"].encode(), password=None)
        public = private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        assert key["public_key"] == public.decode() + "\n"  # the two halves belong together
        assert api.delete(f"/ssh_keys/{key['id']}").status_code == 204
        assert bao.kv_versions(f"ssh-credentials/{key['id']}") == 0
    assert len(bao.requests("sys/wrapping/unwrap")) == 1


def test_a_vault_outage_is_a_503_with_retry_after_then_recovers(
    vault_backed: LiveServer, bao: OpenBao
) -> None:
    with vault_backed.client(vault_backed.token("otto")) as api:
        assert api.post("/ssh_keys").status_code == 201
        bao.stop()
        failed = api.post("/ssh_keys")
        assert failed.status_code == 503
        assert failed.headers["Retry-After"]
        error = failed.json()["errors"][0]
        assert error["id"] == "service_unavailable"
        assert error["detail"] == "the key store is unavailable; try again shortly"
        assert api.get("/ssh_keys").status_code == 200  # listing needs no key store
        bao.start()
        assert api.post("/ssh_keys", json={"type": "ed25519"}).status_code == 201
        bao.seal()
        sealed = api.post("/ssh_keys")
        assert sealed.status_code == 503 and sealed.headers["Retry-After"]
        bao.unseal()
        assert api.post("/ssh_keys").status_code == 201
    log = vault_backed.log_path.read_text()
    assert f"Vault at {bao.address} cannot be reached" in log
    assert f"Vault at {bao.address} is sealed or unavailable (HTTP 503)" in log
    assert not TOKEN.search(log)


def test_a_policy_without_the_key_paths_is_a_503_and_the_log_names_what_is_missing(
    bao: OpenBao, tmp_path: Path
) -> None:
    bao.approle("bare", ["default"])
    path = tmp_path / "hpcwaas.yml"
    path.write_text(yaml.safe_dump({"vault_config": bao.hpcwaas_config("bare")}))
    server = LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(path)])
    server.start()
    try:
        with server.client(server.token("pia")) as api:
            failed = api.post("/ssh_keys")
            assert failed.status_code == 503, failed.text
            assert "secret/data" not in failed.text  # the operator's business, not the user's
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert (
        f"Vault at {bao.address} shows the AppRole no secrets engine at secret/: either its "
        "policy grants nothing under secret/ (it needs the key paths, e.g. create, update, "
        "read and delete on secret/data/ssh-credentials/*)"
    ) in log
