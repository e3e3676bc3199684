"""The server's TLS context, built from the `tls:` settings with errors an operator can act on.

Every file is read and checked here, before the server starts, so that a missing file, a
key that needs a passphrase or a key of another certificate stops the server with one line
naming the setting and the file, instead of a traceback from deep inside the ssl module.
"""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from hpcwaas.settings import ConfigError, TlsConfig

log = logging.getLogger(__name__)

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSLContext serving ``tls.cert_file``; raise ConfigError naming the key and file."""
    certificate = _leaf_certificate(tls.cert_file)
    key = _private_key(tls)
    if _public_bytes(key) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError(
            f"tls.key_file {tls.key_file} does not match the certificate in tls.cert_file "
            f"{tls.cert_file}: give the private key of that certificate"
        )
    _warn_if_not_current(certificate, tls.cert_file)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.minimum_version]
    password = tls.key_password.get_secret_value() if tls.key_password else None
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls.cert_file {tls.cert_file} / tls.key_file {tls.key_file}: cannot be used "
            f"together ({_reason(exc)})"
        ) from None
    if tls.client_ca_file is not None:
        _read(tls.client_ca_file, "tls.client_ca_file")
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"tls.client_ca_file {tls.client_ca_file}: not PEM CA certificates ({_reason(exc)})"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{key} {path}: cannot read it ({exc.strerror or exc})") from None


def _leaf_certificate(path: Path) -> x509.Certificate:
    data = _read(path, "tls.cert_file")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(
            f"tls.cert_file {path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    return chain[0]


def _private_key(tls: TlsConfig) -> PrivateKeyTypes:
    data = _read(tls.key_file, "tls.key_file")
    password = tls.key_password.get_secret_value().encode() if tls.key_password else None
    try:
        return serialization.load_pem_private_key(data, password=password)
    except TypeError:
        # cryptography says TypeError both for "encrypted, no password" and the reverse.
        if password is None:
            raise ConfigError(
                f"tls.key_file {tls.key_file}: the key is encrypted: set tls.key_password"
            ) from None
        raise ConfigError(
            f"tls.key_file {tls.key_file}: the key is not encrypted: remove tls.key_password"
        ) from None
    except ValueError:
        if password is not None and b"ENCRYPTED" in data:
            raise ConfigError(
                f"tls.key_file {tls.key_file}: cannot decrypt the key with tls.key_password "
                "(wrong passphrase?)"
            ) from None
        raise ConfigError(
            f"tls.key_file {tls.key_file}: holds no PEM private key "
            "(give the key file that goes with tls.cert_file, in PEM: PKCS#8, PKCS#1 or SEC1)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - e.g. an unsupported key type
        raise ConfigError(f"tls.key_file {tls.key_file}: cannot load the key ({exc})") from None


def _public_bytes(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _warn_if_not_current(certificate: x509.Certificate, path: Path) -> None:
    # Refusing to start over an expired certificate would turn a late renewal into a full
    # outage, even for clients that skip verification; a loud warning is enough.
    now = datetime.now(UTC)
    if now > certificate.not_valid_after_utc:
        log.warning(
            "tls.cert_file %s expired on %s: clients will refuse it",
            path,
            certificate.not_valid_after_utc,
        )
    elif now < certificate.not_valid_before_utc:
        log.warning(
            "tls.cert_file %s is not valid before %s: clients will refuse it",
            path,
            certificate.not_valid_before_utc,
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return str(exc)
