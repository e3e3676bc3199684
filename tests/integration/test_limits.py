"""Every `limits:` key, against a real server whose config sets it low.

Each refusal is checked for its status, envelope id, a detail that names the config key,
and that nothing was recorded (read from the server's SQLite database).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.conftest import LiveServer, envelope_item, free_port, wait_for_status

LIMITS = {
    "max_body_bytes": 1024,
    "max_inputs": 2,
    "max_input_bytes": 50,
    "max_metadata_bytes": 64,
    "max_page_size": 3,
    "max_logs_timeout_seconds": 1,
    "max_output_bytes": 8,
    "max_running_executions_per_user": 2,
    "max_triggers_per_minute": 4,
    "max_ssh_keys_per_user": 2,
}
ACTIVE = {"PENDING", "RUNNING", "CANCELLING"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, started from a config file with every limit set low."""
    root = tmp_path_factory.mktemp("limits")
    config = root / "hpcwaas.yml"
    config.write_text(yaml.safe_dump({"limits": LIMITS}))
    live = LiveServer(root / "data", free_port(), extra_args=["--config", str(config)]).start()
    yield live
    live.stop()


@pytest.fixture
def api(server: LiveServer, user: str) -> Iterator[httpx.Client]:
    with server.client(server.token(user)) as client:
        yield client
        # Leave no sleeping execution behind for the next test's server load.
        for item in client.get("/executions").json().get("executions", []):
            if item["status"] in ACTIVE:
                client.delete(f"/executions/{item['id']}")


def rows(server: LiveServer, table: str, owner: str | None = None) -> int:
    """How many rows ``table`` holds (of ``owner`` when given), read from the database."""
    with sqlite3.connect(Path(server.data_dir) / "hpcwaas.sqlite3") as db:
        if owner is None:
            (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        else:
            query = f"SELECT count(*) FROM {table} WHERE owner = ?"
            (count,) = db.execute(query, (owner,)).fetchone()
    return int(count)


def refused(response: httpx.Response, status: int, error_id: str, key: str) -> str:
    """Check the envelope of a refusal and that its detail names the config key; the detail."""
    item = envelope_item(response, status)
    assert item["id"] == error_id
    detail: str = item["detail"]
    assert f"limits.{key}" in detail, detail
    return detail


def trigger(client: httpx.Client, workflow_id: str, **inputs: object) -> httpx.Response:
    return client.post(f"/workflows/{workflow_id}", json={"inputs": inputs})


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


# --- max_body_bytes ------------------------------------------------------------------------

BIG = b'{"inputs": {"name": "' + b"x" * 2000 + b'"}}'
BODY_ROUTES = [
    ("POST", "/workflows/demo@local@hello"),
    ("POST", "/ssh_keys"),
    ("PUT", "/environments/local/identity"),
]


def _chunks() -> Iterator[bytes]:
    # No Content-Length: the server must count the bytes as they come.
    for start in range(0, len(BIG), 256):
        yield BIG[start : start + 256]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=lambda v: v)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_max_body_bytes_is_a_413_and_records_nothing(
    server: LiveServer, api: httpx.Client, user: str, method: str, path: str, framing: str
) -> None:
    content: bytes | Iterator[bytes] = BIG if framing == "content-length" else _chunks()
    headers = {"Content-Type": "application/json"}
    response = api.request(method, path, content=content, headers=headers)
    detail = refused(response, 413, "payload_too_large", "max_body_bytes")
    assert "1024 bytes" in detail
    assert response.json()["errors"][0]["title"] == "Payload Too Large"
    assert rows(server, "executions", user) == 0
    assert rows(server, "ssh_keys", user) == 0


# --- max_inputs, max_input_bytes -----------------------------------------------------------


def test_more_inputs_than_max_inputs_is_a_400_and_records_nothing(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    response = trigger(api, "demo@local@sweep", n=2, mode="fast", label="x")
    detail = refused(response, 400, "bad_request", "max_inputs")
    assert "3 given, at most 2" in detail
    assert rows(server, "executions", user) == 0


def test_an_input_over_max_input_bytes_is_a_400_and_records_nothing(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    response = trigger(api, "demo@local@hello", name="y" * 60)
    detail = refused(response, 400, "bad_request", "max_input_bytes")
    assert "input 'name'" in detail
    assert "at most 50" in detail
    assert rows(server, "executions", user) == 0


# --- max_metadata_bytes --------------------------------------------------------------------


def test_key_metadata_over_max_metadata_bytes_is_a_400_and_creates_no_key(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    secrets_before = rows(server, "sealed_secrets")
    response = api.post("/ssh_keys", json={"metadata": {"note": "z" * 100}})
    detail = refused(response, 400, "bad_request", "max_metadata_bytes")
    assert "64 bytes" in detail
    assert rows(server, "ssh_keys", user) == 0
    assert rows(server, "sealed_secrets") == secrets_before


# --- max_page_size -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/executions", "/ssh_keys", "/workflows"])
def test_a_page_larger_than_max_page_size_is_a_400(api: httpx.Client, path: str) -> None:
    response = api.get(path, params={"limit": 4})
    detail = refused(response, 400, "bad_request", "max_page_size")
    assert "between 1 and 3" in detail
    assert api.get(path, params={"limit": 3}).status_code == 200


# --- max_logs_timeout_seconds --------------------------------------------------------------


def test_a_logs_long_poll_waits_no_longer_than_max_logs_timeout_seconds(
    api: httpx.Client,
) -> None:
    execution_id = created_id(trigger(api, "demo@local@sleep", seconds=60))
    wait_for_status(api, execution_id, {"RUNNING"})
    started = time.monotonic()
    # Far past the last entry, asking for an hour: the server's cap (1 s) answers instead.
    response = api.get(f"/executions/{execution_id}/logs", params={"from": 1000, "timeout": "1h"})
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["logs"] == []
    assert 0.9 <= elapsed < 10


# --- max_output_bytes ----------------------------------------------------------------------


def test_an_output_over_max_output_bytes_is_cut_and_the_logs_name_the_limit(
    api: httpx.Client,
) -> None:
    execution_id = created_id(trigger(api, "demo@local@sweep"))
    body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    assert body["status"] == "SUCCEEDED"
    outputs = body["outputs"]
    assert isinstance(outputs, dict)
    assert outputs["report"].endswith("[output truncated at 8 bytes]")
    assert outputs["report"].startswith("report r")
    logs = api.get(f"/executions/{execution_id}/logs", params={"levels": 4}).json()["logs"]
    assert any("limits.max_output_bytes" in entry["content"] for entry in logs), logs


# --- max_running_executions_per_user -------------------------------------------------------


def test_a_trigger_past_max_running_executions_is_a_429_until_one_ends(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    first = created_id(trigger(api, "demo@local@sleep"))
    created_id(trigger(api, "demo@local@sleep"))

    response = trigger(api, "demo@local@sleep")
    detail = refused(response, 429, "too_many_requests", "max_running_executions_per_user")
    assert response.json()["errors"][0]["title"] == "Too Many Requests"
    assert int(response.headers["Retry-After"]) >= 1
    assert "you have 2 executions" in detail
    assert "the limit is 2" in detail
    assert "wait" in detail
    assert "waas executions cancel" in detail
    assert rows(server, "executions", user) == 2

    # Cancelling one makes room again.
    assert api.delete(f"/executions/{first}").status_code == 202
    wait_for_status(api, first, {"CANCELLED"})
    created_id(trigger(api, "demo@local@hello"))
    assert rows(server, "executions", user) == 3


def test_finished_executions_do_not_count_against_max_running_executions(
    api: httpx.Client,
) -> None:
    for _ in range(3):
        execution_id = created_id(trigger(api, "demo@local@hello"))
        wait_for_status(api, execution_id, {"SUCCEEDED"})


# --- max_triggers_per_minute ---------------------------------------------------------------


def test_a_trigger_past_max_triggers_per_minute_is_a_429_with_retry_after(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    for _ in range(4):
        # Each one ends before the next, so only the rate can refuse.
        wait_for_status(api, created_id(trigger(api, "demo@local@hello")), {"SUCCEEDED"})

    response = trigger(api, "demo@local@hello")
    detail = refused(response, 429, "too_many_requests", "max_triggers_per_minute")
    retry_after = int(response.headers["Retry-After"])
    # One trigger comes back every 15 s at 4 per minute.
    assert 1 <= retry_after <= 15
    assert "at most 4 per minute" in detail
    assert f"try again in {retry_after} s" in detail
    assert rows(server, "executions", user) == 4


def test_the_trigger_rate_is_counted_per_user(server: LiveServer, api: httpx.Client) -> None:
    for _ in range(4):
        wait_for_status(api, created_id(trigger(api, "demo@local@hello")), {"SUCCEEDED"})
    assert trigger(api, "demo@local@hello").status_code == 429
    with server.client(server.token(f"other-{uuid.uuid4().hex[:8]}")) as other:
        created_id(trigger(other, "demo@local@hello"))


# --- max_ssh_keys_per_user -----------------------------------------------------------------


def test_one_key_past_max_ssh_keys_per_user_is_a_409_until_one_is_deleted(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    first = api.post("/ssh_keys", json={"type": "ed25519"}).json()["id"]
    api.post("/ssh_keys", json={"type": "ed25519"}).raise_for_status()
    secrets_before = rows(server, "sealed_secrets")

    response = api.post("/ssh_keys", json={"type": "ed25519"})
    detail = refused(response, 409, "conflict", "max_ssh_keys_per_user")
    assert "you have 2 SSH keys and the limit is 2" in detail
    assert "DELETE /ssh_keys/{id}" in detail
    assert "waas ssh_keys delete" in detail
    assert rows(server, "ssh_keys", user) == 2
    assert rows(server, "sealed_secrets") == secrets_before

    assert api.delete(f"/ssh_keys/{first}").status_code == 204
    assert api.post("/ssh_keys", json={"type": "ed25519"}).status_code == 201
    assert rows(server, "ssh_keys", user) == 2
