"""The HashiCorp Vault key store: KV v2 under the ``secret`` mount, AppRole login, as the original.

A key pair lives at ``secret/data/ssh-credentials/<key id>`` with the fields ``privateKey``,
``publicKey`` and the key's metadata, so a Vault that the original service filled works as it is.

Before its first call, the store checks that ``secret/`` holds KV version 2. hvac is
synchronous: every call runs in a worker thread. The client token is renewed (``renew-self``)
before its TTL ends, by a background task and before any call that finds it due; when renewal
fails, or Vault answers 403 (token expired or revoked), the store logs in again once and
retries once. A wrapped secret ID is unwrapped at the first login only (a
wrapping token works once) and the secret ID it held is kept in memory for later logins.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import hvac  # type: ignore[import-untyped]
import hvac.exceptions  # type: ignore[import-untyped]
import requests

from hpcwaas.secrets.base import KeyStoreUnavailable
from hpcwaas.settings import ConfigError, VaultConfig

log = logging.getLogger(__name__)

MOUNT_POINT = "secret"

T = TypeVar("T")

_STATUS_OF = {
    hvac.exceptions.InvalidRequest: 400,
    hvac.exceptions.Unauthorized: 401,
    hvac.exceptions.Forbidden: 403,
    hvac.exceptions.InvalidPath: 404,
    hvac.exceptions.RateLimitExceeded: 429,
    hvac.exceptions.InternalServerError: 500,
    hvac.exceptions.VaultNotInitialized: 501,
    hvac.exceptions.BadGateway: 502,
    hvac.exceptions.VaultDown: 503,
}
_DENIED = (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)


def _status(exc: Exception) -> str:
    code = _STATUS_OF.get(type(exc))
    return f"HTTP {code}" if code else "an unexpected HTTP status"


class VaultKeyStore:
    """Secrets by path in Vault's KV v2 engine, reached with an AppRole."""

    def __init__(
        self,
        config: VaultConfig,
        *,
        timeout: float = 10.0,
        renew_fraction: float = 2 / 3,
        retry_seconds: float = 5.0,
    ) -> None:
        if config.role_id is None or config.secret_id is None:
            raise ConfigError(
                "vault_config: role_id and secret_id are required (the key store logs in to "
                "Vault with an AppRole); remove vault_config to use the embedded key store"
            )
        self._address = config.address.rstrip("/")
        self._timeout = timeout
        self._renew_fraction = renew_fraction
        self._retry_seconds = retry_seconds
        self._role_id = config.role_id.get_secret_value()
        # Exactly one of these two is set: the secret ID, or the token that wraps it.
        self._secret_id: str | None = None
        self._wrapping_token: str | None = None
        if config.is_secret_wrapped:
            self._wrapping_token = config.secret_id.get_secret_value()
        else:
            self._secret_id = config.secret_id.get_secret_value()
        # token="" so that hvac does not pick up VAULT_TOKEN or ~/.vault-token: we log in.
        self._client = hvac.Client(url=self._address, token="", timeout=timeout)
        self._auth_lock = threading.Lock()
        self._generation = 0  # counts logins, so concurrent 403s cause a single re-login
        self._has_token = False
        self._renewable = False
        self._expires_at: float | None = None  # monotonic; None: the token does not expire
        self._renew_at: float | None = None
        self._granted = 0.0  # the TTL granted at login
        self._layout_checked = False  # KV version 2 found at secret/
        self._keeper: asyncio.Task[None] | None = None
        self._keeper_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"VaultKeyStore(address={self._address!r})"

    @property
    def address(self) -> str:
        return self._address

    # --- the KeyStore interface ---------------------------------------------------------

    async def put(self, path: str, data: dict[str, str]) -> None:
        kv, where = self._client.secrets.kv.v2, _checked(path)
        await self._call(
            lambda: kv.create_or_update_secret(
                path=where, secret=dict(data), mount_point=MOUNT_POINT
            ),
            needs=f"create and update on {_policy_path('data', where)}",
        )

    async def get(self, path: str) -> dict[str, str] | None:
        kv, where = self._client.secrets.kv.v2, _checked(path)

        def read() -> dict[str, str] | None:
            try:
                answer = kv.read_secret_version(
                    path=where, mount_point=MOUNT_POINT, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:  # never written, deleted, or destroyed
                return None
            fields = (answer.get("data") or {}).get("data") or {}
            # The original stores metadata values as JSON values; ours are strings.
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}

        return await self._call(read, needs=f"read on {_policy_path('data', where)}")

    async def delete(self, path: str) -> None:
        """Delete every version and the metadata, so that no old private key lingers."""
        kv, where = self._client.secrets.kv.v2, _checked(path)

        def remove() -> None:
            try:
                kv.delete_metadata_and_all_versions(path=where, mount_point=MOUNT_POINT)
            except hvac.exceptions.InvalidPath:
                pass

        await self._call(remove, needs=f"delete on {_policy_path('metadata', where)}")

    # --- readiness and shutdown ---------------------------------------------------------

    async def check(self) -> None:
        """Raise KeyStoreUnavailable unless Vault answers and accepts our token."""
        await self._call(
            lambda: self._client.auth.token.lookup_self(),
            needs="read on auth/token/lookup-self (Vault's default policy grants it)",
        )

    async def aclose(self) -> None:
        """Stop renewing the token and close the HTTP session."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None and not keeper.done() and self._keeper_loop is _running_loop():
            keeper.cancel()
            try:
                await keeper
            except asyncio.CancelledError:
                pass
        self._client.adapter.close()

    # --- calls, tokens and errors ---------------------------------------------------------

    async def _call(self, operation: Callable[[], T], *, needs: str) -> T:
        """Run one hvac call in a worker thread; ``needs`` is what the AppRole's policy must
        grant for it, named in the error if Vault still denies it after a fresh login."""
        self._ensure_keeper()
        return await asyncio.to_thread(self._run, operation, needs)

    def _run(self, operation: Callable[[], T], needs: str) -> T:
        with self._translated():
            self._ensure_token()
            self._ensure_layout()
            generation = self._generation
            try:
                return operation()
            except _DENIED:
                # Expired or revoked token (or a policy that does not allow this): log in
                # again, once, and retry once.
                log.info("vault: permission denied; logging in again to %s", self._address)
                self._login_again(generation)
            try:
                return operation()
            except _DENIED:
                raise KeyStoreUnavailable(
                    f"Vault at {self._address} denied access with a fresh AppRole token: "
                    f"its policy must allow {needs}"
                ) from None

    def _translated(self) -> _Translation:
        return _Translation(self._address, self._timeout)

    def _ensure_token(self) -> None:
        """Log in when there is no token; renew (or log in) when its renewal time has come."""
        with self._auth_lock:
            if not self._has_token:
                self._login()
                return
            now = time.monotonic()
            if self._renew_at is None or now < self._renew_at:
                return
            expired = self._expires_at is not None and now >= self._expires_at
            if self._renewable and not expired:
                try:
                    self._renew()
                    return
                except hvac.exceptions.VaultError as exc:
                    # Vault (and OpenBao) answer 500 "past the max TTL, cannot renew" near
                    # the max TTL, 403 for a revoked token: a login settles both.
                    log.info("vault: token renewal refused (%s); logging in again", _status(exc))
            self._login()

    def _ensure_layout(self) -> None:
        """Refuse a Vault without KV version 2 at ``secret/`` before anything is written there
        (version 1 would take the writes at other paths). Asked once, as ``vault kv`` does, on
        a path that Vault's default policy lets every token read."""
        if self._layout_checked:
            return
        where, mount = (
            f"Vault at {self._address}",
            f"vault secrets enable -path={MOUNT_POINT} kv-v2",
        )
        try:
            answer = self._client.read(f"sys/internal/ui/mounts/{MOUNT_POINT}")
        except _DENIED:
            raise KeyStoreUnavailable(
                f"{where} shows the AppRole no secrets engine at {MOUNT_POINT}/: either its "
                f"policy grants nothing under {MOUNT_POINT}/ (it needs the key paths, e.g. "
                f"create, update, read and delete on {MOUNT_POINT}/data/ssh-credentials/*), "
                f"or nothing is mounted there ({mount})"
            ) from None
        engine = (answer.get("data") or {}) if isinstance(answer, dict) else {}
        kind, version = engine.get("type"), str((engine.get("options") or {}).get("version") or 1)
        if kind != "kv" or version != "2":
            found = f"KV version {version}" if kind == "kv" else f"a {kind!r} engine"
            raise KeyStoreUnavailable(
                f"{where} has {found} at {MOUNT_POINT}/, where the keys need KV version 2 "
                f"(the original's layout): mount it there ({mount})"
            )
        self._layout_checked = True

    def _login_again(self, generation: int) -> None:
        with self._auth_lock:
            if self._generation == generation:  # nobody logged in since the 403
                self._login()

    def _login(self) -> None:
        secret_id = self._unwrapped_secret_id()
        self._client.token = ""  # an expired token must not ride along with the login
        try:
            answer = self._client.auth.approle.login(
                role_id=self._role_id, secret_id=secret_id, use_token=True
            )
        except (*_DENIED, hvac.exceptions.InvalidRequest) as exc:
            self._has_token = False
            raise KeyStoreUnavailable(
                f"Vault at {self._address} refused the AppRole login ({_status(exc)}): check "
                "vault_config.role_id and vault_config.secret_id (a secret ID can expire or "
                "run out of uses)"
            ) from None
        self._apply(answer["auth"], renewed=False)
        self._generation += 1
        log.info(
            "vault: logged in to %s with AppRole (token TTL %s s)",
            self._address,
            answer["auth"].get("lease_duration", 0),
        )

    def _renew(self) -> None:
        answer = self._client.auth.token.renew_self()
        self._apply(answer["auth"], renewed=True)
        log.debug("vault: token renewed (TTL %s s)", answer["auth"].get("lease_duration", 0))

    def _apply(self, auth: dict[str, Any], *, renewed: bool) -> None:
        if not renewed:
            self._client.token = auth["client_token"]
        lease = float(auth.get("lease_duration") or 0)
        now = time.monotonic()
        self._has_token = True
        self._renewable = bool(auth.get("renewable"))
        if not renewed:
            self._granted = lease
        if lease <= 0 and renewed:  # nothing left to renew: log in at the next call
            self._renewable = False
            self._expires_at = self._renew_at = now
            return
        if lease <= 0:  # a token without expiry
            self._expires_at = self._renew_at = None
            return
        self._expires_at = now + lease
        self._renew_at = now + lease * self._renew_fraction
        if renewed and lease < self._granted / 2:
            # Near its max TTL Vault grants less and less: log in afresh at renewal time.
            self._renewable = False

    def _unwrapped_secret_id(self) -> str:
        if self._secret_id is not None:
            return self._secret_id
        wrapping_token = self._wrapping_token
        if wrapping_token is None:  # cannot happen: __init__ sets one of the two
            raise RuntimeError("neither a secret ID nor a wrapping token")
        # As Vault's own AppRole helper does: the wrapping token is the request's token.
        unwrapper = hvac.Client(url=self._address, token=wrapping_token, timeout=self._timeout)
        try:
            answer = unwrapper.sys.unwrap()
        except (*_DENIED, hvac.exceptions.InvalidRequest) as exc:
            raise KeyStoreUnavailable(
                f"Vault at {self._address} refused to unwrap vault_config.secret_id "
                f"({_status(exc)}): a wrapping token can be unwrapped only once and expires; "
                "put a fresh one in the config, or set is_secret_wrapped: false for a plain "
                "secret ID"
            ) from None
        finally:
            unwrapper.adapter.close()
        secret_id = (
            (answer.get("data") or {}).get("secret_id") if isinstance(answer, dict) else None
        )
        if not isinstance(secret_id, str) or not secret_id:
            raise KeyStoreUnavailable(
                f"the wrapping token in vault_config.secret_id does not wrap an AppRole secret "
                f"ID (Vault at {self._address})"
            )
        self._secret_id, self._wrapping_token = secret_id, None
        log.info("vault: unwrapped the AppRole secret ID")
        return secret_id

    # --- background renewal ---------------------------------------------------------------

    def _ensure_keeper(self) -> None:
        loop = asyncio.get_running_loop()
        if self._keeper is not None and not self._keeper.done() and self._keeper_loop is loop:
            return
        self._keeper_loop = loop
        self._keeper = loop.create_task(self._keep_alive(), name="vault-token-renewal")

    async def _keep_alive(self) -> None:
        """Renew the token before it expires even when no request comes, as Vault's watcher."""
        while True:
            await asyncio.sleep(self._seconds_to_renewal())
            if not self._has_token or self._renew_at is None:
                continue
            if time.monotonic() < self._renew_at:
                continue
            try:
                await asyncio.to_thread(self._keep_token)
            except KeyStoreUnavailable as exc:
                log.warning("vault: cannot renew the token: %s", exc)
                await asyncio.sleep(self._retry_seconds)

    def _keep_token(self) -> None:
        with self._translated():
            self._ensure_token()

    def _seconds_to_renewal(self) -> float:
        if not self._has_token:
            return 1.0  # a login is on its way (the keeper starts with the first call)
        if self._renew_at is None:
            return 30.0
        # Capped, so that a token obtained while asleep (a new login) is looked at soon.
        return min(max(self._renew_at - time.monotonic(), 0.0), 30.0)


class _Translation:
    """Turns transport failures and Vault's 5xx into KeyStoreUnavailable, naming no secret."""

    def __init__(self, address: str, timeout: float) -> None:
        self._address = address
        self._timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        if exc is None or isinstance(exc, KeyStoreUnavailable):
            return
        where = f"Vault at {self._address}"
        if isinstance(exc, requests.exceptions.Timeout):
            raise KeyStoreUnavailable(
                f"{where} did not answer within {self._timeout:g} s"
            ) from None
        if isinstance(exc, requests.exceptions.ConnectionError):
            raise KeyStoreUnavailable(f"{where} cannot be reached (connection failed)") from None
        if isinstance(exc, requests.exceptions.RequestException):
            raise KeyStoreUnavailable(f"{where}: request failed ({type(exc).__name__})") from None
        if isinstance(exc, hvac.exceptions.VaultDown):
            raise KeyStoreUnavailable(f"{where} is sealed or unavailable (HTTP 503)") from None
        if isinstance(exc, hvac.exceptions.VaultError):
            raise KeyStoreUnavailable(f"{where} answered {_status(exc)}") from None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _policy_path(kind: str, path: str) -> str:
    """The policy path that grants a call on ``path`` of the KV v2 mount: its directory
    (``secret/data/ssh-credentials/*``), or the path itself when it has no directory."""
    directory, _, _ = path.rpartition("/")
    return f"{MOUNT_POINT}/{kind}/{directory}/*" if directory else f"{MOUNT_POINT}/{kind}/{path}"


def _checked(path: str) -> str:
    """A relative KV path without empty or dot segments (they would reach other secrets)."""
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid key store path {path!r}")
    return path
