"""Self-test of the SSO test infrastructure: the real OIDC provider, the scripted user, chromium."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from tests.conftest import free_port
from tests.sso_support import (
    OidcProvider,
    approve_device_code,
    authorize_url_for,
    complete_login,
    pkce_pair,
    provider_access_token,
    provider_tokens,
)

StartProvider = Callable[..., OidcProvider]
USERS = {"alice": {"groups": ["climate", "hpc"], "given_name": "Alice", "family_name": "Liddell"}}


def dummy_redirect_uri() -> str:
    return f"http://127.0.0.1:{free_port()}/auth/authorize"


def jwt_part(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def authorization_url(provider: OidcProvider, **params: str) -> str:
    query = {
        "client_id": provider.client_id,
        "redirect_uri": provider.redirect_uris[0],
        "response_type": "code",
        "scope": "openid profile",
        "state": "s-123",
        **params,
    }
    return f"{provider.authorization_endpoint}?{urlencode(query)}"


@pytest.fixture
def provider(oidc_provider: StartProvider) -> OidcProvider:
    return oidc_provider(dummy_redirect_uri(), users=USERS)


class FakeClient:
    """A minimal OIDC client web app: /auth/login redirects, /auth/authorize shows the code."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.provider: OidcProvider | None = None
        self.callbacks: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                assert outer.provider is not None
                url = urlsplit(self.path)
                if url.path == "/auth/login":
                    target = authorization_url(outer.provider, state="from-fake")
                    self.send_response(303)
                    self.send_header("Location", target)
                    self.end_headers()
                elif url.path == "/auth/authorize":
                    params = query_of(self.path)
                    outer.callbacks.append(params)
                    body = f'<p id="code">{params.get("code", "")}</p>'.encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def fake_client(oidc_provider: StartProvider) -> Iterator[FakeClient]:
    client = FakeClient(free_port())
    client.provider = oidc_provider(f"{client.url}/auth/authorize", users=USERS)
    client.thread.start()
    yield client
    client.server.shutdown()
    client.server.server_close()


def test_discovery_lists_the_endpoints(provider: OidcProvider) -> None:
    discovery = provider.discovery
    assert discovery["issuer"] == provider.issuer
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "device_authorization_endpoint",
        "jwks_uri",
    ):
        assert str(discovery[key]).startswith(provider.issuer + "/"), key
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert {"openid", "profile", "email", "groups"} <= set(discovery["scopes_supported"])
    assert provider.jwks()["keys"][0]["kty"] == "RSA"


def test_opaque_access_token_reads_userinfo(provider: OidcProvider) -> None:
    tokens = provider_tokens(provider, "alice")
    token = tokens["access_token"]
    assert token.count(".") == 0  # opaque
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    response = provider.userinfo(token)
    assert response.status_code == 200, response.text
    claims = response.json()
    assert claims["sub"] == "alice"
    assert claims["given_name"] == claims["firstname"] == "Alice"
    assert claims["family_name"] == claims["surname"] == "Liddell"
    assert claims["name"] == "Alice Liddell"
    assert claims["email"] == "alice@example.org"
    assert claims["groups"] == ["climate", "hpc"]
    introspection = provider.introspect(token)
    assert introspection["active"] is True
    assert introspection["sub"] == "alice"
    assert introspection["client_id"] == provider.client_id
    # The ID token is a JWT for the client, signed with the JWKS.
    id_claims = provider.verify_jwt(tokens["id_token"], audience=provider.client_id)
    assert id_claims["sub"] == "alice"
    provider.revoke(token)
    assert provider.introspect(token) == {"active": False}
    assert provider.userinfo(token).status_code == 401


def test_unknown_user_and_scopes(provider: OidcProvider) -> None:
    token = provider_access_token(provider, "bob", scope="openid profile")
    claims = provider.userinfo(token).json()
    assert claims["sub"] == "bob"
    assert claims["given_name"] == "Bob"
    assert "groups" not in claims  # the scope did not ask for them
    assert "email" not in claims
    token = provider_access_token(provider, "bob", scope="openid groups")
    assert provider.userinfo(token).json() == {"sub": "bob", "groups": []}


def test_jwt_access_token_verifies_against_the_jwks(provider: OidcProvider) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    token = provider_access_token(provider, "alice", jwt=True)
    header = jwt_part(token, 0)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert header["kid"] in {key["kid"] for key in provider.jwks()["keys"]}
    decoded = jwt.decode(token, KeySet.import_key_set(provider.jwks()))  # type: ignore[arg-type]
    assert decoded.claims["iss"] == provider.issuer
    assert decoded.claims["aud"] == "urn:hpcwaas:api"
    assert decoded.claims["sub"] == "alice"
    assert decoded.claims["client_id"] == provider.client_id
    assert decoded.claims["scope"] == "hpcwaas"
    assert decoded.claims["exp"] - decoded.claims["iat"] == 3600
    assert provider.verify_jwt(token)["sub"] == "alice"
    # A token for a resource server is refused where the opaque ones are accepted.
    assert provider.userinfo(token).status_code == 401
    assert provider.introspect(token)["error"] == "unsupported_token_type"


def test_device_flow_and_short_tokens(oidc_provider: StartProvider) -> None:
    provider = oidc_provider(
        dummy_redirect_uri(),
        users=USERS,
        token_endpoint_auth_method="client_secret_post",
        access_token_ttl=5,
        jwt_access_token_claims=["groups", "name"],
        always_issue_refresh_token=True,
    )
    tokens = provider_tokens(provider, "alice", flow="device")
    assert tokens["expires_in"] == 5
    refreshed = provider.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["access_token"] != tokens["access_token"]
    assert provider.userinfo(tokens["access_token"]).json()["groups"] == ["climate", "hpc"]
    token = provider_access_token(provider, "alice", jwt=True, flow="device")
    claims = provider.verify_jwt(token)
    assert claims["exp"] - claims["iat"] == 5
    assert claims["groups"] == ["climate", "hpc"]
    assert claims["name"] == "Alice Liddell"
    # The client is registered for client_secret_post: basic authentication is refused.
    response = httpx.post(
        provider.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(provider.client_id, provider.client_secret),
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def test_client_must_use_its_registered_auth_method(provider: OidcProvider) -> None:
    assert provider.token_endpoint_auth_method == "client_secret_basic"
    data = {"grant_type": "refresh_token", "refresh_token": "x"}
    response = provider.token_request(data)
    assert response.json()["error"] == "invalid_grant"  # authenticated, then refused
    response = httpx.post(
        provider.token_endpoint,
        data={**data, "client_id": provider.client_id, "client_secret": provider.client_secret},
    )
    assert response.status_code == 401
    assert "registered for client_secret_basic" in response.json()["error_description"]
    response = httpx.post(provider.token_endpoint, data=data, auth=(provider.client_id, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_device_code_is_single_use(provider: OidcProvider) -> None:
    device = provider.device_authorization({"scope": "openid"}).json()
    assert "interval" not in device  # oidc-provider leaves it out: clients use 5 s
    pending = provider.token_request(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device["device_code"],
        }
    )
    assert pending.json()["error"] == "authorization_pending"
    approve_device_code(provider, device["verification_uri_complete"], "carol")
    with pytest.raises(AssertionError, match="refused the device code"):
        approve_device_code(provider, device["verification_uri_complete"], "carol")


def test_code_flow_checks(oidc_provider: StartProvider) -> None:
    provider = oidc_provider(dummy_redirect_uri(), pkce_required=True)
    # openid is required.
    callback = authorize_url_for(authorization_url(provider, scope="profile email"), "dave")
    assert query_of(callback)["error"] == "invalid_scope"
    assert query_of(callback)["state"] == "s-123"
    # PKCE is required when pkce_required is set.
    callback = authorize_url_for(authorization_url(provider), "dave")
    assert query_of(callback)["error"] == "invalid_request"
    # The user may refuse consent.
    verifier, challenge = pkce_pair()
    url = authorization_url(provider, code_challenge=challenge, code_challenge_method="S256")
    callback = authorize_url_for(url, "dave", consent=False)
    assert query_of(callback)["error"] == "access_denied"
    # A code is redeemed once, with the right verifier.
    with httpx.Client() as browser:
        callback = authorize_url_for(url, "dave", client=browser)
        params = query_of(callback)
        assert params["state"] == "s-123"
        assert params["iss"] == provider.issuer
        # A second login in the same browser reuses the provider's session.
        assert "code" in query_of(authorize_url_for(url, "dave", client=browser))
    exchange = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": provider.redirect_uris[0],
    }
    response = provider.token_request({**exchange, "code_verifier": "x" * 43})
    assert response.json()["error"] == "invalid_grant"
    assert provider.token_request(exchange).json()["error"] == "invalid_grant"
    response = provider.token_request({**exchange, "code_verifier": verifier})
    assert response.status_code == 200, response.text
    response = provider.token_request({**exchange, "code_verifier": verifier})
    assert response.json()["error"] == "invalid_grant"


def test_complete_login_lands_on_the_client(fake_client: FakeClient) -> None:
    response = complete_login(f"{fake_client.url}/auth/login", "alice")
    assert response.status_code == 200
    assert response.url.path == "/auth/authorize"
    [callback] = fake_client.callbacks
    assert callback["state"] == "from-fake"
    assert f'<p id="code">{callback["code"]}</p>' in response.text


def test_chromium_screenshot(provider: OidcProvider, chromium: object, tmp_path: Path) -> None:
    from playwright.sync_api import Page

    assert isinstance(chromium, Page)
    response = chromium.goto(provider.issuer + "/.well-known/openid-configuration")
    assert response is not None and response.ok
    assert provider.issuer in chromium.content()
    shot = tmp_path / "discovery.png"
    chromium.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 1000


def test_chromium_logs_in_through_the_provider(fake_client: FakeClient, chromium: object) -> None:
    from playwright.sync_api import Page

    assert isinstance(chromium, Page)
    chromium.goto(f"{fake_client.url}/auth/login")
    chromium.fill("input[name=login]", "alice")
    chromium.fill("input[name=password]", "whatever")
    chromium.click("button[type=submit]")
    chromium.click("button[type=submit]")  # consent
    chromium.wait_for_url(f"{fake_client.url}/auth/authorize?**")
    code = chromium.text_content("#code")
    assert code and code == fake_client.callbacks[0]["code"]
