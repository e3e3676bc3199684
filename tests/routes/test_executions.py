"""The REST contract of /executions: status, list, cancel, logs (long poll), ownership."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from tests.conftest import processes_of, trigger, wait_for_log, wait_for_status
from tests.inprocess_support import InProcessServer


def test_status_has_the_original_fields_plus_steps_and_times(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@hello", name="Ada")
    body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
    assert body["id"] == execution_id
    assert body["status"] == "SUCCEEDED"
    assert body["workflow_id"] == "demo@local@hello"
    assert [s["name"] for s in body["steps"]] == ["greet"]
    assert body["steps"][0]["state"] == "SUCCEEDED"
    assert body["created_at"] <= body["started_at"] <= body["ended_at"]


def test_fan_out_fan_in_runs_branches_in_parallel_and_returns_outputs(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@sweep", n=4, mode="accurate")
    body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    assert body["status"] == "SUCCEEDED", body
    steps = {s["name"]: s for s in body["steps"]}
    left, right, gather = steps["left"], steps["right"], steps["gather"]
    # the two branches overlap in time, and the join starts after both ended
    assert left["started_at"] < right["ended_at"] and right["started_at"] < left["ended_at"]
    assert gather["started_at"] >= max(left["ended_at"], right["ended_at"])
    report = body["outputs"]["report"]
    assert "accurate" in report
    assert "4" in report.split()


def test_failed_step_fails_the_execution_with_the_reason_in_the_logs(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@fail")
    body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
    assert body["status"] == "FAILED"
    logs = api.get(f"/executions/{execution_id}/logs").json()["logs"]
    errors = [entry["content"] for entry in logs if entry["level"] == "ERROR"]
    assert any("exit code 3" in content for content in errors), logs


def test_cancel_of_running_execution_kills_its_processes(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@sleep", seconds=300)
    wait_for_status(api, execution_id, {"RUNNING"})
    deadline = time.monotonic() + 10
    while not processes_of(execution_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(execution_id), "the sleep step never started"
    response = api.delete(f"/executions/{execution_id}")
    assert response.status_code == 202
    assert response.content == b""
    body = wait_for_status(api, execution_id, {"CANCELLED"}, timeout=20)
    assert body["steps"][0]["state"] == "CANCELLED"
    assert processes_of(execution_id) == []


def test_cancel_of_finished_execution_is_a_409(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@hello")
    wait_for_status(api, execution_id, {"SUCCEEDED"})
    response = api.delete(f"/executions/{execution_id}")
    assert response.status_code == 409
    assert response.json()["errors"][0]["id"] == "conflict"


def test_cancel_of_a_cancelled_execution_is_a_409_like_any_ended_one(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@sleep", seconds=300)
    assert api.delete(f"/executions/{execution_id}").status_code == 202
    wait_for_status(api, execution_id, {"CANCELLED"}, timeout=20)
    response = api.delete(f"/executions/{execution_id}")
    assert response.status_code == 409, response.text
    assert response.json()["errors"] == [
        {
            "id": "conflict",
            "status": 409,
            "title": "Conflict",
            "detail": "the execution has already finished (CANCELLED)",
        }
    ]


def test_unknown_execution_is_a_404(api: httpx.Client) -> None:
    for path in ("/executions/nope", "/executions/nope/logs"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["id"] == "not_found"
    assert api.delete("/executions/nope").status_code == 404


def test_executions_list_is_newest_first_and_paginates(api: httpx.Client) -> None:
    ids = [trigger(api, "demo@local@hello", name=str(i)) for i in range(3)]
    first = api.get("/executions", params={"limit": 2}).json()
    assert [e["id"] for e in first["executions"]] == ids[::-1][:2]
    second = api.get("/executions", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in second["executions"]] == ids[:1]
    assert second["next_cursor"] is None
    assert api.get("/executions", params={"cursor": "garbage!"}).status_code == 400


def test_logs_have_the_original_shape_and_levels_filter(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@hello", name="Ada")
    wait_for_status(api, execution_id, {"SUCCEEDED"})
    body = api.get(f"/executions/{execution_id}/logs").json()
    assert set(body) >= {"logs", "total_results", "from"}
    assert body["from"] == 0
    assert body["total_results"] == len(body["logs"])
    assert any(e["content"] == "Hello, Ada!" and e["level"] == "INFO" for e in body["logs"])
    for entry in body["logs"]:
        assert {"level", "timestamp", "content"} <= set(entry)
        assert entry["level"] in {"INFO", "WARN", "ERROR"}
    with_debug = api.get(f"/executions/{execution_id}/logs", params={"levels": 15}).json()
    assert with_debug["total_results"] > body["total_results"]
    errors_only = api.get(f"/executions/{execution_id}/logs", params={"levels": 8}).json()
    assert errors_only["logs"] == [] and errors_only["total_results"] == 0


def test_logs_pagination_by_from_never_skips_or_repeats(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@sweep")
    wait_for_status(api, execution_id, {"SUCCEEDED"}, timeout=60)
    everything = api.get(f"/executions/{execution_id}/logs", params={"levels": 15}).json()
    seen, offset = [], 0
    while True:
        page = api.get(
            f"/executions/{execution_id}/logs",
            params={"levels": 15, "from": offset, "size": 3, "timeout": "10ms"},
        ).json()
        if not page["logs"]:
            break
        assert page["from"] == offset
        seen += page["logs"]
        offset += len(page["logs"])
    assert seen == everything["logs"]


def test_logs_long_poll_answers_as_soon_as_an_entry_arrives(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@sleep", seconds=300)
    offset = wait_for_log(api, execution_id, "sleeping for 300 seconds")
    result: dict[str, object] = {}

    def poll() -> None:
        started = time.monotonic()
        result["body"] = api.get(
            f"/executions/{execution_id}/logs", params={"from": offset, "timeout": "30s"}
        ).json()
        result["elapsed"] = time.monotonic() - started

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive(), "the long poll returned before any new entry"
    api.delete(f"/executions/{execution_id}")  # cancelling writes new entries
    waiter.join(timeout=15)
    assert not waiter.is_alive()
    assert result["body"]["logs"], result  # type: ignore[index]
    assert result["elapsed"] < 10  # type: ignore[operator]


def test_logs_long_poll_times_out_with_an_empty_page(api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@sleep", seconds=300)
    total = wait_for_log(api, execution_id, "sleeping for 300 seconds")
    started = time.monotonic()
    body = api.get(
        f"/executions/{execution_id}/logs", params={"from": total, "timeout": "700ms"}
    ).json()
    elapsed = time.monotonic() - started
    api.delete(f"/executions/{execution_id}")
    assert body["logs"] == []
    assert body["total_results"] == total
    assert body["from"] == total
    assert 0.6 <= elapsed < 5


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("from", "x"),
        ("from", "-1"),
        ("size", "many"),
        ("timeout", "soon"),
        ("levels", "16"),
        ("levels", "-1"),
        ("levels", "all"),
    ],
)
def test_bad_logs_parameter_is_a_400_naming_it(api: httpx.Client, param: str, value: str) -> None:
    execution_id = trigger(api, "demo@local@hello")
    response = api.get(f"/executions/{execution_id}/logs", params={param: value})
    assert response.status_code == 400
    assert param in response.json()["errors"][0]["detail"]


def test_another_users_execution_is_invisible(server: InProcessServer, api: httpx.Client) -> None:
    execution_id = trigger(api, "demo@local@sleep", seconds=300)
    with server.client(server.token("intruder")) as intruder:
        assert intruder.get(f"/executions/{execution_id}").status_code == 404
        assert intruder.get(f"/executions/{execution_id}/logs").status_code == 404
        assert intruder.delete(f"/executions/{execution_id}").status_code == 404
        listed = intruder.get("/executions").json()["executions"]
        assert execution_id not in [e["id"] for e in listed]
    assert api.get(f"/executions/{execution_id}").json()["status"] in {"PENDING", "RUNNING"}
    api.delete(f"/executions/{execution_id}")
