"""The OpenID Connect provider, as a client sees it: endpoints, code exchange, token checks.

Endpoints come from the original's keys (``auth_url``, ``token_url``, ``user_info_url``) or
from discovery when an ``issuer`` is configured; ID tokens and JWT access tokens are checked
against the provider's JWKS (refetched when a token names an unknown key).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from hpcwaas.settings import AuthConfig

# A token naming a key we do not have triggers a JWKS refetch at most this often.
_JWKS_REFETCH_SECONDS = 30.0
_CLOCK_SKEW_SECONDS = 60


class ProviderError(Exception):
    """The identity provider refused a request or could not be reached; safe to show."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class TokenRejected(Exception):
    """A token failed validation; the message says why (never the token)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    userinfo: str
    issuer: str | None = None
    jwks: str | None = None
    introspection: str | None = None
    device_authorization: str | None = None


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class OidcClient:
    """One per server: talks to the provider with the server's confidential client."""

    def __init__(self, config: AuthConfig, http: httpx.AsyncClient) -> None:
        self._config = config
        self._http = http
        self._endpoints: Endpoints | None = None
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0
        self._lock = asyncio.Lock()
        if config.client_id is None or config.client_secret is None:
            raise ValueError("sso needs client_id and client_secret")
        self.client_id: str = config.client_id
        self._secret = config.client_secret.get_secret_value()

    async def endpoints(self) -> Endpoints:
        """The provider's endpoints; configured keys win over discovery."""
        if self._endpoints is not None:
            return self._endpoints
        async with self._lock:
            if self._endpoints is None:
                self._endpoints = await self._load_endpoints()
        return self._endpoints

    async def _load_endpoints(self) -> Endpoints:
        c = self._config
        found: dict[str, Any] = {}
        if c.issuer:
            url = c.issuer.rstrip("/") + "/.well-known/openid-configuration"
            found = await self._get_json(url, "discovery")

        def pick(configured: str | None, key: str) -> str | None:
            value = configured or found.get(key)
            return str(value) if value else None

        authorization = pick(c.auth_url, "authorization_endpoint")
        token = pick(c.token_url, "token_endpoint")
        userinfo = pick(c.user_info_url, "userinfo_endpoint")
        if not (authorization and token and userinfo):
            raise ProviderError(
                "the identity provider's discovery document lacks the authorization, token or "
                "userinfo endpoint: set auth_url, token_url and user_info_url",
                unavailable=True,
            )
        return Endpoints(
            authorization=authorization,
            token=token,
            userinfo=userinfo,
            issuer=c.issuer or None,
            jwks=pick(c.jwks_url, "jwks_uri"),
            introspection=pick(c.introspection_url, "introspection_endpoint"),
            device_authorization=pick(c.device_authorization_url, "device_authorization_endpoint"),
        )

    def authorization_url(
        self, endpoints: Endpoints, *, state: str, nonce: str, verifier: str
    ) -> str:
        params = {
            "client_id": self.client_id,
            "redirect_uri": self._config.redirect_url,
            "response_type": "code",
            "scope": " ".join(self._scopes()),
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in endpoints.authorization else "?"
        return endpoints.authorization + separator + urlencode(params)

    def _scopes(self) -> list[str]:
        scopes = list(self._config.scopes)
        return scopes if "openid" in scopes else ["openid", *scopes]

    async def exchange_code(self, code: str, verifier: str) -> dict[str, Any]:
        """Redeem an authorization code (with its PKCE verifier) for tokens."""
        endpoints = await self.endpoints()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": str(self._config.redirect_url),
            "code_verifier": verifier,
        }
        return await self._token_request(endpoints.token, form)

    async def start_device_authorization(self) -> dict[str, Any]:
        endpoints = await self.endpoints()
        if not endpoints.device_authorization:
            raise ProviderError("the identity provider offers no device authorization")
        return await self._token_request(
            endpoints.device_authorization, {"scope": " ".join(self._scopes())}
        )

    async def poll_device_token(self, device_code: str) -> dict[str, Any]:
        """One poll of the token endpoint; a pending login comes back as {"error": ...}."""
        endpoints = await self.endpoints()
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device_code,
        }
        return await self._token_request(endpoints.token, form, errors_as_data=True)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        endpoints = await self.endpoints()
        try:
            response = await self._http.get(
                endpoints.userinfo, headers={"Authorization": f"Bearer {access_token}"}
            )
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"the identity provider did not answer: {exc}", unavailable=True
            ) from None
        if response.status_code in (401, 403):
            raise TokenRejected("the identity provider refused the access token")
        if response.status_code != 200:
            raise ProviderError(f"user info request failed with HTTP {response.status_code}")
        return _json_object(response, "user info")

    async def introspect(self, token: str) -> dict[str, Any]:
        endpoints = await self.endpoints()
        if not endpoints.introspection:
            raise ProviderError("the identity provider offers no token introspection")
        return await self._token_request(endpoints.introspection, {"token": token})

    async def validate_jwt(
        self, token: str, *, audience: str, nonce: str | None = None
    ) -> dict[str, Any]:
        """Claims of a JWT signed by the provider, for this audience, unexpired (and nonce)."""
        endpoints = await self.endpoints()
        if not endpoints.issuer or not endpoints.jwks:
            raise TokenRejected("JWTs cannot be checked: configure the provider's issuer")
        try:
            header = _jwt_header(token)
        except ValueError:
            raise TokenRejected("the token is not a well-formed JWT") from None
        keys = await self._key_set(endpoints.jwks, kid=header.get("kid"))
        try:
            decoded = jwt.decode(token, keys)
        except JoseError as exc:
            raise TokenRejected(f"the token's signature is not valid ({exc.error})") from None
        claims = dict(decoded.claims)
        _check_claims(claims, issuer=endpoints.issuer, audience=audience, nonce=nonce)
        return claims

    async def _key_set(self, url: str, *, kid: str | None) -> KeySet:
        known = self._keys is not None and (
            kid is None or any(k.kid == kid for k in self._keys.keys)
        )
        stale = time.monotonic() - self._keys_fetched > _JWKS_REFETCH_SECONDS
        if self._keys is None or (not known and stale):
            data = await self._get_json(url, "JWKS")
            self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            self._keys_fetched = time.monotonic()
        return self._keys

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"the identity provider's {what} at {url} did not answer: {exc}", unavailable=True
            ) from None
        if response.status_code != 200:
            raise ProviderError(
                f"the identity provider's {what} at {url} answered HTTP {response.status_code}",
                unavailable=True,
            )
        return _json_object(response, what)

    async def _token_request(
        self, url: str, form: dict[str, str], *, errors_as_data: bool = False
    ) -> dict[str, Any]:
        auth: httpx.BasicAuth | None = None
        if self._config.client_auth_method == "client_secret_post":
            form = {**form, "client_id": self.client_id, "client_secret": self._secret}
        else:
            # RFC 6749 2.3.1: both parts are form-encoded before the Basic encoding
            auth = httpx.BasicAuth(quote(self.client_id, safe=""), quote(self._secret, safe=""))
        try:
            response = await self._http.post(url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"the identity provider did not answer: {exc}", unavailable=True
            ) from None
        body = _json_object(response, "token endpoint") if response.content else {}
        if response.status_code == 200 or (errors_as_data and "error" in body):
            return body
        error = body.get("error", f"HTTP {response.status_code}")
        description = body.get("error_description")
        raise ProviderError(
            f"the identity provider refused: {error}" + (f" ({description})" if description else "")
        )


def _jwt_header(token: str) -> dict[str, Any]:
    import json

    segment = token.split(".")[0]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header


def _check_claims(claims: dict[str, Any], *, issuer: str, audience: str, nonce: str | None) -> None:
    now = time.time()
    if claims.get("iss") != issuer:
        raise TokenRejected("the token was issued by another provider")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise TokenRejected("the token is meant for another audience")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise TokenRejected("the token has no expiry")
    if exp + _CLOCK_SKEW_SECONDS < now:
        raise TokenRejected("the token has expired", expired=True)
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf - _CLOCK_SKEW_SECONDS > now:
        raise TokenRejected("the token is not valid yet")
    if nonce is not None and claims.get("nonce") != nonce:
        raise TokenRejected("the ID token does not belong to this login (nonce mismatch)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenRejected("the token names no subject")


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise ProviderError(f"the identity provider's {what} answer is not JSON") from None
    if not isinstance(data, dict):
        raise ProviderError(f"the identity provider's {what} answer is not a JSON object")
    return data
