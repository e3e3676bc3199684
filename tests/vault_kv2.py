"""A small HashiCorp Vault stand-in for the tests: KV v2, AppRole, token renewal, wrapping.

Vault (and OpenBao) cannot be installed on these machines, so the Vault key store is tested
against this server. It follows Vault's documented HTTP API as far as hvac uses it:

- ``POST /v1/auth/approle/login`` (``role_id``, ``secret_id``) -> ``auth.client_token`` with
  ``lease_duration`` and ``renewable``; a wrong pair is a 400 ``invalid role or secret ID``;
- ``POST /v1/auth/token/renew-self``, ``GET /v1/auth/token/lookup-self``,
  ``POST /v1/auth/token/revoke-self``;
- ``POST /v1/sys/wrapping/unwrap`` (wrapping token as ``X-Vault-Token`` or as ``token`` in
  the body; each works once), ``GET /v1/sys/health``;
- ``GET/POST/PUT/DELETE /v1/secret/data/<path>`` (KV v2 versions, ``?version=``,
  ``options.cas``; DELETE soft-deletes the latest version) and
  ``GET/DELETE /v1/secret/metadata/<path>`` (DELETE removes every version).

Every other call needs ``X-Vault-Token``: a missing, unknown, expired or revoked token is a
403 ``permission denied``, as is a path the policy does not grant (by default create, read,
update and delete on ``secret/data/ssh-credentials/*``, read and delete on
``secret/metadata/ssh-credentials/*``). ``stop()`` closes the port (connection refused) and
``fail_with(503)`` makes every answer an error, to simulate outages.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hpcwaas.settings import VaultConfig

DEFAULT_CAPABILITIES = {
    "secret/data/ssh-credentials/*": {"create", "read", "update", "delete"},
    "secret/metadata/ssh-credentials/*": {"read", "delete"},
}


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Token:
    id: str
    accessor: str
    ttl: float
    expires_at: float  # monotonic
    max_expires_at: float
    renewable: bool = True


@dataclass
class _Version:
    data: dict[str, Any] | None
    created_time: str
    deletion_time: str = ""
    destroyed: bool = False


@dataclass
class _Secret:
    versions: dict[int, _Version] = field(default_factory=dict)
    current: int = 0


class VaultError(Exception):
    def __init__(self, status: int, *errors: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body if body is not None else {"errors": list(errors)}


class FakeVault:
    """The server's state, its switches, and what tests look at."""

    def __init__(self, *, token_ttl: float = 3600, token_max_ttl: float = 86400) -> None:
        self.role_id = str(uuid.uuid4())
        self.secret_id = str(uuid.uuid4())
        self.token_ttl = token_ttl
        self.token_max_ttl = token_max_ttl
        self.capabilities: dict[str, set[str]] = {
            k: set(v) for k, v in DEFAULT_CAPABILITIES.items()
        }
        # "login", "renew", "unwrap", "lookup", and "denied" (403s given)
        self.counts: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self._secret_ids = {self.secret_id}
        self._tokens: dict[str, _Token] = {}
        self._wrapped: dict[str, dict[str, Any]] = {}
        self._kv: dict[str, _Secret] = {}
        self._fail_status: int | None = None
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- what the fixture offers ----------------------------------------------------------

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, *, wrapped: bool = False) -> VaultConfig:
        """A vault_config for this server; ``wrapped`` puts a fresh wrapping token in it."""
        secret = self.wrap(self.secret_id) if wrapped else self.secret_id
        return VaultConfig(
            address=self.address,
            role_id=self.role_id,
            secret_id=secret,
            is_secret_wrapped=wrapped,
        )

    def config_section(self, *, wrapped: bool = False) -> dict[str, Any]:
        """The ``vault_config:`` section of a server's YAML config for this server."""
        config = self.config(wrapped=wrapped)
        assert config.role_id is not None and config.secret_id is not None
        return {
            "address": config.address,
            "role_id": config.role_id.get_secret_value(),
            "secret_id": config.secret_id.get_secret_value(),
            "is_secret_wrapped": wrapped,
        }

    def wrap(self, secret_id: str | None = None) -> str:
        """A single-use wrapping token around an AppRole secret ID (as ``-wrap-ttl`` makes)."""
        token = "hvs.wrap." + secrets.token_urlsafe(16)
        with self._lock:
            self._wrapped[token] = {
                "secret_id": secret_id or self.secret_id,
                "secret_id_accessor": str(uuid.uuid4()),
                "secret_id_ttl": 0,
                "secret_id_num_uses": 0,
            }
        return token

    def stored(self, path: str) -> dict[str, Any]:
        """What Vault answers to a read of ``secret/data/<path>`` (``data`` of the response).

        ``path`` may be given as the original names it (``secret/data/ssh-credentials/<id>``)
        or relative to the mount's data (``ssh-credentials/<id>``). KeyError if nothing is
        readable there.
        """
        relative = path.removeprefix("/").removeprefix("v1/").removeprefix("secret/data/")
        with self._lock:
            entry = self._kv.get(relative)
            if entry is None or entry.current == 0:
                raise KeyError(path)
            version = entry.versions[entry.current]
            if version.data is None or version.deletion_time:
                raise KeyError(path)
            return {"data": dict(version.data), "metadata": self._version_metadata(entry)}

    def paths(self) -> list[str]:
        """Every path that has metadata (any version, even deleted ones)."""
        with self._lock:
            return sorted(self._kv)

    def versions(self, path: str) -> int:
        """How many versions Vault keeps at ``path`` (0 when its metadata is gone)."""
        with self._lock:
            entry = self._kv.get(path.removeprefix("secret/data/"))
            return 0 if entry is None else len(entry.versions)

    def revoke_all_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def fail_with(self, status: int | None) -> None:
        """Answer every request with this status (503: sealed/standby), or None to recover."""
        self._fail_status = status

    def start(self) -> FakeVault:
        """Listen (again) on the same port; the stored state survives stop()/start()."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.daemon_threads = True
        httpd.vault = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port: clients then get connection refused."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the API --------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], token: str, body: Any
    ) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self.requests.append((method, path))
            if self._fail_status is not None:
                message = "Vault is sealed" if self._fail_status == 503 else "internal error"
                raise VaultError(self._fail_status, message)
            if not path.startswith("/v1/"):
                raise VaultError(404)
            api_path = path[len("/v1/") :]
            if (method, api_path) == ("POST", "auth/approle/login"):
                return 200, self._login(body)
            if (method, api_path) == ("POST", "sys/wrapping/unwrap"):
                return 200, self._unwrap(token, body)
            if (method, api_path) == ("GET", "sys/health"):
                return 200, {"initialized": True, "sealed": False, "standby": False}
            client = self._valid_token(token)
            if (method, api_path) == ("POST", "auth/token/renew-self"):
                return 200, self._renew(client)
            if (method, api_path) == ("GET", "auth/token/lookup-self"):
                self.counts["lookup"] += 1
                ttl = max(0, int(client.expires_at - time.monotonic()))
                return 200, self._response(
                    data={"accessor": client.accessor, "ttl": ttl, "renewable": True}
                )
            if (method, api_path) == ("POST", "auth/token/revoke-self"):
                self._tokens.pop(client.id, None)
                return 204, None
            if api_path.startswith("secret/data/"):
                return self._kv_data(method, api_path, query, body)
            if api_path.startswith("secret/metadata/"):
                return self._kv_metadata(method, api_path)
            raise VaultError(403, "permission denied")

    def _login(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise VaultError(400, "missing role_id")
        if body.get("role_id") != self.role_id or body.get("secret_id") not in self._secret_ids:
            raise VaultError(400, "invalid role or secret ID")
        self.counts["login"] += 1
        now = time.monotonic()
        token = _Token(
            id="hvs." + secrets.token_urlsafe(24),
            accessor=str(uuid.uuid4()),
            ttl=self.token_ttl,
            expires_at=now + self.token_ttl,
            max_expires_at=now + self.token_max_ttl,
        )
        self._tokens[token.id] = token
        return self._response(auth=self._auth(token, min(self.token_ttl, self.token_max_ttl)))

    def _renew(self, token: _Token) -> dict[str, Any]:
        self.counts["renew"] += 1
        now = time.monotonic()
        lease = min(token.ttl, token.max_expires_at - now)
        token.expires_at = now + lease
        return self._response(auth=self._auth(token, lease))

    def _unwrap(self, header_token: str, body: Any) -> dict[str, Any]:
        wrapping = body.get("token") if isinstance(body, dict) and body.get("token") else None
        wrapping = wrapping or header_token
        data = self._wrapped.pop(wrapping, None)
        if data is None:
            raise VaultError(400, "wrapping token is not valid or does not exist")
        self.counts["unwrap"] += 1
        return self._response(data=data)

    def _valid_token(self, token: str) -> _Token:
        found = self._tokens.get(token)
        if found is None or time.monotonic() >= found.expires_at:
            self._tokens.pop(token, None)
            self.counts["denied"] += 1
            raise VaultError(403, "permission denied")
        return found

    def _allowed(self, api_path: str, capability: str) -> None:
        for pattern, granted in self.capabilities.items():
            matches = (
                api_path.startswith(pattern[:-1]) if pattern.endswith("*") else api_path == pattern
            )
            if matches and capability in granted:
                return
        self.counts["denied"] += 1
        raise VaultError(403, "1 error occurred:\n\t* permission denied\n\n")

    def _kv_data(
        self, method: str, api_path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, dict[str, Any] | None]:
        relative = api_path[len("secret/data/") :]
        entry = self._kv.get(relative)
        if method == "GET":
            self._allowed(api_path, "read")
            if entry is None or entry.current == 0:
                raise VaultError(404)
            number = int(query["version"][0]) if "version" in query else entry.current
            version = entry.versions.get(number)
            if version is None:
                raise VaultError(404)
            metadata = self._version_metadata(entry, number)
            if version.data is None or version.deletion_time or version.destroyed:
                raise VaultError(404, body={"data": {"data": None, "metadata": metadata}})
            return 200, self._response(data={"data": version.data, "metadata": metadata})
        if method in ("POST", "PUT"):
            self._allowed(api_path, "update" if entry is not None else "create")
            if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
                raise VaultError(400, "no data provided")
            cas = (body.get("options") or {}).get("cas")
            current = entry.current if entry is not None else 0
            if cas is not None and cas != current:
                raise VaultError(400, "check-and-set parameter did not match the current version")
            entry = self._kv.setdefault(relative, _Secret())
            entry.current += 1
            entry.versions[entry.current] = _Version(dict(body["data"]), _now_rfc3339())
            return 200, self._response(data=self._version_metadata(entry))
        if method == "DELETE":
            self._allowed(api_path, "delete")
            if entry is not None and entry.current:
                entry.versions[entry.current].deletion_time = _now_rfc3339()
            return 204, None
        raise VaultError(405)

    def _kv_metadata(self, method: str, api_path: str) -> tuple[int, dict[str, Any] | None]:
        relative = api_path[len("secret/metadata/") :]
        if method == "DELETE":
            self._allowed(api_path, "delete")
            self._kv.pop(relative, None)
            return 204, None
        if method == "GET":
            self._allowed(api_path, "read")
            entry = self._kv.get(relative)
            if entry is None:
                raise VaultError(404)
            versions = {str(n): self._version_metadata(entry, n) for n in entry.versions}
            return 200, self._response(
                data={"current_version": entry.current, "versions": versions}
            )
        raise VaultError(405)

    @staticmethod
    def _version_metadata(entry: _Secret, number: int | None = None) -> dict[str, Any]:
        number = number or entry.current
        version = entry.versions[number]
        return {
            "created_time": version.created_time,
            "custom_metadata": None,
            "deletion_time": version.deletion_time,
            "destroyed": version.destroyed,
            "version": number,
        }

    @staticmethod
    def _auth(token: _Token, lease: float) -> dict[str, Any]:
        return {
            "client_token": token.id,
            "accessor": token.accessor,
            "policies": ["default", "hpcwaas"],
            "token_policies": ["default", "hpcwaas"],
            "metadata": {"role_name": "hpcwaas"},
            "lease_duration": max(0, int(lease)),  # whole seconds, rounded down as Vault does
            "renewable": token.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
        }

    @staticmethod
    def _response(
        *, data: dict[str, Any] | None = None, auth: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": auth,
        }


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so stop() leaves no connection being served.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        vault: FakeVault = self.server.vault  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, {"errors": ["failed to parse JSON input"]})
            return
        token = self.headers.get("X-Vault-Token", "")
        try:
            status, payload = vault.handle(self.command, url.path, parse_qs(url.query), token, body)
        except VaultError as exc:
            status, payload = exc.status, exc.body
        self._send(status, payload)

    def _send(self, status: int, payload: dict[str, Any] | None) -> None:
        data = b"" if payload is None or status == 204 else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


@pytest.fixture
def vault_server() -> Iterator[FakeVault]:
    """A KV v2 server of this test's own, started; stopped at the end of the test."""
    vault = FakeVault().start()
    yield vault
    vault.stop()
