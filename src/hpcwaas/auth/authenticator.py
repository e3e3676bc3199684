"""Turns an Authorization header into an Identity, by the configured auth type."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time

from hpcwaas.auth.identity import (
    AUTH_REQUIRED,
    INVALID_FORMAT,
    INVALID_TOKEN,
    AuthenticationFailed,
    Identity,
)
from hpcwaas.auth.passwords import verify_password
from hpcwaas.auth.sso import SingleSignOn
from hpcwaas.auth.token_cache import TokenCache
from hpcwaas.auth.tokens import TOKEN_PREFIX, authenticate_token, hash_token
from hpcwaas.settings import Settings
from hpcwaas.store import users as user_store
from hpcwaas.store.database import Database

# A verified password is remembered this long, so that argon2 (slow on purpose)
# runs once per client and not on every request of a basic-auth session.
_PASSWORD_CACHE_SECONDS = 60.0


def challenge_for(auth_type: str) -> str:
    """The WWW-Authenticate header value of a 401 under this auth type."""
    if auth_type in ("basic", "local"):
        return 'Bearer realm="hpcwaas", Basic realm="hpcwaas"'
    return 'Bearer realm="hpcwaas"'


class Authenticator:
    """Bearer tokens in every mode; basic credentials from the config (basic) or the DB (local)."""

    def __init__(self, settings: Settings, db: Database, sso: SingleSignOn | None = None) -> None:
        self._db = db
        self._sso = sso if settings.auth.accept_provider_tokens else None
        self._auth_type = settings.auth.auth_type
        self._accounts = {
            a.username: a.password.get_secret_value() for a in settings.auth.basic_auth.accounts
        }
        self._verified: dict[str, float] = {}
        self._tokens = TokenCache(settings.auth.token_cache_seconds)

    @property
    def accepts_basic(self) -> bool:
        return self._auth_type in ("basic", "local")

    async def authenticate(self, authorization: str | None) -> Identity:
        if not authorization:
            raise AuthenticationFailed(AUTH_REQUIRED)
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and credentials:
            if credentials.startswith(TOKEN_PREFIX):
                return await self._check_token(credentials)
            if self._sso is not None:
                return await self._sso.authenticate_provider_token(credentials)
            raise AuthenticationFailed(INVALID_TOKEN)
        if scheme == "basic" and credentials and self.accepts_basic:
            user, password = _decode_basic(credentials)
            if await self._check_password(user, password):
                return Identity(user_id=user)
            raise AuthenticationFailed(AUTH_REQUIRED)
        raise AuthenticationFailed(INVALID_FORMAT)

    async def _check_token(self, token: str) -> Identity:
        token_hash = hash_token(token)
        identity = self._tokens.get(token_hash)
        if identity is None:
            identity = await authenticate_token(self._db, token)
            self._tokens.put(token_hash, identity)
        return identity

    def forget_tokens(self) -> None:
        """Check every token against the database again: call after revoking any."""
        self._tokens.clear()

    async def _check_password(self, user: str, password: str) -> bool:
        key = hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()
        now = time.monotonic()
        if self._verified.get(key, 0.0) > now:
            return True
        if self._auth_type == "basic":
            stored = self._accounts.get(user)
        else:
            async with self._db.read() as conn:
                stored = await user_store.get_password_hash(conn, user)
        if stored is None:
            return False
        ok = await asyncio.to_thread(verify_password, stored, password)
        if ok:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = now + _PASSWORD_CACHE_SECONDS
        return ok

    async def verify_login(self, user: str, password: str) -> bool:
        """Check a login form's credentials (local accounts, or configured basic accounts)."""
        return await self._check_password(user, password)


def _decode_basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed(INVALID_FORMAT) from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise AuthenticationFailed(INVALID_FORMAT)
    return user, password
