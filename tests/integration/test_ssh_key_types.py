"""`POST /ssh_keys` with `type`: rsa (the original's RSA 2048), rsa4096, ed25519."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from hpcwaas.secrets.sshkeys import fingerprint


@pytest.mark.parametrize(
    ("key_type", "algorithm", "bits"),
    [("rsa", "ssh-rsa", 2048), ("rsa4096", "ssh-rsa", 4096), ("ed25519", "ssh-ed25519", None)],
)
def test_each_type_makes_its_key_and_lists_it(
    api: httpx.Client, key_type: str, algorithm: str, bits: int | None
) -> None:
    response = api.post("/ssh_keys", json={"type": key_type, "metadata": {"site": "bsc"}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "public_key"}
    assert body["public_key"].startswith(algorithm + " AAAA") and body["public_key"].endswith("\n")
    public = load_ssh_public_key(body["public_key"].encode())
    if bits is None:
        assert isinstance(public, ed25519.Ed25519PublicKey)
    else:
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == bits
    [listed] = [k for k in api.get("/ssh_keys").json()["ssh_keys"] if k["id"] == body["id"]]
    assert listed["key_type"] == algorithm
    assert listed["fingerprint"] == fingerprint(body["public_key"])
    assert listed["metadata"] == {"site": "bsc"}


def test_without_a_type_the_key_is_rsa_2048_as_the_original(api: httpx.Client) -> None:
    for request in ({}, {"metadata": {}}):
        public = api.post("/ssh_keys", json=request).json()["public_key"]
        assert public.startswith("ssh-rsa ")
        assert load_ssh_public_key(public.encode()).key_size == 2048  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["dsa", "RSA", "", 2048])
def test_an_unknown_type_is_a_400_naming_the_allowed_values(api: httpx.Client, bad: object) -> None:
    response = api.post("/ssh_keys", json={"type": bad})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["id"] == "bad_request"
    assert "type" in error["detail"]
    for allowed in ("'rsa'", "'rsa4096'", "'ed25519'"):
        assert allowed in error["detail"]
