"""Single sign-on against a real OpenID Connect provider (npm oidc-provider) and a real browser."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.conftest import BIN
from tests.integration.conftest import SsoSetup
from tests.sso_support import (
    authorize_url_for,
    complete_login,
)


def _token_of(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    match = re.search(r'id="token">\s*([^<\s]+)\s*<', page.text)
    assert match, page.text
    return match.group(1)


_SERVERS: dict[str, Any] = {}


def _serve_json(document: dict[str, Any]) -> str:
    """Serve one JSON document on a loopback port; return its URL."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps(document).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    _SERVERS[url] = httpd
    return url


def _stop_serving(url: str) -> None:
    _SERVERS.pop(url).shutdown()


def _detail(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["detail"])


def test_code_flow_shows_the_token_page_and_the_token_works_after_a_restart(
    sso: SsoSetup,
) -> None:
    server = sso.start(discovery=False)  # the original's keys only: identity from user info
    page = complete_login(sso.login_url, "alice")
    for line in (
        "Log in successful",
        "Welcome Alice Liddell",
        "User ID: ",
        "alice",
        "You can now use HPCWaaS",
        "For using the CLI, please use the following token:",
    ):
        assert line in page.text
    token = _token_of(page)
    listed = subprocess.run(
        [str(BIN / "waas"), "--api_url", server.url, f"-t={token}", "workflows", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "demo@local@hello" in listed.stdout
    server.stop()
    server.start()
    with server.client(token) as client:
        me = client.get("/users/me").json()
    assert me["user_id"] == "alice"
    assert me["display_name"] == "Alice Liddell"
    assert me["groups"] == ["climate"]


def test_login_redirect_carries_a_fresh_state_pkce_and_nonce(sso: SsoSetup) -> None:
    sso.start()
    queries = []
    for _ in range(2):
        response = httpx.get(sso.login_url)
        assert response.status_code == 303
        queries.append(parse_qs(urlsplit(response.headers["location"]).query))
    first, second = queries
    assert first["response_type"] == ["code"]
    assert first["code_challenge_method"] == ["S256"]
    assert first["redirect_uri"] == [sso.redirect_url]
    assert "openid" in first["scope"][0].split()
    for key in ("state", "nonce", "code_challenge"):
        assert first[key] != second[key], key


def test_id_token_signed_by_another_key_is_refused(sso: SsoSetup, tmp_path: Path) -> None:
    """With an issuer, the ID token is checked against the JWKS: a foreign key set fails it."""
    from joserfc.jwk import RSAKey

    foreign = {"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}
    served = _serve_json(foreign)
    try:
        sso.start(jwks_url=served)
        response = complete_login(sso.login_url, "alice")
    finally:
        _stop_serving(served)
    assert response.status_code == 400
    assert "ID token is not valid" in _detail(response)


def test_id_token_is_accepted_with_discovery(sso: SsoSetup) -> None:
    sso.start(auth_url=None, token_url=None, user_info_url=None)  # all from discovery
    assert _token_of(complete_login(sso.login_url, "alice"))


def test_a_replayed_or_forged_state_is_refused(sso: SsoSetup) -> None:
    sso.start()
    with httpx.Client(timeout=30) as browser:
        callback = authorize_url_for(sso.login_url, "alice", client=browser)
        forged = re.sub(r"state=[^&]+", "state=forged", callback)
        response = browser.get(forged)
        assert response.status_code == 400
        assert "not started in this browser" in _detail(response)
        first = browser.get(callback)
        assert first.status_code == 200
        assert _token_of(first)
    # The state is single-use even for a client that kept the browser's cookie.
    state = parse_qs(urlsplit(callback).query)["state"][0]
    replay = httpx.get(callback, cookies={"hpcwaas_sso_state": state})
    assert replay.status_code == 400
    assert "already used" in _detail(replay)


def test_a_login_link_opened_in_another_browser_logs_nobody_in(sso: SsoSetup) -> None:
    """Login CSRF: Mallory starts a login as herself and sends Alice the link back."""
    sso.start()
    with httpx.Client(timeout=30) as mallory:
        callback = authorize_url_for(sso.login_url, "mallory", client=mallory)
    with httpx.Client(timeout=30) as alice:
        response = alice.get(callback)
    assert response.status_code == 400
    assert "not started in this browser" in _detail(response)
    assert 'id="token"' not in response.text


def test_a_refused_consent_comes_back_as_a_400(sso: SsoSetup) -> None:
    sso.start()
    callback = authorize_url_for(sso.login_url, "alice", consent=False)
    response = httpx.get(callback)
    assert response.status_code == 400
    assert "access_denied" in _detail(response)


def test_client_secret_post_is_used_when_configured(sso: SsoSetup) -> None:
    sso.start(
        provider={"token_endpoint_auth_method": "client_secret_post"},
        client_auth_method="client_secret_post",
    )
    assert _token_of(complete_login(sso.login_url, "bob"))


def test_a_group_authorized_workflow_is_visible_to_members_only(sso: SsoSetup) -> None:
    server = sso.start()
    alice = _token_of(complete_login(sso.login_url, "alice"))
    bob = _token_of(complete_login(sso.login_url, "bob"))
    with server.client(alice) as client:
        ids = [w["id"] for w in client.get("/workflows").json()["workflows"]]
        assert "climate@local@model" in ids
        assert client.post("/workflows/climate@local@model").status_code == 201
    with server.client(bob) as client:
        ids = [w["id"] for w in client.get("/workflows").json()["workflows"]]
        assert "climate@local@model" not in ids
        assert client.post("/workflows/climate@local@model").status_code == 403


def test_logout_revokes_the_token(sso: SsoSetup) -> None:
    server = sso.start()
    token = _token_of(complete_login(sso.login_url, "alice"))
    with server.client(token) as client:
        assert client.delete("/auth/token").status_code == 204
        refused = client.get("/workflows")
    assert refused.status_code == 401
    assert _detail(refused) == "You are not logged in or your session has expired"


def test_the_browser_logs_in_from_auth_login_to_the_token_page(
    sso: SsoSetup, chromium: Any, request: pytest.FixtureRequest
) -> None:
    server = sso.start()
    page = chromium
    page.goto(sso.login_url)
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "any-password")
    page.click("button[type=submit]")
    page.click("button[autofocus], button[type=submit]")
    page.wait_for_selector("#token")
    artifacts = Path(__file__).parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "sso-token-page.png"), full_page=True)
    assert "Welcome Alice Liddell" in page.content()
    token = page.inner_text("#token").strip()
    with server.client(token) as client:
        assert client.get("/workflows").status_code == 200
