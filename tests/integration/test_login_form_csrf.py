"""The password login form is protected against cross-site request forgery (double-submit token)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, free_port
from tests.sso_support import parse_forms
from tests.tls_support import make_pki

PASSWORD = "s3cret-pass"
FORM_EXPIRED = "The form expired, please log in again."


@pytest.fixture
def account(server: LiveServer) -> str:
    """A local account of this test's own on the shared server."""
    name = f"form-{uuid.uuid4().hex[:8]}"
    added = server.admin("users", "add", name, "--password-stdin", input_text=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    return name


def _form_token(page: str) -> str:
    [form] = parse_forms(page)
    return form.hidden["csrf_token"]


def _tokens_of(server: LiveServer, user: str) -> list[str]:
    listing = server.admin("tokens", "list", "--user", user).stdout.splitlines()
    return listing[1:]


def _shows_a_token(page: str) -> bool:
    return 'id="token"' in page


def test_form_page_sets_the_cookie_and_the_hidden_field(server: LiveServer) -> None:
    response = httpx.get(server.url + "/auth/login")
    cookie = response.headers["set-cookie"]
    value = re.match(r"hpcwaas_login_csrf=([^;]+);", cookie)
    assert value, cookie
    assert value.group(1) == _form_token(response.text)
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/auth", "max-age=900"} <= attributes
    # Each form gets its own value.
    assert _form_token(httpx.get(server.url + "/auth/login").text) != value.group(1)


def test_cross_site_post_without_the_cookie_gets_403_and_no_token(
    server: LiveServer, account: str
) -> None:
    response = httpx.post(
        server.url + "/auth/login",
        data={"username": account, "password": PASSWORD},
        headers={"Origin": "https://attacker.example"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert FORM_EXPIRED in response.text
    assert not _shows_a_token(response.text)
    assert _tokens_of(server, account) == []
    # The 403 page is the form again, ready for a genuine retry.
    assert _form_token(response.text)


def test_post_without_the_cookie_is_refused_even_with_a_token_field(
    server: LiveServer, account: str
) -> None:
    token = _form_token(httpx.get(server.url + "/auth/login").text)
    response = httpx.post(
        server.url + "/auth/login",
        data={"username": account, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 403
    assert FORM_EXPIRED in response.text
    assert _tokens_of(server, account) == []


def test_post_whose_field_differs_from_the_cookie_is_refused(
    server: LiveServer, account: str
) -> None:
    with httpx.Client(base_url=server.url) as browser:
        browser.get("/auth/login")
        response = browser.post(
            "/auth/login",
            data={"username": account, "password": PASSWORD, "csrf_token": "guessed"},
        )
        assert response.status_code == 403
        response = browser.post("/auth/login", data={"username": account, "password": PASSWORD})
        assert response.status_code == 403
    assert _tokens_of(server, account) == []


def test_post_from_another_origin_is_refused_even_with_cookie_and_field(
    server: LiveServer, account: str
) -> None:
    with httpx.Client(base_url=server.url) as browser:
        token = _form_token(browser.get("/auth/login").text)
        response = browser.post(
            "/auth/login",
            data={"username": account, "password": PASSWORD, "csrf_token": token},
            headers={"Origin": "http://localhost:1"},
        )
    assert response.status_code == 403
    assert not _shows_a_token(response.text)
    assert _tokens_of(server, account) == []


def test_post_that_the_browser_marks_cross_site_is_refused_even_with_cookie_and_field(
    server: LiveServer, account: str
) -> None:
    with httpx.Client(base_url=server.url) as browser:
        token = _form_token(browser.get("/auth/login").text)
        response = browser.post(
            "/auth/login",
            data={"username": account, "password": PASSWORD, "csrf_token": token},
            headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        )
    assert response.status_code == 403
    assert _tokens_of(server, account) == []


def test_origin_null_of_a_no_referrer_page_does_not_block_a_genuine_post(
    server: LiveServer, account: str
) -> None:
    # The form page says Referrer-Policy: no-referrer, so browsers post it with Origin: null.
    with httpx.Client(base_url=server.url) as browser:
        token = _form_token(browser.get("/auth/login").text)
        response = browser.post(
            "/auth/login",
            data={"username": account, "password": PASSWORD, "csrf_token": token},
            headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        )
    assert response.status_code == 200
    assert _shows_a_token(response.text)


def test_genuine_form_post_logs_in_and_uses_up_the_cookie(server: LiveServer, account: str) -> None:
    with httpx.Client(base_url=server.url) as browser:
        token = _form_token(browser.get("/auth/login").text)
        wrong = browser.post(
            "/auth/login",
            data={"username": account, "password": "nope", "csrf_token": token},
            headers={"Origin": server.url},
        )
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
        retry = _form_token(wrong.text)  # the answer is a fresh form
        page = browser.post(
            "/auth/login",
            data={"username": account, "password": PASSWORD, "csrf_token": retry},
            headers={"Origin": server.url},
        )
        assert page.status_code == 200, page.text
        assert _shows_a_token(page.text)
        assert 'hpcwaas_login_csrf=""' in page.headers["set-cookie"]
        assert "hpcwaas_login_csrf" not in browser.cookies
    api_token = re.search(r'id="token">([^<]+)<', page.text).group(1).strip()  # type: ignore[union-attr]
    with server.client(api_token) as client:
        assert client.get("/workflows").status_code == 200


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[LiveServer]:
    pki = make_pki(tmp_path / "pki")
    live = LiveServer(
        tmp_path / "data",
        free_port(),
        env={
            "HPCWAAS_TLS__CERT_FILE": str(pki.server_cert),
            "HPCWAAS_TLS__KEY_FILE": str(pki.server_key),
        },
        tls=pki.client_context(),
    )
    yield live
    live.stop()


def test_over_https_the_cookie_is_a_secure_host_cookie(tls_server: LiveServer) -> None:
    added = tls_server.admin("users", "add", "dora", "--password-stdin", input_text=PASSWORD)
    assert added.returncode == 0, added.stderr
    tls_server.start()
    with httpx.Client(base_url=tls_server.url, verify=tls_server.verify) as browser:
        form = browser.get("/auth/login")
        cookie = form.headers["set-cookie"]
        assert cookie.startswith("__Host-hpcwaas_login_csrf=")
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        # What browsers demand of a __Host- cookie: Secure, Path=/ and no Domain.
        assert {"secure", "path=/", "httponly", "samesite=strict"} <= attributes
        assert not any(a.startswith("domain=") for a in attributes)
        page = browser.post(
            "/auth/login",
            data={"username": "dora", "password": PASSWORD, "csrf_token": _form_token(form.text)},
            headers={"Origin": tls_server.url},
        )
        assert page.status_code == 200
        assert _shows_a_token(page.text)
        assert page.headers["strict-transport-security"] == "max-age=31536000"
