"""SSH key pair generation, as the original does it: RSA 2048, PKCS#1 PEM, authorized_keys line."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_line: str  # "ssh-rsa AAAA...\n", as the original returns it
    fingerprint: str  # "SHA256:...", as ssh-keygen -l prints it
    key_type: str

    def __repr__(self) -> str:  # keep the private half out of logs and tracebacks
        return f"KeyPair(key_type={self.key_type!r}, fingerprint={self.fingerprint!r})"


def generate_rsa(bits: int = 2048) -> KeyPair:
    """A fresh RSA key pair. CPU-bound (tens of ms): call it in a worker thread."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1 "BEGIN RSA PRIVATE KEY"
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return KeyPair(private_pem, public + "\n", fingerprint(public), "ssh-rsa")


def fingerprint(public_line: str) -> str:
    """The SHA-256 fingerprint of an OpenSSH public key line."""
    blob = base64.b64decode(public_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
