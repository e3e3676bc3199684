"""SSH user certificates signed by the site's CA: the SSH secrets engine of Vault or OpenBao.

``SshSigner`` logs in to the signing Vault with its own AppRole (a ``VaultSession``; it may be
another Vault than the key store's) and signs a public key with
``POST /v1/<mount>/sign/<role>`` for one principal, a key ID of our choosing and the
configured TTL. The certificate Vault returns is checked before use: it must name exactly
that principal and that key ID (a role without ``allow_user_key_ids`` would put its own).

Vault's refusals (a principal the role does not allow, a TTL over its ``max_ttl``, key IDs
not allowed, an unknown role or mount, a policy without the sign path) are ``SigningRefused``
with a message that says what to change; an unreachable Vault is ``SigningUnavailable``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import hvac.exceptions  # type: ignore[import-untyped]
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    SSHCertificate,
    SSHCertificateType,
    load_ssh_public_identity,
)

from hpcwaas.secrets.vault import VaultSession
from hpcwaas.settings import SshCertificatesConfig


class SigningUnavailable(Exception):
    """The signing Vault cannot be reached or used now; retrying later may help."""


class SigningRefused(Exception):
    """The signing Vault refused this certificate; the message says what to change."""


# Vault's refusal (its error text, lower case) -> what the operator should change.
_HINTS = (
    ("is not a valid value for valid_principals", "add the login to the role's allowed_users"),
    ("ttl is larger than maximum allowed", "lower ttl_seconds or raise the role's max_ttl"),
    ("setting key_id is not allowed", "set allow_user_key_ids=true on the role"),
    ("unknown role", "check the role's name (role)"),
    ("no handler for route", "check where the SSH secrets engine is mounted (mount)"),
)


@dataclass(frozen=True)
class SignedCertificate:
    """A certificate Vault signed: the OpenSSH line, and what sshd will check of it."""

    line: str
    serial: int
    key_id: str
    principal: str
    valid_before: float  # seconds since the epoch

    def seconds_left(self) -> float:
        """Seconds until the certificate expires (negative once it has)."""
        return self.valid_before - time.time()


class SshSigner(VaultSession):
    """Signs user certificates with one environment's SSH CA role."""

    def __init__(self, config: SshCertificatesConfig, setting: str) -> None:
        self._config = config
        self._sign_path = f"{config.mount}/sign/{config.role}"
        super().__init__(
            config.vault,
            setting=f"{setting}.vault",
            unavailable=SigningUnavailable,
            denied=SigningRefused,
        )
        self._where = f"{setting} (Vault at {self.address}, {self._sign_path})"

    async def sign(self, public_key: str, *, principal: str, key_id: str) -> SignedCertificate:
        """A user certificate of ``public_key`` for ``principal`` alone, named ``key_id``."""
        request = {
            "public_key": public_key,
            "valid_principals": principal,
            "key_id": key_id,
            "cert_type": "user",
            "ttl": f"{self._config.ttl_seconds}s",
        }

        def sign() -> Any:
            try:
                return self._client.adapter.post(f"/v1/{self._sign_path}", json=request)
            except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as exc:
                raise SigningRefused(self._refusal(principal, exc)) from None

        try:
            answer = await self._call(sign, needs=f"update on {self._sign_path}")
        except SigningRefused as exc:
            if str(exc).startswith(self._where):
                raise
            raise SigningRefused(f"{self._where} refused to sign for {principal}: {exc}") from None
        line = ((answer or {}).get("data") or {}).get("signed_key")
        if not isinstance(line, str) or not line.strip():
            raise SigningRefused(f"{self._where} returned no signed key")
        return self._checked(line.strip(), principal, key_id)

    def _refusal(self, principal: str, exc: Exception) -> str:
        errors = [str(e) for e in (getattr(exc, "errors", None) or [])] or ["no reason given"]
        said = "; ".join(errors)[:300]
        hints = [hint for text, hint in _HINTS if text in said.lower()]
        message = f"{self._where} refused to sign for {principal}: {said}"
        return f"{message} ({'; '.join(hints)})" if hints else message

    def _checked(self, line: str, principal: str, key_id: str) -> SignedCertificate:
        try:
            certificate = load_ssh_public_identity(line.encode())
        except (ValueError, UnsupportedAlgorithm):
            certificate = None
        if not isinstance(certificate, SSHCertificate) or (
            certificate.type is not SSHCertificateType.USER
        ):
            raise SigningRefused(f"{self._where} returned no user certificate")
        principals = [p.decode(errors="replace") for p in certificate.valid_principals]
        if principals != [principal]:
            raise SigningRefused(
                f"{self._where} signed for {', '.join(principals) or 'any login'} instead of "
                f"{principal} alone: the role must not add default principals"
            )
        if certificate.key_id != key_id.encode():
            raise SigningRefused(
                f"{self._where} did not keep the key ID that names the execution: set "
                "allow_user_key_ids=true on the role"
            )
        return SignedCertificate(
            line=line,
            serial=certificate.serial,
            key_id=key_id,
            principal=principal,
            valid_before=float(certificate.valid_before),
        )
