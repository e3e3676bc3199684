"""The server's TLS context from the `tls:` settings, or a message naming the key and file."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr
from tests.tls_support import Pki, make_pki

from hpcwaas.server.tls import server_ssl_context
from hpcwaas.settings import ConfigError, TlsConfig, load_settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _encrypted_copy(pki: Pki, directory: Path, passphrase: bytes) -> Path:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    path = directory / "encrypted.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return path


def test_certificate_and_key_give_a_server_context_of_tls_1_2_or_later(pki: Pki) -> None:
    context = server_ssl_context(TlsConfig(cert_file=pki.server_cert, key_file=pki.server_key))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE


def test_client_ca_file_makes_client_certificates_required(pki: Pki) -> None:
    context = server_ssl_context(
        TlsConfig(
            cert_file=pki.server_cert,
            key_file=pki.server_key,
            client_ca_file=pki.ca,
            minimum_version="1.3",
        )
    )
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_missing_certificate_file_is_named(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(TlsConfig(cert_file=missing, key_file=pki.server_key))
    assert (
        str(caught.value) == f"tls.cert_file {missing}: cannot read it (No such file or directory)"
    )


def test_missing_key_file_is_named(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(ConfigError, match=f"^tls.key_file {missing}: cannot read it"):
        server_ssl_context(TlsConfig(cert_file=pki.server_cert, key_file=missing))


def test_a_file_that_is_not_a_certificate_is_named(pki: Pki) -> None:
    with pytest.raises(ConfigError, match=f"^tls.cert_file {pki.server_key}: holds no PEM"):
        server_ssl_context(TlsConfig(cert_file=pki.server_key, key_file=pki.server_key))


def test_a_file_that_is_not_a_key_is_named(pki: Pki) -> None:
    with pytest.raises(ConfigError, match=f"^tls.key_file {pki.server_cert}: holds no PEM"):
        server_ssl_context(TlsConfig(cert_file=pki.server_cert, key_file=pki.server_cert))


def test_key_of_another_certificate_is_refused(pki: Pki) -> None:
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(TlsConfig(cert_file=pki.server_cert, key_file=pki.client_key))
    assert str(caught.value) == (
        f"tls.key_file {pki.client_key} does not match the certificate in tls.cert_file "
        f"{pki.server_cert}: give the private key of that certificate"
    )


def test_encrypted_key_needs_its_passphrase(pki: Pki, tmp_path: Path) -> None:
    key_file = _encrypted_copy(pki, tmp_path, b"open sesame")
    with pytest.raises(ConfigError, match=r"the key is encrypted: set tls\.key_password"):
        server_ssl_context(TlsConfig(cert_file=pki.server_cert, key_file=key_file))
    with pytest.raises(ConfigError, match=r"cannot decrypt the key with tls\.key_password"):
        server_ssl_context(
            TlsConfig(cert_file=pki.server_cert, key_file=key_file, key_password=SecretStr("wrong"))
        )
    context = server_ssl_context(
        TlsConfig(
            cert_file=pki.server_cert, key_file=key_file, key_password=SecretStr("open sesame")
        )
    )
    assert isinstance(context, ssl.SSLContext)


def test_passphrase_for_a_plain_key_is_refused(pki: Pki) -> None:
    with pytest.raises(ConfigError, match=r"the key is not encrypted: remove tls\.key_password"):
        server_ssl_context(
            TlsConfig(
                cert_file=pki.server_cert, key_file=pki.server_key, key_password=SecretStr("x")
            )
        )


def test_client_ca_file_that_holds_no_certificate_is_named(pki: Pki) -> None:
    with pytest.raises(ConfigError, match=f"^tls.client_ca_file {pki.server_key}: not PEM CA"):
        server_ssl_context(
            TlsConfig(
                cert_file=pki.server_cert, key_file=pki.server_key, client_ca_file=pki.server_key
            )
        )


def test_tls_section_is_read_from_the_config_file_and_env(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hpcwaas.yml"
    config.write_text(f"tls:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n")
    settings = load_settings(config)
    assert settings.tls is not None and settings.tls.cert_file == pki.server_cert
    assert settings.tls.minimum_version == "1.2"

    monkeypatch.setenv("HPCWAAS_TLS__MINIMUM_VERSION", "1.3")
    assert load_settings(config).tls.minimum_version == "1.3"  # type: ignore[union-attr]


def test_tls_section_without_a_key_file_is_a_config_error(pki: Pki, tmp_path: Path) -> None:
    config = tmp_path / "hpcwaas.yml"
    config.write_text(f"tls:\n  cert_file: {pki.server_cert}\n  minimum_version: '1.1'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "tls.key_file: Field required" in str(caught.value)
    assert "tls.minimum_version" in str(caught.value)
