"""A real Apache Airflow 2 (the Data Logistics Service) on the loopback, for the ``dls`` tests.

scripts/install-test-deps.sh (part ``airflow``) installs apache-airflow 2.10.5 with its ssh and
hashicorp providers into a virtual environment of its own, at the pins of
tests/airflow/constraints.txt, under ``$HPCWAAS_TEST_CACHE`` (default /var/cache/hpcwaas-test)
in ``airflow-<hash of the Python and the pins>``. This fixture finds it by the same name and
never installs anything: a missing environment, or an Airflow that does not come up, fails the
test with the reason and the logs' tail.

Fixtures
--------
``airflow -> Airflow`` (session)
    A metadata database on the session's PostgreSQL server (tests/pg_support.py), so that the
    LocalExecutor runs tasks in parallel (SQLite allows only the SequentialExecutor). The
    database, once migrated and given the ``admin`` account, is dumped into the environment's
    directory (``db-<hash>.sql``) and restored by later sessions instead of migrated again.
    Then ``airflow scheduler`` and ``airflow webserver`` (REST API ``/api/v1`` with basic
    auth) start on a free loopback port, with the environment's ``bin`` first on PATH (the
    executor starts ``airflow`` from PATH), new DAGs unpaused, and the DAGs of
    ``dags/`` (shipped to operators) and ``tests/dags/`` (the tests' own, with stand-ins of
    the DLS's ``webdav_stagein`` and ``mlflow_upload_model``: dls_standins.py). The fixture waits
    until the scheduler is healthy and every DAG is parsed; it stops both by their process
    groups' IDs at the end of the session.

``Airflow``: ``.url``, ``.username``, ``.password``, ``.api(method, path, json=)`` (a
basic-auth request to ``/api/v1``), ``.set_connection(conn_id, **fields)``,
``.set_variable(key, value)``, ``.runs(dag_id)``,
``.stop_webserver()`` / ``.start_webserver()`` (an outage of the REST API while the
scheduler runs on), ``.timings`` (seconds each stage of the start took), ``.log_tail()``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg_support import PG_BIN, Postgres

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "tests" / "airflow" / "constraints.txt"
DAG_DIRS = (ROOT / "dags", ROOT / "tests" / "dags")
CACHE = Path(os.environ.get("HPCWAAS_TEST_CACHE", "/var/cache/hpcwaas-test"))
START_TIMEOUT = 180
USERNAME = "admin"
INSTALL_HINT = "run: bash scripts/install-test-deps.sh airflow"
# The DAGs the fixture waits for before it yields.
EXPECTED_DAGS = {
    "plainhttp2ssh",
    "ssh2ssh",
    "transfer_image",
    "webdav_stagein",
    "mlflow_upload_model",
    "hpcwaas_test_fail",
    "hpcwaas_test_sleep",
    "hpcwaas_test_quick",
}


def venv_dir() -> Path:
    """The Airflow environment scripts/install-test-deps.sh made for these pins."""
    python = os.environ.get("HPCWAAS_AIRFLOW_PYTHON", "python3")
    # The same pipeline as the install script, so that both name the same directory.
    script = (
        f"{{ {python} -c 'import sys; print(sys.version)'; cat {PINS}; }} | sha256sum | cut -c1-16"
    )
    digest = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    return CACHE / f"airflow-{digest}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"({path}: no log)"
    return f"--- {path.name}\n" + "\n".join(text)


class Airflow:
    """One Airflow of the test session: scheduler, webserver, metadata database, home."""

    def __init__(self, postgres: Postgres) -> None:
        self.venv = venv_dir()
        if not (self.venv / "complete").exists():
            pytest.fail(f"Apache Airflow is not installed in {self.venv}: {INSTALL_HINT}")
        self.home = Path(tempfile.mkdtemp(prefix="hpcwaas-airflow-"))
        self.dags = self.home / "dags"
        self.dags.mkdir()
        for folder in DAG_DIRS:
            for dag in folder.glob("*.py"):
                (self.dags / dag.name).symlink_to(dag)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username = USERNAME
        self.password = secrets.token_urlsafe(12)
        self._postgres = postgres
        self.database = f"airflow_{uuid.uuid4().hex[:12]}"
        postgres.psql(f"CREATE DATABASE {self.database} OWNER hpcwaas;")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.timings: dict[str, float] = {}
        self.env = {
            **os.environ,
            "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "16",
            "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "400",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url(self.database, driver="psycopg2"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "4",
            "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
            "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__WEBSERVER__WORKERS": "2",
            "AIRFLOW__WEBSERVER__WORKER_REFRESH_BATCH_SIZE": "0",
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONWARNINGS": "ignore",
        }
        self._dump = self.venv / f"db-{self._schema_digest()}.sql"

    def _schema_digest(self) -> str:
        import hashlib

        return hashlib.sha256(PINS.read_bytes() + USERNAME.encode()).hexdigest()[:16]

    # -------------------------------------------------------------------------- commands

    def _airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        if result.returncode != 0:
            pytest.fail(
                f"airflow {args[0]} {args[1] if len(args) > 1 else ''} failed "
                f"({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def _pg(self, tool: str, *args: str) -> None:
        env = {**os.environ, "PGPASSWORD": self._postgres.password}
        target = ["-h", "127.0.0.1", "-p", str(self._postgres.port), "-U", "hpcwaas"]
        result = subprocess.run(
            [str(PG_BIN / tool), *target, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            pytest.fail(f"{tool} failed ({result.returncode}): {result.stderr[-2000:]}")

    # ------------------------------------------------------------------------- lifecycle

    def prepare_database(self) -> None:
        """Restore the cached migrated database, or migrate one and cache it."""
        started = time.monotonic()
        if self._dump.exists():
            self._pg(
                "psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.database, "-f", str(self._dump)
            )
            self._airflow(
                "users", "reset-password", "--username", USERNAME, f"--password={self.password}"
            )
        else:
            self._airflow("db", "migrate")
            self._airflow(
                "users", "create", "--role", "Admin", "--username", USERNAME,
                f"--password={self.password}", "--email", "admin@example.org",
                "--firstname", "Test", "--lastname", "Admin",
            )  # fmt: skip
            partial = self._dump.with_suffix(".partial")
            self._pg(
                "pg_dump", "--no-owner", "--no-privileges", "-d", self.database, "-f", str(partial)
            )
            partial.rename(self._dump)
        self.timings["database"] = time.monotonic() - started

    def start(self) -> None:
        """Start the scheduler and the webserver; wait until both serve and the DAGs parsed."""
        started = time.monotonic()
        self._spawn("scheduler", ["scheduler"])
        self._spawn("webserver", self._webserver_args())
        self._wait_healthy(started)
        self.timings["start"] = time.monotonic() - started

    def _webserver_args(self) -> list[str]:
        return ["webserver", "--port", str(self.port), "--hostname", "127.0.0.1"]

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [str(self.venv / "bin" / "airflow"), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,  # its own process group: stopped as one
        )

    def ensure_running(self) -> None:
        """Start again what exited since the last test, and wait until it serves.

        Tests of database outages stop and restart the session's PostgreSQL, which this
        Airflow's metadata database lives on; its scheduler may exit on the lost connection.
        """
        commands = {"scheduler": ["scheduler"], "webserver": self._webserver_args()}
        for name, args in commands.items():
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                self._spawn(name, args)
        self._wait_healthy(time.monotonic())

    def stop_webserver(self) -> None:
        """Stop the webserver (the REST API): the Airflow cannot be reached; runs go on."""
        process = self.processes.pop("webserver")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(20)

    def start_webserver(self) -> None:
        """Start the webserver again, on the same port; wait until it serves."""
        self._spawn("webserver", self._webserver_args())
        self._wait_healthy(time.monotonic())

    def _wait_healthy(self, started: float) -> None:
        reason = "no answer"
        while time.monotonic() - started < START_TIMEOUT:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    pytest.fail(f"airflow {name} exited ({process.returncode}):\n{self.log_tail()}")
            try:
                health = httpx.get(f"{self.url}/api/v1/health", timeout=5).json()
                scheduler = health["scheduler"]["status"]
                dags = self.api("GET", "/dags?limit=100")
                if dags.status_code != 200:
                    reason = f"GET /dags answered {dags.status_code}: {dags.text[:200]}"
                else:
                    parsed = {dag["dag_id"] for dag in dags.json()["dags"]}
                    missing = EXPECTED_DAGS - parsed
                    reason = f"scheduler {scheduler}, DAGs not parsed yet: {sorted(missing)}"
                    if scheduler == "healthy" and not missing:
                        return
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                reason = repr(exc)
            time.sleep(1)
        pytest.fail(f"Airflow did not come up in {START_TIMEOUT} s ({reason}):\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop scheduler and webserver (their process groups, by the IDs started here)."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.processes.clear()

    def destroy(self) -> None:
        self.stop()
        subprocess.run(["rm", "-rf", str(self.home)], check=False)

    # --------------------------------------------------------------------------- helpers

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A basic-auth request to the REST API (``path`` under /api/v1)."""
        return httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            auth=(self.username, self.password),
            timeout=30,
            **kwargs,
        )

    def set_connection(self, conn_id: str, **fields: Any) -> None:
        """Create or replace an Airflow connection (the DAGs' Vault, for instance)."""
        self.api("DELETE", f"/connections/{conn_id}")
        answer = self.api("POST", "/connections", json={"connection_id": conn_id, **fields})
        assert answer.status_code == 200, answer.text

    def set_variable(self, key: str, value: str) -> None:
        """Create or replace an Airflow variable (what a DAG reads with ``Variable.get``)."""
        self.api("DELETE", f"/variables/{key}")
        made = self.api("POST", "/variables", json={"key": key, "value": value})
        assert made.status_code == 200, made.text

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns?limit=100")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["dag_runs"])

    def log_tail(self) -> str:
        return "\n".join(_tail(self.home / f"{name}.log") for name in ("scheduler", "webserver"))


@pytest.fixture
def airflow(session_airflow: Airflow) -> Airflow:
    """The session's Airflow, running and healthy for this test."""
    session_airflow.ensure_running()
    return session_airflow


@pytest.fixture(scope="session")
def session_airflow(postgres: Postgres) -> Iterator[Airflow]:
    """The session's Airflow, started (see the module docstring)."""
    server = Airflow(postgres)
    try:
        server.prepare_database()
        server.start()
    except BaseException:
        server.destroy()
        raise
    yield server
    server.destroy()
