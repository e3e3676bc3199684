"""A real OpenID Connect provider and a real headless browser for the SSO tests.

tests/conftest.py loads this module as a plugin, so its fixtures are available to every
test; import the helpers by name. scripts/test.sh installs what they need: the
npm package oidc-provider under tests/oidc/node_modules and Debian's chromium.

Fixtures
--------
``oidc_provider(redirect_uris, **options) -> OidcProvider``
    Factory: starts ``node tests/oidc/provider.mjs`` (npm oidc-provider) on a free port
    of 127.0.0.1 and waits for it (the test fails, with the provider's output, if it is
    not up within 20 s); every provider started is stopped at teardown. ``options`` are
    the fields of :class:`OidcProvider` (``users``, ``token_endpoint_auth_method``,
    ``access_token_ttl``, ``pkce_required``, ...).
``chromium -> playwright.sync_api.Page``
    A page of Debian's /usr/bin/chromium (headless, fresh profile) driven by Playwright;
    requests to anything but the loopback are aborted. Fails when chromium is missing.

Classes
-------
``OidcProvider``
    One provider process with one confidential client. ``.issuer``, ``.discovery``,
    ``.jwks()``, ``.client_id``, ``.client_secret``, ``.redirect_uris``, endpoint
    properties (``.authorization_endpoint``, ``.token_endpoint``, ``.userinfo_endpoint``,
    ``.introspection_endpoint``, ``.revocation_endpoint``,
    ``.device_authorization_endpoint``, ``.jwks_uri``), ``.settings`` (the JSON given to
    provider.mjs), ``.output()`` (its log), ``.token_request(data)`` and
    ``.device_authorization(data)`` (with the client's authentication),
    ``.userinfo(token)``, ``.introspect(token)``, ``.revoke(token)``, ``.verify_jwt(token)``
    (JWKS signature, issuer, audience, expiry; returns the claims),
    ``.sso_auth_config(redirect_url)`` (an hpcwaas ``auth:`` section for this provider),
    ``.start()``, ``.stop()``.

Helpers
-------
``complete_login(start_url, user, *, consent=True, client=None) -> httpx.Response``
    The user logs in without a browser: GET ``start_url`` (e.g. the hpcwaas server's
    ``/auth/login``), follow redirects, submit the provider's login form (any password)
    and its consent form, then GET the redirect back to the client (``/auth/authorize?
    code&state``), following its redirects; returns that last response.
``authorize_url_for(start_url, user, *, consent=True, client=None) -> str``
    The same, but stops before the redirect back and returns its URL (with ``code``,
    ``state`` and ``iss``; or ``error=access_denied`` when ``consent=False``), so a test
    can replay the code, tamper with the state, or hit it from another client.
``approve_device_code(provider, verification_uri_complete, user, *, client=None) -> None``
    A scripted user opens a device flow's ``verification_uri_complete``, submits the
    auto-submitting form, confirms the code, logs in and consents.
``provider_tokens(provider, user, *, jwt=False, scope=None, flow="code") -> dict``
    A token response from the provider itself for ``user`` (``access_token``,
    ``id_token``, ``expires_in``, ...), by the code flow with PKCE (stopping before the
    client's redirect URI) or by the device flow (``flow="device"``). ``jwt=True`` names
    the provider's resource (``urn:hpcwaas:api``) in the requests: the access token is then
    a JWT (``typ`` ``at+jwt``, ``aud`` the resource) that userinfo and introspection
    refuse; otherwise it is opaque, as Unity's are (check it with userinfo/introspection).
``provider_access_token(provider, user, *, jwt=False, scope=None, flow="code") -> str``
    Just the access token of :func:`provider_tokens`.
``pkce_pair() -> tuple[str, str]``
    A PKCE ``(code_verifier, S256 code_challenge)``.
``parse_forms(page) -> list[HtmlForm]``
    The forms of a page (action, method, id, fields with their default values).

A test module imports its helpers from here before pytest registers the module as a
plugin, too late for assertion rewriting: PYTEST_DONT_REWRITE keeps pytest from warning.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest

from tests.conftest import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_DIR = ROOT / "tests" / "oidc"
PROVIDER_SCRIPT = PROVIDER_DIR / "provider.mjs"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
DEFAULT_RESOURCE = "urn:hpcwaas:api"
START_TIMEOUT = 20.0
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
INSTALL_HINT = "scripts/test.sh installs it (npm install in tests/oidc)"


# ---------------------------------------------------------------------------- provider


@dataclass
class OidcProvider:
    """One npm ``oidc-provider`` process (tests/oidc/provider.mjs) and its one client.

    The fields are the provider's settings; ``users`` maps a login to optional
    ``groups``, ``given_name``, ``family_name``, ``name`` and ``email`` (any other login
    is accepted too, with names derived from it and no groups). The access and ID
    token lifetimes are oidc-provider's (1 h) unless ``access_token_ttl`` /
    ``id_token_ttl`` (seconds) say otherwise.
    """

    redirect_uris: list[str]
    log_path: Path
    port: int = field(default_factory=free_port)
    client_id: str = "hpcwaas"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic"
    )
    grant_types: list[str] = field(
        default_factory=lambda: ["authorization_code", "refresh_token", DEVICE_CODE_GRANT]
    )
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource: str = DEFAULT_RESOURCE
    resource_scope: str = "hpcwaas"
    groups_scope: str = "groups"
    extra_scopes: list[str] = field(default_factory=list)
    jwt_access_token_claims: list[str] = field(default_factory=list)
    access_token_ttl: int | None = None
    id_token_ttl: int | None = None
    pkce_required: bool = False
    require_openid: bool = True
    always_issue_refresh_token: bool = False
    strict_client_auth: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    discovery: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> dict[str, Any]:
        """The settings JSON handed to provider.mjs (see the comment at its top)."""
        settings: dict[str, Any] = {
            "port": self.port,
            "issuer": self.issuer,
            "client": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "redirect_uris": self.redirect_uris,
                "grant_types": self.grant_types,
                "token_endpoint_auth_method": self.token_endpoint_auth_method,
            },
            "users": self.users,
            "resource": self.resource,
            "resource_scope": self.resource_scope,
            "groups_scope": self.groups_scope,
            "extra_scopes": self.extra_scopes,
            "jwt_access_token_claims": self.jwt_access_token_claims,
            "pkce_required": self.pkce_required,
            "require_openid": self.require_openid,
            "always_issue_refresh_token": self.always_issue_refresh_token,
            "strict_client_auth": self.strict_client_auth,
        }
        if self.access_token_ttl is not None:
            settings["access_token_ttl"] = self.access_token_ttl
        if self.id_token_ttl is not None:
            settings["id_token_ttl"] = self.id_token_ttl
        return settings

    def output(self) -> str:
        """Everything the provider printed so far (one line per request after READY)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> OidcProvider:
        """Start the provider and wait for its READY line; raise (with its output) if not."""
        node = shutil.which("node")
        if node is None:
            raise RuntimeError(f"node is not installed: {INSTALL_HINT} (apt-get install nodejs)")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(f"npm package oidc-provider is missing: {INSTALL_HINT}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [node, str(PROVIDER_SCRIPT), json.dumps(self.settings)],
                cwd=PROVIDER_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "NODE_ENV": "test", "DEBUG": ""},
            )
        deadline = time.monotonic() + START_TIMEOUT
        ready = f"READY {self.issuer}"
        while time.monotonic() < deadline:
            if ready in self.output():
                break
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the OIDC provider exited with {self.process.returncode}:\n{self.output()}"
                )
            time.sleep(0.02)
        else:
            self.stop()
            raise RuntimeError(
                f"the OIDC provider did not print READY within {START_TIMEOUT:.0f} s:\n"
                + self.output()
            )
        response = httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=10)
        response.raise_for_status()
        self.discovery = response.json()
        return self

    def stop(self) -> None:
        """Stop the provider by its PID (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # Endpoints, from the discovery document.
    @property
    def authorization_endpoint(self) -> str:
        return str(self.discovery["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.discovery["token_endpoint"])

    @property
    def userinfo_endpoint(self) -> str:
        return str(self.discovery["userinfo_endpoint"])

    @property
    def introspection_endpoint(self) -> str:
        return str(self.discovery["introspection_endpoint"])

    @property
    def revocation_endpoint(self) -> str:
        return str(self.discovery["revocation_endpoint"])

    @property
    def device_authorization_endpoint(self) -> str:
        return str(self.discovery["device_authorization_endpoint"])

    @property
    def jwks_uri(self) -> str:
        return str(self.discovery["jwks_uri"])

    def jwks(self) -> dict[str, Any]:
        response = httpx.get(self.jwks_uri, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    # Calls with the client's own authentication (basic or post, as registered).
    def _client_post(self, url: str, data: dict[str, str]) -> httpx.Response:
        if self.token_endpoint_auth_method == "client_secret_post":
            form = {**data, "client_id": self.client_id, "client_secret": self.client_secret}
            return httpx.post(url, data=form, timeout=30)
        return httpx.post(url, data=data, auth=(self.client_id, self.client_secret), timeout=30)

    def token_request(self, data: dict[str, str]) -> httpx.Response:
        """POST ``data`` to the token endpoint with the client's authentication."""
        return self._client_post(self.token_endpoint, data)

    def device_authorization(self, data: dict[str, str]) -> httpx.Response:
        """POST ``data`` (scope, resource...) to the device authorization endpoint."""
        return self._client_post(self.device_authorization_endpoint, data)

    def introspect(self, token: str) -> dict[str, Any]:
        """The introspection response's JSON, whatever its status.

        ``{"active": false}`` for a dead token; for a JWT oidc-provider answers 400
        ``{"error": "unsupported_token_type", ...}`` (JWTs are not introspected).
        """
        response = self._client_post(self.introspection_endpoint, {"token": token})
        return dict(response.json())

    def revoke(self, token: str) -> None:
        self._client_post(self.revocation_endpoint, {"token": token}).raise_for_status()

    def userinfo(self, access_token: str) -> httpx.Response:
        """GET userinfo with ``access_token`` (opaque tokens only: JWTs have an audience)."""
        return httpx.get(
            self.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=30,
        )

    def verify_jwt(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """Check a JWT's signature against the JWKS, its issuer, audience and expiry.

        ``audience`` defaults to the provider's resource (for access tokens); pass the
        client ID for ID tokens. Returns the claims.
        """
        from joserfc import jwt
        from joserfc.jwk import KeySet

        decoded = jwt.decode(token, KeySet.import_key_set(self.jwks()))  # type: ignore[arg-type]
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": audience or self.resource},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
        return dict(decoded.claims)

    def sso_auth_config(
        self,
        redirect_url: str,
        *,
        scopes: list[str] | None = None,
        session_duration: int = 86400,
    ) -> dict[str, Any]:
        """An hpcwaas server config ``auth:`` section for this provider.

        Its keys are the original's (docs/compatibility.md, "Authentication").
        """
        return {
            "auth_type": "sso",
            "auth_url": self.authorization_endpoint,
            "token_url": self.token_endpoint,
            "user_info_url": self.userinfo_endpoint,
            "redirect_url": redirect_url,
            "scopes": scopes or ["openid", "profile", "email", self.groups_scope],
            "session_duration": session_duration,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


@pytest.fixture
def oidc_provider(tmp_path: Path) -> Iterator[Callable[..., OidcProvider]]:
    """Factory: ``oidc_provider(redirect_uris, **OidcProvider fields)`` -> a started provider.

    ``redirect_uris`` is one URL or a list (e.g. ``f"{server_url}/auth/authorize"``; pick
    the server's port with ``free_port()`` first). Fails the test if it does not start.
    """
    started: list[OidcProvider] = []

    def start(redirect_uris: str | list[str], **options: Any) -> OidcProvider:
        uris = [redirect_uris] if isinstance(redirect_uris, str) else list(redirect_uris)
        for attempt in range(3):
            log_path = tmp_path / f"oidc-provider-{len(started)}.log"
            provider = OidcProvider(redirect_uris=uris, log_path=log_path, **options)
            started.append(provider)
            try:
                return provider.start()
            except RuntimeError as error:
                # free_port() can race with another process: take another port then.
                if "EADDRINUSE" in str(error) and "port" not in options and attempt < 2:
                    continue
                pytest.fail(str(error), pytrace=False)
        raise AssertionError("unreachable")

    yield start
    for provider in started:
        provider.stop()


# ---------------------------------------------------------------------------- HTML forms


@dataclass
class HtmlForm:
    action: str
    method: str
    id: str | None
    fields: dict[str, str]
    """Inputs with a name, by name, with their value (hidden ones and the others)."""
    hidden: dict[str, str]
    """The hidden inputs only."""


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[HtmlForm] = []
        self._current: HtmlForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._current = HtmlForm(
                action=values.get("action", ""),
                method=values.get("method", "get").lower(),
                id=values.get("id"),
                fields={},
                hidden={},
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and values.get("name"):
            name, value = values["name"], values.get("value", "")
            self._current.fields[name] = value
            if values.get("type", "text").lower() == "hidden":
                self._current.hidden[name] = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(page: str) -> list[HtmlForm]:
    """The forms of a page, in order."""
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


# ---------------------------------------------------------------------------- user agents


def _is_callback(url: str) -> bool:
    """A redirect to the client: it carries ``code`` or ``error`` in its query."""
    query = parse_qs(urlsplit(url).query)
    return "code" in query or "error" in query


def _page_text(response: httpx.Response) -> str:
    text = re.sub(r"<style.*?</style>|<script.*?</script>", "", response.text, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()[:2000]


def _fail(message: str, response: httpx.Response) -> AssertionError:
    return AssertionError(
        f"{message}: {response.request.method} {response.request.url} answered "
        f"{response.status_code}: {_page_text(response)}"
    )


def _drive(
    client: httpx.Client,
    start_url: str,
    user: str,
    *,
    consent: bool,
    password: str,
    stop_at_callback: bool,
) -> tuple[str | None, httpx.Response]:
    """Walk the provider's pages as a user would, without JavaScript.

    Returns ``(callback URL or None, last response)``: the callback is the first redirect
    that carries ``code`` or ``error`` (the provider sending the user back to the client).
    When ``stop_at_callback`` is false the walk ends instead on the first page with no
    form to submit (the device flow's success page), and the callback is None.
    """
    method, url, data = "GET", start_url, None
    for _ in range(40):
        response = client.request(method, url, data=data, follow_redirects=False)
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if _is_callback(location) and stop_at_callback:
                return location, response
            method, url, data = "GET", location, None
            continue
        if response.status_code != 200:
            raise _fail(f"logging {user} in failed", response)
        forms = [form for form in parse_forms(response.text) if form.method == "post"]
        if not forms:
            if stop_at_callback:
                raise _fail(f"logging {user} in stopped on a page without a form", response)
            return None, response
        form = forms[0]
        target = urljoin(str(response.url), form.action)
        prompt = form.fields.get("prompt")
        if prompt == "login":
            method, url = "POST", target
            data = {**form.hidden, "login": user, "password": password}
        elif prompt == "consent":
            if consent:
                method, url, data = "POST", target, dict(form.hidden)
            else:  # the user follows the page's "Cancel" link
                abort = re.search(r'href="([^"]*/abort)"', response.text)
                if abort is None:
                    raise _fail("the consent page has no abort link", response)
                method, url = "GET", urljoin(str(response.url), html.unescape(abort.group(1)))
                data = None
        elif "user_code" in form.fields and "user_code" not in form.hidden:
            # The device flow's code input page: it shows up only when the code was refused.
            raise _fail("the provider refused the device code", response)
        else:
            # A page that submits itself with JavaScript (form_post) or a confirmation
            # whose only button submits the hidden fields (device flow): POST them.
            method, url, data = "POST", target, dict(form.hidden)
    raise AssertionError(f"logging {user} in did not end after 40 steps (last: {url})")


def authorize_url_for(
    start_url: str,
    user: str,
    *,
    consent: bool = True,
    client: httpx.Client | None = None,
    password: str = "any-password",
) -> str:
    """Log ``user`` in from ``start_url`` and return the provider's redirect back to the client.

    The URL (``<redirect_uri>?code=...&state=...&iss=...``, or ``?error=access_denied``
    when ``consent=False``) is not requested. Cookies stay in ``client`` (pass the one
    that will hit the callback when the server keeps login state in a cookie).
    """
    owned = client is None
    http = client or httpx.Client(timeout=30)
    try:
        callback, _ = _drive(
            http, start_url, user, consent=consent, password=password, stop_at_callback=True
        )
    finally:
        if owned:
            http.close()
    assert callback is not None
    return callback


def complete_login(
    start_url: str,
    user: str,
    *,
    consent: bool = True,
    client: httpx.Client | None = None,
    password: str = "any-password",
) -> httpx.Response:
    """Log ``user`` in from ``start_url`` and return the client's answer to the callback.

    The callback (``/auth/authorize?code&state``) is requested from the same httpx
    client, following its redirects; the response is returned whatever its status.
    """
    owned = client is None
    http = client or httpx.Client(timeout=30)
    try:
        callback = authorize_url_for(
            start_url, user, consent=consent, client=http, password=password
        )
        response = http.get(callback, follow_redirects=True)
        response.read()
        return response
    finally:
        if owned:
            http.close()


def approve_device_code(
    provider: OidcProvider,
    verification_uri_complete: str,
    user: str,
    *,
    client: httpx.Client | None = None,
    password: str = "any-password",
) -> None:
    """A scripted user approves a device flow: open the URL, confirm, log in, consent."""
    assert verification_uri_complete.startswith(provider.issuer), verification_uri_complete
    owned = client is None
    http = client or httpx.Client(timeout=30)
    try:
        _, page = _drive(
            http,
            verification_uri_complete,
            user,
            consent=True,
            password=password,
            stop_at_callback=False,
        )
        if "Sign-in Success" not in page.text:
            raise _fail("the device flow did not end on its success page", page)
    finally:
        if owned:
            http.close()


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for PKCE with S256."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def provider_tokens(
    provider: OidcProvider,
    user: str,
    *,
    jwt: bool = False,
    scope: str | None = None,
    flow: Literal["code", "device"] = "code",
) -> dict[str, Any]:
    """The provider's token response for ``user``, obtained as the provider's client.

    ``flow="code"``: authorization code with PKCE; the user logs in from the provider's
    authorization URL and the code is taken from the redirect to the client's first
    redirect URI, which is never requested (so no server needs to run there).
    ``flow="device"``: device authorization, approved by :func:`approve_device_code`.
    ``scope`` defaults to ``openid profile email <groups scope>`` (plus the resource's
    scope when ``jwt``). ``jwt=True`` names ``provider.resource`` in the requests, which
    makes the access token a JWT for that audience; otherwise it is opaque.
    """
    scope = scope or " ".join(
        ["openid", "profile", "email", provider.groups_scope]
        + ([provider.resource_scope] if jwt else [])
    )
    resource = {"resource": provider.resource} if jwt else {}
    if flow == "device":
        response = provider.device_authorization({"scope": scope, **resource})
        if response.status_code != 200:
            raise _fail("device authorization failed", response)
        device = response.json()
        approve_device_code(provider, device["verification_uri_complete"], user)
        token_request = {"grant_type": DEVICE_CODE_GRANT, "device_code": device["device_code"]}
    else:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        redirect_uri = provider.redirect_uris[0]
        query = {
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **resource,
        }
        callback = authorize_url_for(f"{provider.authorization_endpoint}?{urlencode(query)}", user)
        params = {key: values[0] for key, values in parse_qs(urlsplit(callback).query).items()}
        if "code" not in params or params.get("state") != state:
            raise AssertionError(f"the provider answered {callback}")
        token_request = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
    response = provider.token_request({**token_request, **resource})
    if response.status_code != 200:
        raise _fail("the token request failed", response)
    return dict(response.json())


def provider_access_token(
    provider: OidcProvider,
    user: str,
    *,
    jwt: bool = False,
    scope: str | None = None,
    flow: Literal["code", "device"] = "code",
) -> str:
    """An access token of the provider for ``user``: opaque, or a JWT when ``jwt=True``."""
    return str(provider_tokens(provider, user, jwt=jwt, scope=scope, flow=flow)["access_token"])


# ---------------------------------------------------------------------------- browser


def _loopback_only(route: Any) -> None:
    host = urlsplit(route.request.url).hostname or ""
    if host in {"127.0.0.1", "localhost", "::1"}:
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Page]:
    """A Playwright page of Debian's headless chromium with a fresh profile."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: scripts/test.sh installs it "
            "(apt-get install --no-install-recommends chromium)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=60_000,
        )
        try:
            context.set_default_timeout(20_000)
            context.route("**/*", _loopback_only)
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()
