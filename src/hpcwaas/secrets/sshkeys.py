"""SSH key pair generation: RSA as the original does it (PKCS#1 PEM), and Ed25519 (OpenSSH)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from hpcwaas.api.models import SSHKeyType

KEY_TYPES: tuple[str, ...] = get_args(SSHKeyType)
DEFAULT_KEY_TYPE: SSHKeyType = "rsa"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_line: str  # "ssh-rsa AAAA...\n", as the original returns it
    fingerprint: str  # "SHA256:...", as ssh-keygen -l prints it
    key_type: str  # the public key's algorithm name: "ssh-rsa" or "ssh-ed25519"

    def __repr__(self) -> str:  # keep the private half out of logs and tracebacks
        return f"KeyPair(key_type={self.key_type!r}, fingerprint={self.fingerprint!r})"


def generate_keypair(key_type: str = DEFAULT_KEY_TYPE) -> KeyPair:
    """A fresh key pair of a type named in KEY_TYPES; ValueError names the allowed ones.

    RSA generation is CPU-bound (tens of ms, more for 4096 bits): call it in a worker thread.
    """
    if key_type == "rsa":
        return generate_rsa(2048)
    if key_type == "rsa4096":
        return generate_rsa(4096)
    if key_type == "ed25519":
        return generate_ed25519()
    raise ValueError(f"unknown SSH key type {key_type!r}: use one of {', '.join(KEY_TYPES)}")


def generate_rsa(bits: int = 2048) -> KeyPair:
    """A fresh RSA key pair, private half in PKCS#1 PEM, as the original."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, the "RSA PRIVATE KEY" PEM
        serialization.NoEncryption(),
    ).decode()
    return _pair(private_pem, key.public_key(), "ssh-rsa")


def generate_ed25519() -> KeyPair:
    """A fresh Ed25519 key pair, private half in the OpenSSH format (PKCS#1 is RSA only)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,  # the OpenSSH format, as ssh-keygen writes it
        serialization.NoEncryption(),
    ).decode()
    return _pair(private_pem, key.public_key(), "ssh-ed25519")


def _pair(
    private_pem: str, public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey, key_type: str
) -> KeyPair:
    public = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return KeyPair(private_pem, public + "\n", fingerprint(public), key_type)


def fingerprint(public_line: str) -> str:
    """The SHA-256 fingerprint of an OpenSSH public key line."""
    blob = base64.b64decode(public_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
