"""`GET /executions/{id}/events`: logs and status changes as server-sent events, resumable."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from tests.conftest import LiveServer, wait_for_status

ALL_LEVELS = {"levels": "15"}


@dataclass
class Event:
    kind: str
    id: int | None
    data: dict[str, object]


def _events(response: httpx.Response) -> Iterator[Event]:
    """Parse a text/event-stream as it arrives; keep-alive comments are skipped."""
    kind, event_id, data = "message", None, []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield Event(kind, event_id, json.loads("\n".join(data)))
            kind, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                kind = value
            elif field == "id":
                event_id = int(value)
            elif field == "data":
                data.append(value)


def _trigger(api: httpx.Client, workflow: str, **inputs: object) -> str:
    response = api.post(f"/workflows/{workflow}", json={"inputs": inputs})
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def _stream(
    api: httpx.Client, execution_id: str, headers: dict[str, str] | None = None
) -> list[Event]:
    with api.stream(
        "GET", f"/executions/{execution_id}/events", params=ALL_LEVELS, headers=headers
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(_events(response))


def test_stream_sends_every_log_entry_in_order_and_ends_on_succeeded(api: httpx.Client) -> None:
    execution_id = _trigger(api, "demo@local@sweep", n=3)
    events = _stream(api, execution_id)
    logs = [e for e in events if e.kind == "log"]
    statuses = [e.data["status"] for e in events if e.kind == "status"]
    # ids are the entries' indices: dense and in order, and the entries are the logs route's
    assert [e.id for e in logs] == list(range(len(logs)))
    route = api.get(f"/executions/{execution_id}/logs", params=ALL_LEVELS).json()["logs"]
    assert [e.data for e in logs] == route
    assert any("report written" in str(e.data["content"]) for e in logs)
    # the stream followed the run: it saw it unfinished, and its last event is the final status
    assert statuses[0] in {"PENDING", "RUNNING"}
    assert events[-1].kind == "status" and events[-1].data["status"] == "SUCCEEDED"
    assert events[-1].data == api.get(f"/executions/{execution_id}").json()
    step_states = [
        {s["name"]: s["state"] for s in e.data["steps"]}  # type: ignore[union-attr]
        for e in events
        if e.kind == "status"
    ]
    assert any(states["left"] == "RUNNING" for states in step_states)


def test_last_event_id_resumes_after_that_entry_without_repeats(api: httpx.Client) -> None:
    execution_id = _trigger(api, "demo@local@sweep", n=2)
    seen: list[Event] = []
    # Hang up after the third entry, as a dropped connection would.
    with api.stream("GET", f"/executions/{execution_id}/events", params=ALL_LEVELS) as response:
        for event in _events(response):
            if event.kind == "log":
                seen.append(event)
                if len(seen) == 3:
                    break
    resumed = _stream(api, execution_id, headers={"Last-Event-ID": str(seen[-1].id)})
    rest = [e for e in resumed if e.kind == "log"]
    assert [e.id for e in seen + rest] == list(range(len(seen) + len(rest)))
    everything = api.get(f"/executions/{execution_id}/logs", params=ALL_LEVELS).json()["logs"]
    assert [e.data for e in seen + rest] == everything
    assert resumed[-1].data["status"] == "SUCCEEDED"


def test_levels_filter_the_streamed_entries_like_the_logs_route(api: httpx.Client) -> None:
    execution_id = _trigger(api, "demo@local@hello", name="Ada")
    wait_for_status(api, execution_id, {"SUCCEEDED"})
    with api.stream("GET", f"/executions/{execution_id}/events") as response:
        default = [e for e in _events(response) if e.kind == "log"]
    assert default and all(e.data["level"] != "DEBUG" for e in default)
    everything = [e for e in _stream(api, execution_id) if e.kind == "log"]
    assert any(e.data["level"] == "DEBUG" for e in everything)
    # an entry keeps its index whatever the filter
    by_id = {e.id: e.data for e in everything}
    assert all(by_id[e.id] == e.data for e in default)


def test_another_users_execution_is_not_found(server: LiveServer, api: httpx.Client) -> None:
    execution_id = _trigger(api, "demo@local@hello")
    with server.client(server.token("someone-else")) as other:
        response = other.get(f"/executions/{execution_id}/events")
    assert response.status_code == 404
    assert response.json()["errors"][0]["id"] == "not_found"


def test_bad_requests_get_a_clear_400_and_no_token_a_401(
    server: LiveServer, api: httpx.Client
) -> None:
    execution_id = _trigger(api, "demo@local@hello")
    bad_id = api.get(f"/executions/{execution_id}/events", headers={"Last-Event-ID": "abc"})
    assert bad_id.status_code == 400
    assert "Last-Event-ID" in bad_id.json()["errors"][0]["detail"]
    bad_levels = api.get(f"/executions/{execution_id}/events", params={"levels": "16"})
    assert bad_levels.status_code == 400
    assert "levels" in bad_levels.json()["errors"][0]["detail"]
    anonymous = httpx.get(f"{server.url}/executions/{execution_id}/events")
    assert anonymous.status_code == 401


def test_route_is_described_in_the_openapi_document(server: LiveServer) -> None:
    document = httpx.get(server.url + "/openapi.json").json()
    operation = document["paths"]["/executions/{execution_id}/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "Last-Event-ID" in operation["description"]
    assert "event: log" in operation["description"] or "`event: log`" in operation["description"]


def test_open_streams_end_when_the_server_stops_and_resume_after_a_restart(
    fresh_server: LiveServer,
) -> None:
    fresh_server.start()
    token = fresh_server.token("restarter")
    with fresh_server.client(token) as api:
        execution_id = _trigger(api, "demo@local@sleep", seconds=5)
        with api.stream("GET", f"/executions/{execution_id}/events", params=ALL_LEVELS) as response:
            events = _events(response)
            first = []
            for event in events:  # up to its first log entry (status events may come first)
                first.append(event)
                if event.kind == "log":
                    break
            assert fresh_server.process is not None
            fresh_server.process.terminate()
            started = time.monotonic()
            rest = list(events)  # the server ends the stream instead of waiting for the run
        assert fresh_server.process.wait(timeout=20) == 0
        assert time.monotonic() - started < 15
    seen = [e for e in first + rest if e.kind == "log"]
    assert seen
    fresh_server.start()
    with fresh_server.client(token) as api:
        resumed = _stream(api, execution_id, headers={"Last-Event-ID": str(seen[-1].id)})
    ids = [e.id for e in seen] + [e.id for e in resumed if e.kind == "log"]
    assert ids == list(range(len(ids)))
    assert resumed[-1].kind == "status"
    assert resumed[-1].data["status"] in {"SUCCEEDED", "FAILED"}
