"""Turns an Authorization header into an Identity, by the configured auth type."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time

from hpcwaas.auth.guard import CredentialGuard
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
# runs once per client and not on every request of a basic-auth session. Remembered per
# client address: a throttled address must not learn a password from the memory of another.
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
        self.guard = CredentialGuard(settings.auth.credential_limits, db)

    @property
    def accepts_basic(self) -> bool:
        return self._auth_type in ("basic", "local")

    async def authenticate(self, authorization: str | None, address: str) -> Identity:
        """The caller of a request from client ``address`` (see ``throttle.client_address``)."""
        if not authorization:
            raise AuthenticationFailed(AUTH_REQUIRED)
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and credentials:
            if credentials.startswith(TOKEN_PREFIX):
                return await self._check_token(credentials, address)
            if self._sso is not None:
                return await self._check_provider_token(self._sso, credentials, address)
            # Not a token of anyone's: a guess all the same, counted like an unknown one.
            self.guard.check_address(address)
            await self.guard.count_failure(address)
            raise AuthenticationFailed(INVALID_TOKEN)
        if scheme == "basic" and credentials and self.accepts_basic:
            user, password = _decode_basic(credentials)
            if await self._check_password(user, password, address):
                return Identity(user_id=user)
            raise AuthenticationFailed(AUTH_REQUIRED)
        raise AuthenticationFailed(INVALID_FORMAT)

    async def _check_token(self, token: str, address: str) -> Identity:
        # Looked up even from a throttled address: a lookup costs no more than the
        # throttling's own query, and a valid token of a neighbour behind the same address
        # (NAT, proxy) keeps working.
        token_hash = hash_token(token)
        identity = self._tokens.get(token_hash)
        if identity is None:
            try:
                identity = await authenticate_token(self._db, token)
            except AuthenticationFailed as exc:
                await self._count_failure(exc, address)
                raise
            self._tokens.put(token_hash, identity)
        return identity

    async def _check_provider_token(self, sso: SingleSignOn, token: str, address: str) -> Identity:
        # Checked before: a provider token may cost a call to the provider.
        self.guard.check_address(address)
        try:
            return await sso.authenticate_provider_token(token)
        except AuthenticationFailed as exc:
            await self._count_failure(exc, address)
            raise

    async def _count_failure(self, failure: AuthenticationFailed, address: str) -> None:
        """Count a token nobody issued against ``address``; an expired or revoked one was
        real, not a guess (a client still using it must not throttle its neighbours)."""
        if str(failure) == INVALID_TOKEN:
            await self.guard.count_failure(address)

    def forget_tokens(self) -> None:
        """Check every token against the database again: call after revoking any."""
        self._tokens.clear()

    async def _check_password(self, user: str, password: str, address: str) -> bool:
        key = hashlib.sha256(f"{user}\0{password}\0{address}".encode()).hexdigest()
        if self._verified.get(key, 0.0) > time.monotonic():
            return True
        ok = await self.guard.check_password(
            address, user, lambda: self._verify_password(user, password)
        )
        if ok:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = time.monotonic() + _PASSWORD_CACHE_SECONDS
        return ok

    async def _verify_password(self, user: str, password: str) -> bool:
        if self._auth_type == "basic":
            stored = self._accounts.get(user)
        else:
            async with self._db.read() as conn:
                stored = await user_store.get_password_hash(conn, user)
        # An unknown user is checked too (against a dummy hash): it takes as long.
        return await asyncio.to_thread(verify_password, stored, password)

    async def verify_login(self, user: str, password: str, address: str) -> bool:
        """Check a login form's credentials (local accounts, or configured basic accounts)."""
        return await self._check_password(user, password, address)


def _decode_basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed(INVALID_FORMAT) from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise AuthenticationFailed(INVALID_FORMAT)
    return user, password
