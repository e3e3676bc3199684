"""Every response carries the security headers: API JSON, errors, HTML pages and portal files."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import LiveServer

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    # Plain HTTP: HSTS would be ignored by browsers, and is not sent (see test_tls.py for HTTPS).
    assert "strict-transport-security" not in response.headers


def test_json_api_answers_carry_the_headers_and_are_not_cached(api: httpx.Client) -> None:
    response = api.get("/workflows")
    assert response.status_code == 200
    assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no/such/route", 404), ("GET", "/workflows", 401), ("DELETE", "/healthz", 405)],
)
def test_error_answers_carry_the_headers(
    server: LiveServer, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, server.url + path)
    assert response.status_code == status
    assert response.json()["errors"][0]["status"] == status
    assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"


def test_oversized_body_refused_before_the_app_still_carries_the_headers(
    api: httpx.Client,
) -> None:
    response = api.post("/ssh_keys", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert_security_headers(response)


def test_login_page_carries_the_headers_and_is_never_cached(server: LiveServer) -> None:
    response = httpx.get(server.url + "/auth/login")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"
    # Nothing inline that the policy would block.
    assert "<style" not in response.text
    assert " onclick=" not in response.text
    assert '<link rel="stylesheet" href="/ui/assets/pages.css">' in response.text


@pytest.mark.parametrize("path", ["/ui/", "/ui/assets/pages.css", "/ui/assets/token.js"])
def test_portal_files_carry_the_headers_and_stay_cacheable(server: LiveServer, path: str) -> None:
    response = httpx.get(server.url + path)
    assert response.status_code == 200
    assert_security_headers(response)
    assert "no-store" not in response.headers.get("cache-control", "")
    assert response.headers["etag"]
    revalidated = httpx.get(server.url + path, headers={"If-None-Match": response.headers["etag"]})
    assert revalidated.status_code == 304
