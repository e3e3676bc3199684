"""Single sign-on: the login round trip, device logins, and the provider's own tokens.

Each login attempt gets a fresh state; the PKCE verifier and the nonce are derived from
that state and a salt kept server-side, so any replica can finish the login and a
replayed or forged state is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hpcwaas.auth.identity import (
    INVALID_TOKEN,
    SESSION_EXPIRED,
    AuthenticationFailed,
    Identity,
)
from hpcwaas.auth.oidc import OidcClient, ProviderError, TokenRejected, looks_like_jwt
from hpcwaas.auth.tokens import issue_token
from hpcwaas.settings import AuthConfig
from hpcwaas.store import login_attempts as login_attempt_store
from hpcwaas.store import users as user_store
from hpcwaas.store.database import Database
from hpcwaas.store.users import TokenRecord

T = TypeVar("T")


class LoginFailed(Exception):
    """The login round trip cannot finish; the message says why and what to do (a 400)."""


@dataclass(frozen=True)
class Profile:
    """Who the provider says the user is."""

    user_id: str
    first_name: str | None
    last_name: str | None
    display_name: str | None
    email: str | None
    groups: list[str]


def _derive(salt: str, purpose: str, state: str) -> str:
    mac = hmac.new(salt.encode(), f"{purpose}:{state}".encode(), hashlib.sha256)
    return mac.hexdigest()  # 64 characters: a valid PKCE verifier (43 to 128)


def profile_from_claims(claims: dict[str, Any], groups_claim: str | None) -> Profile:
    """Read Unity's (firstname, surname) or the standard (given_name, family_name, name) claims."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise LoginFailed("the identity provider named no user (no `sub` claim)")
    first = _text(claims.get("firstname")) or _text(claims.get("given_name"))
    last = _text(claims.get("surname")) or _text(claims.get("family_name"))
    full = " ".join(p for p in (first, last) if p) or _text(claims.get("name"))
    raw_groups = claims.get(groups_claim) if groups_claim else None
    if isinstance(raw_groups, str):
        groups = [g for g in raw_groups.replace(",", " ").split() if g]
    elif isinstance(raw_groups, list):
        groups = [str(g) for g in raw_groups if isinstance(g, str | int)]
    else:
        groups = []
    return Profile(sub, first, last, full, _text(claims.get("email")), groups)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


class SingleSignOn:
    """The server's side of OIDC logins; one per server."""

    def __init__(self, config: AuthConfig, db: Database, oidc: OidcClient) -> None:
        self._config = config
        self._db = db
        self.oidc = oidc
        self._cache: dict[str, tuple[float, Identity]] = {}

    async def begin_login(self) -> tuple[str, str]:
        """Record a login attempt; return the provider URL to send the browser to, and the
        attempt's state (for the caller to bind to the browser)."""
        endpoints = await self.oidc.endpoints()
        state = secrets.token_urlsafe(32)
        salt = secrets.token_hex(32)
        now = datetime.now(UTC)
        async with self._db.write() as conn:
            await login_attempt_store.record_attempt(
                conn,
                state_hash=hashlib.sha256(state.encode()).hexdigest(),
                salt=salt,
                now=now,
                expires_at=now + timedelta(seconds=self._config.login_timeout_seconds),
            )
        url = self.oidc.authorization_url(
            endpoints,
            state=state,
            nonce=_derive(salt, "nonce", state),
            verifier=_derive(salt, "verifier", state),
        )
        return url, state

    async def finish_login(self, code: str, state: str) -> tuple[Profile, str, TokenRecord]:
        """Check the state (once), redeem the code, read the user; return a token of ours."""
        salt = await self._consume_state(state)
        tokens = await self._provider_call(
            self.oidc.exchange_code(code, _derive(salt, "verifier", state))
        )
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str):
            raise LoginFailed("the identity provider returned no access token")
        claims = await self._provider_call(self.oidc.userinfo(access_token))
        endpoints = await self.oidc.endpoints()
        id_token = tokens.get("id_token")
        if endpoints.issuer and isinstance(id_token, str):
            try:
                id_claims = await self.oidc.validate_jwt(
                    id_token, audience=self.oidc.client_id, nonce=_derive(salt, "nonce", state)
                )
            except TokenRejected as exc:
                raise LoginFailed(f"the ID token is not valid: {exc}") from None
            if id_claims["sub"] != claims.get("sub"):
                raise LoginFailed("the ID token and the user info name different users")
        profile = profile_from_claims(claims, self._config.groups_claim)
        token, record = await self._issue(profile, "sso login")
        return profile, token, record

    async def finish_device_login(
        self, device_code: str
    ) -> dict[str, Any] | tuple[Profile, str, TokenRecord]:
        """One poll of a device login: the provider's pending answer, or a token of ours."""
        answer = await self._provider_call(self.oidc.poll_device_token(device_code))
        error = answer.get("error")
        if error in ("authorization_pending", "slow_down"):
            return answer
        if error == "access_denied":
            raise LoginFailed("the login was refused at the identity provider")
        if error == "expired_token":
            raise LoginFailed("the device code has expired: run `waas login` again")
        if error:
            raise LoginFailed(f"the identity provider refused the device login: {error}")
        access_token = answer.get("access_token")
        if not isinstance(access_token, str):
            raise LoginFailed("the identity provider returned no access token")
        claims = await self._provider_call(self.oidc.userinfo(access_token))
        profile = profile_from_claims(claims, self._config.groups_claim)
        token, record = await self._issue(profile, "device login")
        return profile, token, record

    async def _issue(self, profile: Profile, description: str) -> tuple[str, TokenRecord]:
        async with self._db.write() as conn:
            await user_store.ensure_user(
                conn,
                profile.user_id,
                display_name=profile.display_name,
                email=profile.email,
                groups=profile.groups,
            )
        ttl = timedelta(seconds=self._config.session_duration)
        return await issue_token(self._db, profile.user_id, ttl, description)

    async def _consume_state(self, state: str) -> str:
        state_hash = hashlib.sha256(state.encode()).hexdigest()
        now = datetime.now(UTC)
        async with self._db.write() as conn:
            salt = await login_attempt_store.consume_attempt(conn, state_hash, now)
        if salt is None:
            raise LoginFailed(
                "this login link is unknown, expired or already used: start again at /auth/login"
            )
        return salt

    async def _provider_call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except TokenRejected as exc:
            raise LoginFailed(str(exc)) from None

    async def authenticate_provider_token(self, token: str) -> Identity:
        """Who holds one of the provider's access tokens (JWT or opaque); cached briefly."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        try:
            if looks_like_jwt(token):
                audience = self._config.provider_token_audience or self.oidc.client_id
                claims = await self.oidc.validate_jwt(token, audience=audience)
                expires = float(claims["exp"])
            else:
                claims, expires = await self._opaque_claims(token)
        except TokenRejected as exc:
            raise AuthenticationFailed(SESSION_EXPIRED if exc.expired else INVALID_TOKEN) from None
        profile = profile_from_claims(claims, self._config.groups_claim)
        identity = Identity(
            user_id=profile.user_id,
            display_name=profile.display_name,
            groups=frozenset(profile.groups),
        )
        lifetime = min(self._config.provider_token_cache_seconds, expires - time.time())
        if lifetime > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + lifetime, identity)
        return identity

    async def _opaque_claims(self, token: str) -> tuple[dict[str, Any], float]:
        endpoints = await self.oidc.endpoints()
        expires = time.time() + self._config.provider_token_cache_seconds
        if endpoints.introspection:
            info = await self.oidc.introspect(token)
            if not info.get("active"):
                raise TokenRejected("the provider says the token is not active", expired=True)
            if isinstance(info.get("exp"), int | float):
                expires = float(info["exp"])
        return await self.oidc.userinfo(token), expires


__all__ = ["LoginFailed", "Profile", "ProviderError", "SingleSignOn", "profile_from_claims"]
