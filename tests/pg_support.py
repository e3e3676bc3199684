"""A real throwaway PostgreSQL 15 cluster on the loopback, for the tests that need PostgreSQL.

tests/conftest.py loads this module as a plugin. scripts/install-test-deps.sh installs
Debian's ``postgresql-15``; the fixture runs its binaries from /usr/lib/postgresql/15/bin
(not on PATH). It never skips: missing binaries, or a server that does not come up, fail the
tests that use it with the server's log.

Fixtures
--------
``postgres -> Postgres`` (session)
    ``initdb`` in a new directory under the system temp dir owned by the ``postgres`` account
    (``initdb`` refuses root), then ``pg_ctl start`` on a free port of 127.0.0.1, with its Unix
    socket in that directory and ``fsync=off``. The role ``hpcwaas`` logs in over TCP with a
    password (``scram-sha-256`` in pg_hba.conf); the superuser ``postgres`` only through the
    socket (peer). Stopped and its directory removed at the end of the session.
``postgres_url -> str`` (function)
    ``postgres.new_database()``: the URL of a fresh empty database owned by ``hpcwaas``.

``Postgres``: ``.port``, ``.password``, ``.new_database() -> str`` (a
``postgresql+asyncpg://hpcwaas:...@127.0.0.1:PORT/NAME`` URL), ``.psql(sql, database=)``
(runs SQL as the superuser, returns its unaligned output), ``.stop()`` / ``.start()`` /
``.restart()`` (same port and data: for outage tests), ``.log_path``.

Tests that use these fixtures are marked ``integration`` (tests/conftest.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROLE = "hpcwaas"
START_TIMEOUT = 30
ROOT_PREFIX = "hpcwaas-pg-"
OWNER_FILE = "owner.pid"
INSTALL_HINT = (
    "scripts/install-test-deps.sh installs it: apt-get install --no-install-recommends "
    "postgresql-15"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_abandoned_servers() -> None:
    """Stop the servers of earlier test sessions that were killed before their teardown
    (their owner.pid names a process that is gone), and remove their directories."""
    for root in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if Path(f"/proc/{owner}").exists():
            continue
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


class Postgres:
    """One PostgreSQL server of the test session: its own data directory, port and role."""

    def __init__(self) -> None:
        missing = [
            tool for tool in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / tool).exists()
        ]
        if missing:
            pytest.fail(
                f"PostgreSQL 15 is not installed (no {', '.join(missing)} in {PG_BIN}): "
                + INSTALL_HINT
            )
        _stop_abandoned_servers()
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        # Which test session owns this server: a later session stops it if that one was killed.
        (self.root / OWNER_FILE).write_text(str(os.getpid()))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18)
        self._as_root = os.geteuid() == 0
        if self._as_root:
            # The server runs as `postgres`: it must own its directory and reach it.
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    # -------------------------------------------------------------------------- commands

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_root else list(args)

    def _run(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd(*args),
            capture_output=True,
            text=True,
            input=input_text,
            timeout=60,
            cwd=self.root,
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser through the Unix socket; its unaligned output."""
        result = self._run(
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            input_text=sql,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr}")
        return result.stdout

    # ------------------------------------------------------------------------- lifecycle

    def init(self) -> None:
        """initdb, pg_hba.conf for password logins over TCP, start, create the role."""
        result = self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
        )
        if result.returncode != 0:
            pytest.fail(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        hba = (
            "# Written by hpcwaas tests/pg_support.py\n"
            "local all postgres peer\n"
            f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
        )
        (self.data / "pg_hba.conf").write_text(hba)
        self.start()
        escaped = self.password.replace("'", "''")
        self.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{escaped}';")

    def start(self) -> None:
        """Start the server on its port (same data as before); wait until it accepts."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200"
        )
        result = self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(START_TIMEOUT),
            "-o",
            options,
            "start",
        )
        if result.returncode != 0:
            pytest.fail(
                f"PostgreSQL did not start ({result.returncode}): {result.stderr}\n"
                + _log_tail(self.log_path)
            )

    def stop(self) -> None:
        """Stop the server now (fast shutdown: open sessions are ended)."""
        result = self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        if result.returncode != 0 and "is the server running" not in result.stderr:
            raise RuntimeError(f"pg_ctl stop failed: {result.stderr}")

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def running(self) -> bool:
        return self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status").returncode == 0

    def destroy(self) -> None:
        """Stop the server and remove its directory."""
        if self.data.exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------------- databases

    def url(self, database: str, *, driver: str = "asyncpg") -> str:
        """The URL of ``database`` for the ``hpcwaas`` role (its password included)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create a fresh empty database owned by ``hpcwaas``; its asyncpg URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE};")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's PostgreSQL server (see the module docstring)."""
    server = Postgres()
    try:
        server.init()
    except BaseException:
        print(_log_tail(server.log_path))
        server.destroy()
        raise
    deadline = time.monotonic() + START_TIMEOUT
    while not server.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield server
    server.destroy()


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    """A fresh empty database on the session's PostgreSQL server."""
    if not postgres.running():
        # A fault test left it stopped: later tests get a running server again.
        postgres.start()
    return postgres.new_database()
