"""HTTPS served by `hpcwaas-api` itself, and the `waas` CLI's TLS options against it.

Each test's CA is generated in the test (tests/tls_support.py); the server and the CLI are
real processes.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import BIN, LiveServer, free_port
from tests.tls_support import Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def _tls_env(pki: Pki, **extra: str) -> dict[str, str]:
    env = {
        "HPCWAAS_TLS__CERT_FILE": str(pki.server_cert),
        "HPCWAAS_TLS__KEY_FILE": str(pki.server_key),
    }
    env.update({f"HPCWAAS_TLS__{k.upper()}": v for k, v in extra.items()})
    return env


@pytest.fixture
def start_tls_server(tmp_path: Path, pki: Pki) -> Iterator[Callable[..., LiveServer]]:
    """Start an HTTPS server with the test's PKI; ``mutual=True`` requires client certificates."""
    started: list[LiveServer] = []

    def start(*, mutual: bool = False) -> LiveServer:
        extra = {"client_ca_file": str(pki.ca)} if mutual else {}
        live = LiveServer(
            tmp_path / f"data{len(started)}",
            free_port(),
            env=_tls_env(pki, **extra),
            tls=pki.client_context(client_cert=mutual),
        )
        started.append(live)
        return live.start()

    yield start
    for live in started:
        live.stop()


def waas(
    server: LiveServer, *args: str, env: dict[str, str] | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`waas workflows list` against ``server`` with ``args`` as extra global options."""
    token = server.token("tls-user")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
    return subprocess.run(
        [
            str(BIN / "waas"),
            "--api_url",
            url or server.url,
            f"-t={token}",
            *args,
            "workflows",
            "list",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**clean, "HOME": str(server.data_dir.parent), **(env or {})},
        timeout=60,
    )


def _listed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert '"demo@local@hello"' in result.stdout
    assert "Traceback" not in result.stderr


def test_server_serves_https_and_says_so_in_its_log(start_tls_server) -> None:
    server = start_tls_server()
    assert server.url.startswith("https://")
    response = httpx.get(server.url + "/healthz", verify=server.verify)
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    log = server.log_path.read_text()
    assert f"Serving on https://127.0.0.1:{server.port}" in log
    assert f"serving on https://127.0.0.1:{server.port}" in log


def test_cli_without_a_ca_refuses_the_certificate_and_suggests_ca_file(start_tls_server) -> None:
    server = start_tls_server()
    result = waas(server)
    assert result.returncode == 1
    assert "the server's TLS certificate is not trusted" in result.stderr
    assert "certificate verify failed" in result.stderr
    assert "--ca_file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_trusts_the_server_with_ca_file(start_tls_server, pki: Pki) -> None:
    _listed(waas(start_tls_server(), "--ca_file", str(pki.ca)))


def test_cli_trusts_the_server_with_hw_ca_file(start_tls_server, pki: Pki) -> None:
    _listed(waas(start_tls_server(), env={"HW_CA_FILE": str(pki.ca)}))


def test_cli_trusts_the_server_with_a_hashed_ca_path_directory(
    start_tls_server, pki: Pki, tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to name the CA file by its subject hash"
    subject_hash = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(pki.ca)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    shutil.copy(pki.ca, ca_dir / f"{subject_hash}.0")
    server = start_tls_server()
    _listed(waas(server, "--ca_path", str(ca_dir)))
    _listed(waas(server, env={"HW_CA_PATH": str(ca_dir)}))
    # The same directory without the hashed name is no help: the lookup really is by hash.
    (ca_dir / f"{subject_hash}.0").rename(ca_dir / "ca.pem")
    assert waas(server, "--ca_path", str(ca_dir)).returncode == 1


def test_cli_skips_verification_when_asked(start_tls_server) -> None:
    server = start_tls_server()
    _listed(waas(server, "--skip_tls_verify"))
    _listed(waas(server, env={"HW_SKIP_TLS_VERIFY": "true"}))


def test_mutual_tls_without_a_client_certificate_fails_with_a_clear_message(
    start_tls_server, pki: Pki
) -> None:
    server = start_tls_server(mutual=True)
    result = waas(server, "--ca_file", str(pki.ca))
    assert result.returncode == 1
    assert "probably requires a client certificate" in result.stderr
    assert "--cert_file and --key_file" in result.stderr
    assert "Traceback" not in result.stderr


def test_mutual_tls_with_the_client_certificate_works(start_tls_server, pki: Pki) -> None:
    server = start_tls_server(mutual=True)
    _listed(
        waas(
            server,
            "--ca_file",
            str(pki.ca),
            "--cert_file",
            str(pki.client_cert),
            "--key_file",
            str(pki.client_key),
        )
    )
    _listed(
        waas(
            server,
            env={
                "HW_CA_FILE": str(pki.ca),
                "HW_CERT_FILE": str(pki.client_cert),
                "HW_KEY_FILE": str(pki.client_key),
            },
        )
    )


def test_mutual_tls_refuses_a_certificate_from_another_ca(start_tls_server, pki: Pki) -> None:
    server = start_tls_server(mutual=True)
    result = waas(
        server,
        "--ca_file",
        str(pki.ca),
        "--cert_file",
        str(pki.stranger_cert),
        "--key_file",
        str(pki.stranger_key),
    )
    assert result.returncode == 1
    assert f"probably refused the client certificate {pki.stranger_cert}" in result.stderr


def test_plain_http_to_the_tls_port_says_to_use_https(start_tls_server) -> None:
    server = start_tls_server()
    plain = f"http://127.0.0.1:{server.port}"
    result = waas(server, url=plain)
    assert result.returncode == 1
    assert "closed the connection without answering (does it serve HTTPS?)" in result.stderr
    assert f"--api_url https://127.0.0.1:{server.port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" not in server.log_path.read_text()


def test_minimum_version_1_3_refuses_a_tls_1_2_client(tmp_path: Path, pki: Pki) -> None:
    live = LiveServer(
        tmp_path / "data",
        free_port(),
        env=_tls_env(pki, minimum_version="1.3"),
        tls=pki.client_context(),
    ).start()
    try:
        old = pki.client_context()
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.ConnectError):
            httpx.get(live.url + "/healthz", verify=old)
        assert httpx.get(live.url + "/healthz", verify=live.verify).status_code == 200
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("missing_cert", "tls.cert_file {missing}: cannot read it (No such file or directory)"),
        ("wrong_key", "tls.key_file {client_key} does not match the certificate in tls.cert_file"),
    ],
)
def test_server_with_bad_tls_files_refuses_to_start_in_one_line(
    tmp_path: Path, pki: Pki, setting: str, message: str
) -> None:
    missing = tmp_path / "missing.pem"
    env = _tls_env(pki)
    if setting == "missing_cert":
        env["HPCWAAS_TLS__CERT_FILE"] = str(missing)
    else:
        env["HPCWAAS_TLS__KEY_FILE"] = str(pki.client_key)
    result = subprocess.run(
        [
            str(BIN / "hpcwaas-api"),
            "--data_dir",
            str(tmp_path / "data"),
            "-l",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert result.returncode == 1
    expected = message.format(missing=missing, client_key=pki.client_key)
    assert result.stderr.startswith(f"hpcwaas-api: {expected}"), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # Refused before anything started: no database was created.
    assert not (tmp_path / "data" / "hpcwaas.sqlite3").exists()
