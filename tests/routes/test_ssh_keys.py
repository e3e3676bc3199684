"""SSH keys: generation, ownership, metadata, and the private half never leaving the key store."""

from __future__ import annotations

import stat
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from tests.inprocess_support import InProcessServer


def test_key_gen_returns_an_rsa_2048_public_key_line_and_an_id(api: httpx.Client) -> None:
    response = api.post("/ssh_keys")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "public_key"}
    assert body["public_key"].startswith("ssh-rsa AAAA") and body["public_key"].endswith("\n")
    assert load_ssh_public_key(body["public_key"].encode()).key_size == 2048  # type: ignore[union-attr]


def test_keys_are_listed_with_metadata_and_never_the_private_half(api: httpx.Client) -> None:
    created = api.post(
        "/ssh_keys",
        json={"metadata": {"cluster": "mn5", "privateKey": "spoof", "publicKey": "spoof"}},
    ).json()
    listed = api.get("/ssh_keys")
    assert listed.status_code == 200
    [key] = [k for k in listed.json()["ssh_keys"] if k["id"] == created["id"]]
    assert key["metadata"] == {"cluster": "mn5"}
    assert key["public_key"] == created["public_key"]
    assert key["fingerprint"].startswith("SHA256:")
    assert "PRIVATE KEY" not in listed.text


def test_keys_belong_to_their_creator(server: InProcessServer, api: httpx.Client) -> None:
    created = api.post("/ssh_keys").json()
    with server.client(server.token("key-thief")) as thief:
        assert created["id"] not in [k["id"] for k in thief.get("/ssh_keys").json()["ssh_keys"]]
        assert thief.delete(f"/ssh_keys/{created['id']}").status_code == 404
    assert api.delete(f"/ssh_keys/{created['id']}").status_code == 204
    assert api.delete(f"/ssh_keys/{created['id']}").status_code == 404


def test_private_keys_are_sealed_at_rest_under_a_0600_master_key(
    fresh_server: Callable[..., InProcessServer],
) -> None:
    server = fresh_server()
    with server.client(server.token("sealer")) as client:
        for _ in range(2):
            assert client.post("/ssh_keys").status_code == 201
    server.stop()
    for path in server.data_dir.iterdir():
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    master = server.data_dir / "master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600


def test_bad_metadata_is_a_400(api: httpx.Client) -> None:
    assert api.post("/ssh_keys", json={"metadata": "nope"}).status_code == 400
    assert api.post("/ssh_keys", json={"metadata": {"x": "y" * 20000}}).status_code == 400
