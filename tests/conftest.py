"""Shared fixtures: a real `hpcwaas-api` process on the embedded default, and its tokens."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from hpcwaas.store import users
from hpcwaas.store.database import Database

pytest_plugins = [
    "tests.sso_support",
    "tests.cluster_support",
    "tests.openbao_support",
    "tests.http_files",
    "tests.image_service",
    "tests.pg_support",
    "tests.airflow_support",
]

# Property tests and fuzzing draw the same examples on every CI run, so a failure there
# reproduces; elsewhere they explore new ones each run.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")

BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under integration/ and e2e/ start real processes, as do those on the real
    PostgreSQL or OpenBao server (wherever they live): mark them so; those on OpenBao are
    marked ``vault`` too, those on the real Airflow ``dls``."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        uses_openbao = bool({"openbao", "make_openbao"} & fixtures)
        if uses_openbao:
            item.add_marker(pytest.mark.vault)
        uses_postgres = {"postgres", "postgres_url"} & fixtures
        if {"integration", "e2e"} & set(item.path.parts) or uses_postgres or uses_openbao:
            item.add_marker(pytest.mark.integration)
        if "airflow" in fixtures:
            item.add_marker(pytest.mark.dls)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """One `hpcwaas-api` process; `token(user)` issues a bearer token through the admin CLI.

    With ``tls`` (a client context trusting the server's CA), the server is expected to serve
    HTTPS (its `tls:` settings come from ``env`` or the config in ``extra_args``). With
    ``database_url`` (e.g. ``postgres.new_database()``), the server and its admin commands use
    that database instead of the SQLite file in ``data_dir``.
    """

    data_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    tls: ssl.SSLContext | None = None
    database_url: str | None = None

    @property
    def process_env(self) -> dict[str, str]:
        """The environment of the server and of its admin commands."""
        env = {**os.environ, **self.env}
        if self.database_url is not None:
            env["HPCWAAS_DATABASE_URL"] = self.database_url
        return env

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify`` for this server."""
        return self.tls if self.tls is not None else True

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-{self.port}-server.log"

    @property
    def pid(self) -> int | None:
        """The server process's ID while it runs."""
        return self.process.pid if self.process is not None else None

    def admin(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "hpcwaas-api"), "--data_dir", str(self.data_dir), *self.extra_args, *args],
            capture_output=True,
            text=True,
            input=input_text,
            env=self.process_env,
            timeout=60,
        )

    def token(self, user: str, ttl: str = "1h") -> str:
        result = self.admin("tokens", "issue", "--user", user, "--ttl", ttl)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def start(self) -> LiveServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(BIN / "hpcwaas-api"),
                "--data_dir",
                str(self.data_dir),
                "-l",
                f"127.0.0.1:{self.port}",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**self.process_env, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"hpcwaas-api exited with {self.process.returncode}:\n"
                    + self.log_path.read_text()
                )
            try:
                httpx.get(self.url + "/healthz", timeout=1, verify=self.verify).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            "hpcwaas-api did not answer /healthz within 30 s:\n" + self.log_path.read_text()
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            verify=self.verify,
        )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server shared by the tests of a session; tests keep apart by using their own users."""
    live = LiveServer(tmp_path_factory.mktemp("server") / "data", free_port()).start()
    yield live
    live.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of the test's own, for tests that restart it or change its data."""
    live = LiveServer(tmp_path / "data", free_port())
    yield live
    live.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite and once on the session's real PostgreSQL server:
    store tests that take it run on both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hpcwaas.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A database at the current schema holding the user ``alice``, on both backends."""
    database = Database(database_url)
    await database.prepare_schema()
    async with database.write() as conn:
        await users.ensure_user(conn, "alice")
    yield database
    await database.dispose()


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(server: LiveServer, user: str) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as this test's own user."""
    with server.client(server.token(user)) as client:
        yield client


def trigger(api: httpx.Client, workflow: str, **inputs: object) -> str:
    """Trigger ``workflow`` with ``inputs``; the new execution's ID."""
    response = api.post(f"/workflows/{workflow}", json={"inputs": inputs})
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def processes_of(execution_id: str) -> list[int]:
    """PIDs of live processes started for this execution (they carry its ID in their env)."""
    marker = f"HPCWAAS_EXECUTION_ID={execution_id}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                stat = (proc / "stat").read_text()
                if ") Z" not in stat:
                    pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def wait_for_status(
    client: httpx.Client, execution_id: str, statuses: set[str], timeout: float = 30
) -> dict[str, object]:
    """Poll an execution until its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/executions/{execution_id}").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_id} still {body.get('status')} after {timeout} s")


def wait_for_log(client: httpx.Client, execution_id: str, text: str, timeout: float = 30) -> int:
    """Poll an execution's logs until an entry holds ``text``; the entry count then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/executions/{execution_id}/logs", params={"timeout": "10ms"}).json()
        if any(text in entry["content"] for entry in body["logs"]):
            return int(body["total_results"])
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_id} logged no {text!r} in {timeout} s")


def post_login_form(
    client: httpx.Client, base_url: str, username: str, password: str, **kwargs: object
) -> httpx.Response:
    """Log in through the password form as a browser does: GET it (its CSRF token lands in a
    cookie and a hidden field), then POST it with the same client."""
    from tests.sso_support import parse_forms

    form = parse_forms(client.get(base_url + "/auth/login").text)[0]
    fields = {**form.fields, "username": username, "password": password}
    return client.post(base_url + "/auth/login", data=fields, **kwargs)  # type: ignore[arg-type]


ENVELOPE_ITEM_KEYS = frozenset({"id", "status", "title", "detail"})
# Additive to the original's envelope: which trigger input an error concerns.
OPTIONAL_ITEM_KEYS = frozenset({"source"})


def envelope_items(response: httpx.Response, status: int) -> list[dict[str, Any]]:
    """The items of an error response, after checking its status and the envelope's shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors"}, body
    items: list[dict[str, Any]] = body["errors"]
    assert items, body
    for item in items:
        assert ENVELOPE_ITEM_KEYS <= set(item) <= ENVELOPE_ITEM_KEYS | OPTIONAL_ITEM_KEYS, item
        assert item["status"] == status, item
    return items


def envelope_item(response: httpx.Response, status: int) -> dict[str, Any]:
    """The one item of an error response (see ``envelope_items``)."""
    [item] = envelope_items(response, status)
    return item
