"""A real `hpcwaas-api` with `vault_config`: SSH keys in the KV v2 test server, outages as 503.

Vault cannot be installed here: tests/vault_kv2.py follows its documented HTTP API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from tests.conftest import LiveServer, free_port

if TYPE_CHECKING:
    from tests.vault_kv2 import FakeVault


@pytest.fixture
def vault_backed(vault_server: FakeVault, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose key store is the test Vault, reached with a wrapped secret ID."""
    path = tmp_path / "hpcwaas.yml"
    path.write_text(yaml.safe_dump({"vault_config": vault_server.config_section(wrapped=True)}))
    server = LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(path)])
    server.start()
    yield server
    server.stop()


def test_key_gen_stores_the_pair_in_vault_as_the_original_and_delete_removes_it(
    vault_backed: LiveServer, vault_server: FakeVault
) -> None:
    with vault_backed.client(vault_backed.token("vera")) as api:
        created = api.post("/ssh_keys", json={"metadata": {"cluster": "mn5"}})
        assert created.status_code == 201, created.text
        key = created.json()
        stored = vault_server.stored(f"secret/data/ssh-credentials/{key['id']}")["data"]
        assert set(stored) == {"privateKey", "publicKey", "cluster"}
        assert stored["publicKey"] == key["public_key"] and stored["cluster"] == "mn5"
        assert stored["privateKey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
        private = load_pem_private_key(stored["privateKey"].encode(), password=None)
        public = private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        assert key["public_key"] == public.decode() + "\n"  # the two halves belong together
        assert api.delete(f"/ssh_keys/{key['id']}").status_code == 204
        assert f"ssh-credentials/{key['id']}" not in vault_server.paths()
    assert vault_server.counts["unwrap"] == 1


def test_a_vault_outage_is_a_503_with_retry_after_then_recovers(
    vault_backed: LiveServer, vault_server: FakeVault
) -> None:
    with vault_backed.client(vault_backed.token("otto")) as api:
        assert api.post("/ssh_keys").status_code == 201
        vault_server.stop()
        failed = api.post("/ssh_keys")
        assert failed.status_code == 503
        assert failed.headers["Retry-After"]
        assert failed.json()["errors"][0]["id"] == "service_unavailable"
        assert api.get("/ssh_keys").status_code == 200  # listing needs no key store
        vault_server.start()
        assert api.post("/ssh_keys", json={"type": "ed25519"}).status_code == 201
    log = vault_backed.log_path.read_text()
    assert f"Vault at {vault_server.address} cannot be reached" in log
    assert vault_server.secret_id not in log and "hvs." not in log
