"""`waas login` by device code, and the provider's own access tokens as bearer tokens."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import httpx
import yaml
from tests.conftest import BIN
from tests.integration.conftest import SsoSetup
from tests.sso_support import approve_device_code, provider_access_token


def test_waas_login_by_device_code_saves_a_working_token(sso: SsoSetup, tmp_path: Path) -> None:
    server = sso.start()
    assert sso.provider is not None
    config = tmp_path / "waas.yml"
    config.write_text("# my settings\noutput_note: kept\n")
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("HW_ACCESS_TOKEN", None)
    login = subprocess.Popen(
        [
            str(BIN / "waas"),
            "--config",
            str(config),
            "--api_url",
            server.url,
            "login",
            "--no-browser",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert login.stdout is not None
    line = login.stdout.readline()
    match = re.search(r"Open (\S+) and confirm the code (\S+)", line)
    assert match, line + (login.stderr.read() if login.stderr else "")
    approve_device_code(sso.provider, match.group(1), "alice")
    out, err = login.communicate(timeout=60)
    assert login.returncode == 0, err
    assert "Logged in as Alice Liddell (alice)" in out
    saved = yaml.safe_load(config.read_text())
    assert saved["output_note"] == "kept"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    token = saved["access_token"]
    assert token not in out + err
    whoami = subprocess.run(
        [str(BIN / "waas"), "--config", str(config), "--api_url", server.url, "whoami"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "User ID: alice" in whoami.stdout, whoami.stderr
    assert "climate" in whoami.stdout


def _get(server_url: str, token: str) -> httpx.Response:
    return httpx.get(server_url + "/users/me", headers={"Authorization": f"Bearer {token}"})


def test_provider_tokens_are_refused_unless_enabled(sso: SsoSetup) -> None:
    server = sso.start()
    assert sso.provider is not None
    token = provider_access_token(sso.provider, "alice")
    response = _get(server.url, token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["detail"] == "Invalid authorization token"


def test_provider_opaque_and_jwt_tokens_are_accepted_when_enabled(sso: SsoSetup) -> None:
    server = sso.start(accept_provider_tokens=True, provider_token_audience="urn:hpcwaas:api")
    assert sso.provider is not None
    opaque = provider_access_token(sso.provider, "alice")
    me = _get(server.url, opaque)
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == "alice"
    assert me.json()["groups"] == ["climate"]
    jwt = provider_access_token(sso.provider, "bob", jwt=True)
    assert jwt.count(".") == 2
    me = _get(server.url, jwt)
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == "bob"


def test_revoked_tampered_and_expired_provider_tokens_are_refused(sso: SsoSetup) -> None:
    server = sso.start(
        provider={"access_token_ttl": 5},  # a token is still valid for its first uses
        accept_provider_tokens=True,
        provider_token_audience="urn:hpcwaas:api",
        provider_token_cache_seconds=0,
    )
    provider = sso.provider
    assert provider is not None
    revoked = provider_access_token(provider, "alice")
    assert _get(server.url, revoked).status_code == 200
    provider.revoke(revoked)
    assert _get(server.url, revoked).status_code == 401

    jwt = provider_access_token(provider, "alice", jwt=True)
    header, payload, signature = jwt.split(".")
    tampered = f"{header}.{payload}.{'A' * len(signature)}"
    refused = _get(server.url, tampered)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["detail"] == "Invalid authorization token"

    # JWT expiry (with its 60 s clock-skew allowance) is covered by the unit tests; an
    # opaque token's expiry comes from introspection, at once.
    expiring = provider_access_token(provider, "alice")
    assert _get(server.url, expiring).status_code == 200
    time.sleep(6)
    expired = _get(server.url, expiring)
    assert expired.status_code == 401
    assert expired.json()["errors"][0]["detail"] == (
        "You are not logged in or your session has expired"
    )


def test_provider_jwts_for_another_audience_or_issuer_are_refused(
    sso: SsoSetup, oidc_provider: object
) -> None:
    server = sso.start(accept_provider_tokens=True, provider_token_audience="urn:other:api")
    assert sso.provider is not None
    wrong_audience = provider_access_token(sso.provider, "alice", jwt=True)
    response = _get(server.url, wrong_audience)
    assert response.status_code == 401
    assert response.json()["errors"][0]["detail"] == "Invalid authorization token"
    other = oidc_provider(sso.redirect_url)  # type: ignore[operator]
    foreign = provider_access_token(other, "alice", jwt=True)
    assert _get(server.url, foreign).status_code == 401
