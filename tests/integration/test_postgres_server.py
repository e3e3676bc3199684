"""A real `hpcwaas-api` on a real PostgreSQL server: a user's whole journey through the `waas`
CLI, and what clients see while the database is stopped and after it is back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import (
    BIN,
    LiveServer,
    envelope_item,
    free_port,
    post_login_form,
    wait_for_status,
)
from tests.pg_support import PG_BIN, Postgres

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TRIGGERED = re.compile(rf"^Workflow triggered with execution ID: ({UUID})$", re.MULTILINE)
PASSWORD = "a-long-pass-phrase"


@pytest.fixture
def pg_server(postgres_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server of the test's own on a fresh PostgreSQL database (not started)."""
    live = LiveServer(tmp_path / "data", free_port(), database_url=postgres_url)
    yield live
    live.stop()


def _waas(server: LiveServer, home: Path, *args: str, stdin: str | None = None) -> str:
    """`waas <args>` with its own home (the config file `waas login` writes lives there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
    result = subprocess.run(
        [str(BIN / "waas"), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**env, "HOME": str(home)},
        timeout=60,
    )
    assert result.returncode == 0, result
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def test_a_users_journey_through_the_cli_on_postgresql(
    pg_server: LiveServer, postgres: Postgres, tmp_path: Path
) -> None:
    added = pg_server.admin("users", "add", "ada", "--password-stdin", input_text=PASSWORD)
    assert added.returncode == 0, added.stderr
    pg_server.start()
    with httpx.Client() as browser:
        page = post_login_form(browser, pg_server.url, "ada", PASSWORD)
    assert page.status_code == 200, page.text
    token = re.search(r'id="token">([^<]+)<', page.text).group(1).strip()  # type: ignore[union-attr]
    home = tmp_path / "home"
    home.mkdir()
    _waas(pg_server, home, "--api_url", pg_server.url, "login", "--token-stdin", stdin=token)

    def waas(*args: str) -> str:
        return _waas(pg_server, home, *args)  # api_url and token come from ~/.waas

    assert "ada" in waas("whoami")
    created = waas("ssh_keys", "key-gen")
    assert "ssh-rsa AAAA" in created
    keys = json.loads(waas("-o", "json", "ssh_keys", "list"))
    assert len(keys) == 1 and keys[0]["public_key"].startswith("ssh-rsa AAAA")

    def trigger(workflow: str, *inputs: str) -> str:
        args = [arg for value in inputs for arg in ("-i", value)]
        match = TRIGGERED.search(waas("workflows", "trigger", *args, workflow))
        assert match
        return match.group(1)

    hello = trigger("demo@local@hello", "name=postgres")
    with pg_server.client(token) as api:
        wait_for_status(api, hello, {"SUCCEEDED"})
    assert json.loads(waas("-o", "json", "executions", "status", hello))["status"] == "SUCCEEDED"
    assert "postgres" in waas("executions", "logs", hello)

    others = [trigger("demo@local@hello", f"name=n{i}") for i in range(4)]
    sleeper = trigger("demo@local@sleep", "seconds=300")
    with pg_server.client(token) as api:
        wait_for_status(api, sleeper, {"RUNNING"})
        waas("executions", "cancel", sleeper)
        assert wait_for_status(api, sleeper, {"CANCELLED"})["status"] == "CANCELLED"

        # Pages of two, newest first, each execution exactly once.
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            body = api.get("/executions", params=params).json()
            assert len(body["executions"]) <= 2
            seen += [e["id"] for e in body["executions"]]
            cursor = body.get("next_cursor")
            if not cursor:
                break
    assert seen == [sleeper, *reversed(others), hello]
    listed = json.loads(waas("-o", "json", "executions", "list", "--limit", "3"))
    assert [e["id"] for e in listed] == seen[:3]

    # What the user did is in PostgreSQL, where another replica would find it.
    rows = postgres.psql("SELECT count(*) FROM executions;", _database(pg_server))
    assert rows.strip() == "6"


def _database(server: LiveServer) -> str:
    assert server.database_url is not None
    return server.database_url.rsplit("/", 1)[1]


def _wait_until(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_while_postgresql_is_stopped_requests_get_503_and_succeed_again_once_it_is_back(
    pg_server: LiveServer, postgres: Postgres
) -> None:
    # Every request checks its token in the database, so each one meets the outage (a token
    # checked moments before would let GET /workflows answer from memory).
    pg_server.env["HPCWAAS_AUTH__TOKEN_CACHE_SECONDS"] = "0"
    pg_server.start()
    token = pg_server.token("ada")
    with pg_server.client(token) as api:
        assert api.get("/executions").status_code == 200
        postgres.stop()
        try:
            for method, path, body in (
                ("GET", "/executions", None),
                ("GET", "/workflows", None),
                ("POST", "/ssh_keys", {}),
                ("POST", "/workflows/demo@local@hello", {"inputs": {}}),
            ):
                response = api.request(method, path, json=body)
                item = envelope_item(response, 503)
                assert "cannot reach its database" in item["detail"]
                assert "retry in a few seconds" in item["detail"]
                assert response.headers["Retry-After"] == "5"
            assert api.get("/healthz").status_code == 200
            ready = api.get("/readyz")
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert checks["database"].startswith("unavailable: the database at postgresql")
            assert "is unreachable" in checks["database"]
            assert checks["catalog"].startswith("ok")
        finally:
            postgres.start()
        # Back without restarting the server: the pool replaces its dead connections.
        _wait_until(lambda: api.get("/readyz").status_code == 200)
        assert api.get("/executions").status_code == 200
        created = api.post("/workflows/demo@local@hello", json={"inputs": {}})
        assert created.status_code == 201, created.text
        execution_id = created.headers["Location"].rsplit("/", 1)[1]
        wait_for_status(api, execution_id, {"SUCCEEDED"})
    log = pg_server.log_path.read_text()
    assert postgres.password not in log
    assert "Traceback" not in log
    assert "is unreachable" in log


def test_a_server_started_while_postgresql_is_stopped_says_so_in_one_line(
    postgres: Postgres, postgres_url: str, tmp_path: Path
) -> None:
    postgres.stop()
    try:
        result = subprocess.run(
            [str(BIN / "hpcwaas-api"), "--data_dir", str(tmp_path / "data"), "db", "upgrade"],
            capture_output=True,
            text=True,
            env={**os.environ, "HPCWAAS_DATABASE_URL": postgres_url},
            timeout=60,
        )
    finally:
        postgres.start()
    assert result.returncode == 1
    assert "is unreachable" in result.stderr
    assert "hpcwaas:***@127.0.0.1" in result.stderr
    assert postgres.password not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_pg_dump_restored_into_an_empty_database_serves_the_same_data(
    pg_server: LiveServer, postgres: Postgres, tmp_path: Path
) -> None:
    pg_server.start()
    token = pg_server.token("ada")
    with pg_server.client(token) as api:
        key = api.post("/ssh_keys", json={}).json()
        created = api.post("/workflows/demo@local@hello", json={"inputs": {"name": "backup"}})
        execution_id = created.headers["Location"].rsplit("/", 1)[1]
        wait_for_status(api, execution_id, {"SUCCEEDED"})
        logs_before = api.get(f"/executions/{execution_id}/logs", params={"timeout": "0s"}).json()
    pg_server.stop()

    # The operator guide's commands: pg_dump --format=custom, then pg_restore into an empty
    # database owned by the same role.
    dump = tmp_path / "hpcwaas.dump"
    source = pg_server.database_url
    assert source is not None
    plain = source.replace("postgresql+asyncpg://", "postgresql://")
    subprocess.run(
        [str(PG_BIN / "pg_dump"), "--format=custom", f"--file={dump}", plain],
        check=True,
        capture_output=True,
        timeout=60,
    )
    restored_url = postgres.new_database()
    restored_plain = restored_url.replace("postgresql+asyncpg://", "postgresql://")
    subprocess.run(
        [
            str(PG_BIN / "pg_restore"),
            "--no-owner",
            "--role=hpcwaas",
            f"--dbname={restored_plain}",
            str(dump),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )

    # The same data_dir (master.key: the key store) on the restored database.
    restored = LiveServer(pg_server.data_dir, free_port(), database_url=restored_url).start()
    try:
        with restored.client(token) as api:
            assert api.get(f"/executions/{execution_id}").json()["status"] == "SUCCEEDED"
            logs_after = api.get(
                f"/executions/{execution_id}/logs", params={"timeout": "0s"}
            ).json()
            assert logs_after == logs_before
            listed = api.get("/ssh_keys").json()
            assert key["id"] in json.dumps(listed)
    finally:
        restored.stop()


def test_admin_commands_refuse_names_longer_than_their_columns_in_one_line(
    pg_server: LiveServer,
) -> None:
    for args, what in (
        (("tokens", "issue", "--user", "u" * 256), "--user has 256 characters"),
        (("tokens", "issue", "--user", "bob", "--description", "d" * 300), "--description"),
        (("users", "add", "u" * 256, "--password-stdin"), "the account name has 256"),
    ):
        result = pg_server.admin(*args, input_text="a-long-password\n")
        assert result.returncode == 1
        assert what in result.stderr and "at most 255 are allowed" in result.stderr
        assert "Traceback" not in result.stderr
    accepted = pg_server.admin("tokens", "issue", "--user", "u" * 255)
    assert accepted.returncode == 0, accepted.stderr
