"""Authentication: tokens, local accounts, basic auth, public routes, refusing to start."""

from __future__ import annotations

import base64
import html
import re
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import BIN, LiveServer, free_port
from tests.sso_support import parse_forms


def _detail(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["detail"])


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authorization Required"),
        ("Token abc", "Invalid authorization format"),
        ("Bearer", "Invalid authorization format"),
        ("Bearer hw_not-a-real-token", "Invalid authorization token"),
    ],
)
def test_bad_credentials_get_401_with_the_original_wording(
    server: LiveServer, header: str | None, detail: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.get(server.url + "/workflows", headers=headers)
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    assert response.json()["errors"][0]["id"] == "unauthorized"
    assert _detail(response) == detail


def test_every_api_route_needs_authentication(server: LiveServer) -> None:
    for method, path in [
        ("GET", "/workflows"),
        ("GET", "/workflows/demo@local@hello"),
        ("POST", "/workflows/demo@local@hello"),
        ("GET", "/executions"),
        ("GET", "/executions/x"),
        ("DELETE", "/executions/x"),
        ("GET", "/executions/x/logs"),
        ("GET", "/executions/x/events"),
        ("POST", "/ssh_keys"),
        ("GET", "/ssh_keys"),
        ("DELETE", "/ssh_keys/x"),
    ]:
        assert httpx.request(method, server.url + path).status_code == 401, (method, path)


def test_public_routes_answer_without_credentials(server: LiveServer) -> None:
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
    assert httpx.get(server.url + "/openapi.json").json()["info"]["title"] == "hpcwaas"
    assert "<form" in httpx.get(server.url + "/auth/login").text


def test_expired_and_revoked_tokens_are_refused_as_expired_sessions(server: LiveServer) -> None:
    short = server.token("ttl-user", ttl="1s")
    time.sleep(1.2)
    response = httpx.get(server.url + "/workflows", headers={"Authorization": f"Bearer {short}"})
    assert response.status_code == 401
    assert _detail(response) == "You are not logged in or your session has expired"

    token = server.token("revoked-user")
    listing = server.admin("tokens", "list", "--user", "revoked-user").stdout
    token_id = listing.splitlines()[1].split()[0]
    assert token not in listing  # the secret is never shown again
    assert server.admin("tokens", "revoke", token_id).returncode == 0
    response = httpx.get(server.url + "/workflows", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_tokens_are_stored_hashed_and_survive_a_restart(fresh_server: LiveServer) -> None:
    fresh_server.start()
    token = fresh_server.token("persistent")
    fresh_server.stop()
    database = (fresh_server.data_dir / "hpcwaas.sqlite3").read_bytes()
    assert token.encode() not in database
    fresh_server.start()
    with fresh_server.client(token) as client:
        assert client.get("/workflows").status_code == 200


def test_local_account_logs_in_through_the_form_and_gets_a_token(fresh_server: LiveServer) -> None:
    added = fresh_server.admin(
        "users", "add", "carol", "--password-stdin", input_text="s3cret-pass\n"
    )
    assert added.returncode == 0, added.stderr
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url) as browser:
        # The form's CSRF token travels in a cookie and a hidden field, as in a browser.
        form = parse_forms(browser.get("/auth/login").text)[0]
        wrong = browser.post(
            "/auth/login", data={**form.fields, "username": "carol", "password": "nope"}
        )
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
        form = parse_forms(wrong.text)[0]
        page = browser.post(
            "/auth/login",
            data={**form.fields, "username": "carol", "password": "s3cret-pass"},
        )
    assert page.status_code == 200
    for line in (
        "Log in successful",
        "Welcome carol",
        "User ID: ",
        "You can now use HPCWaaS",
        "For using the CLI, please use the following token:",
    ):
        assert line in page.text
    token = re.search(r'id="token">([^<]+)<', page.text).group(1).strip()  # type: ignore[union-attr]
    with fresh_server.client(token) as client:
        assert client.get("/workflows").status_code == 200
    save = re.search(r'id="save-command">([^<]+)<', page.text).group(1)  # type: ignore[union-attr]
    home = fresh_server.data_dir.parent / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin"}
    saved = subprocess.run(
        ["bash", "-c", html.unescape(save)], capture_output=True, text=True, env=env, timeout=60
    )
    assert saved.returncode == 0, saved.stderr
    assert stat.S_IMODE((home / ".waas").stat().st_mode) == 0o600
    whoami = subprocess.run(
        [str(BIN / "waas"), "whoami"], capture_output=True, text=True, env=env, timeout=60
    )
    assert "User ID: carol" in whoami.stdout, whoami.stderr
    basic = base64.b64encode(b"carol:s3cret-pass").decode()
    response = httpx.get(
        fresh_server.url + "/workflows", headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200
    database = (fresh_server.data_dir / "hpcwaas.sqlite3").read_bytes()
    assert b"s3cret-pass" not in database


def test_basic_auth_config_accepts_its_accounts_only(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "hpcwaas.yml"
    config.write_text(
        f"""
listen_address: 127.0.0.1:{port}
data_dir: {tmp_path / "data"}
auth:
  auth_type: basic
  basic_auth:
    accounts:
      - {{username: dave, password: "pw-dave-123"}}
alien_config:
  address: http://a4c.example:8088
"""
    )
    server = LiveServer(tmp_path / "data", port, extra_args=["--config", str(config)]).start()
    try:
        good = httpx.get(server.url + "/workflows", auth=("dave", "pw-dave-123"))
        assert good.status_code == 200
        bad = httpx.get(server.url + "/workflows", auth=("dave", "wrong"))
        assert bad.status_code == 401
        assert _detail(bad) == "Authorization Required"
        assert "Basic" in bad.headers["www-authenticate"]
        assert "alien_config" in server.log_path.read_text()
        assert "pw-dave-123" not in server.log_path.read_text()
    finally:
        server.stop()


def test_unknown_auth_type_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "hpcwaas.yml"
    config.write_text(f"data_dir: {tmp_path}\nauth:\n  auth_type: none\n")
    result = subprocess.run(
        [str(BIN / "hpcwaas-api"), "--config", str(config), "-l", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "unknown auth_type 'none'" in result.stderr
    assert "Traceback" not in result.stderr


def test_sso_routes_answer_a_clear_4xx_when_sso_is_off(server: LiveServer) -> None:
    config = httpx.get(server.url + "/auth/config").json()
    assert config == {"auth_type": "local", "login_url": "/auth/login", "device_flow": False}
    for method, path, body in [
        ("GET", "/auth/authorize?code=x&state=y", None),
        ("POST", "/auth/device", None),
        ("POST", "/auth/device/token", {"device_code": "x"}),
    ]:
        response = httpx.request(method, server.url + path, json=body)
        assert response.status_code == 404, (path, response.text)
        assert "single sign-on is not configured" in _detail(response)
