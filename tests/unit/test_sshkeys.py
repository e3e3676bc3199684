"""Key pair generation: each type's public line, private format, and fingerprint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import get_args

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_ssh_private_key,
    load_ssh_public_key,
)

from hpcwaas.api.models import SSHKeyType
from hpcwaas.cli.ssh_keys import KEY_TYPES as CLI_KEY_TYPES
from hpcwaas.secrets.sshkeys import KEY_TYPES, KeyPair, generate_keypair, generate_rsa

# type, public line prefix, private PEM header, algorithm, RSA bits
EXPECTED = {
    "rsa": ("ssh-rsa AAAA", "-----BEGIN RSA PRIVATE KEY-----", "ssh-rsa", 2048),
    "rsa4096": ("ssh-rsa AAAA", "-----BEGIN RSA PRIVATE KEY-----", "ssh-rsa", 4096),
    "ed25519": ("ssh-ed25519 AAAA", "-----BEGIN OPENSSH PRIVATE KEY-----", "ssh-ed25519", None),
}
needs_ssh_keygen = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) is not installed"
)


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def generated(request: pytest.FixtureRequest) -> tuple[str, KeyPair]:
    return request.param, generate_keypair(request.param)


def test_every_type_is_known_to_the_api_the_cli_and_the_generator() -> None:
    assert set(KEY_TYPES) == set(get_args(SSHKeyType)) == set(CLI_KEY_TYPES) == set(EXPECTED)


def test_public_key_is_one_authorized_keys_line(generated: tuple[str, KeyPair]) -> None:
    key_type, pair = generated
    prefix, _, algorithm, _ = EXPECTED[key_type]
    assert pair.public_line.startswith(prefix)
    assert pair.public_line.endswith("\n") and pair.public_line.count("\n") == 1
    assert pair.key_type == algorithm


def test_private_key_has_the_expected_format_and_matches_the_public_key(
    generated: tuple[str, KeyPair],
) -> None:
    key_type, pair = generated
    _, header, _, bits = EXPECTED[key_type]
    assert pair.private_pem.startswith(header)
    private = (
        load_ssh_private_key(pair.private_pem.encode(), password=None)
        if key_type == "ed25519"
        else load_pem_private_key(pair.private_pem.encode(), password=None)
    )
    public = load_ssh_public_key(pair.public_line.encode())
    if bits is None:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
    else:
        assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == bits
    assert private.public_key() == public


def test_repr_never_shows_the_private_key(generated: tuple[str, KeyPair]) -> None:
    _, pair = generated
    assert "PRIVATE" not in repr(pair) and pair.fingerprint in repr(pair)


@needs_ssh_keygen
def test_fingerprint_is_the_one_ssh_keygen_prints(
    generated: tuple[str, KeyPair], tmp_path: Path
) -> None:
    _, pair = generated
    public = tmp_path / "id.pub"
    public.write_text(pair.public_line)
    listed = subprocess.run(
        ["ssh-keygen", "-lf", str(public)], capture_output=True, text=True, check=True
    )
    assert listed.stdout.split()[1] == pair.fingerprint


@needs_ssh_keygen
def test_openssh_reads_the_private_key(generated: tuple[str, KeyPair], tmp_path: Path) -> None:
    _, pair = generated
    private = tmp_path / "id"
    private.write_text(pair.private_pem)
    private.chmod(0o600)
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True, check=True
    )
    assert derived.stdout.split()[:2] == pair.public_line.split()[:2]


def test_an_unknown_type_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown SSH key type 'dsa': use one of rsa, rsa4096, "):
        generate_keypair("dsa")


def test_generate_rsa_keeps_working_with_its_bits_argument() -> None:
    pair = generate_rsa()
    assert load_ssh_public_key(pair.public_line.encode()).key_size == 2048  # type: ignore[union-attr]
