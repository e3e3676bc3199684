"""What the original `waas` client (Go) and scripts send, byte for byte, works here.

The original client's requests are written on the socket exactly as Go's net/http writes
them for its api package (docs/compatibility.md, "What the original client sends"): no
Content-Type, `User-Agent: Go-http-client/1.1`, `Accept-Encoding: gzip`, the headers in
Go's order, bodies as its structs marshal them (`{"inputs":null}`, `{}`), query parameters
sorted as url.Values encodes them. Answers are read as its structs would decode them.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import h11
import pytest
from tests.conftest import LiveServer, envelope_item, wait_for_status

from hpcwaas.cli.workflows import WORKFLOW_FIELDS

# Go's time.Time.UnmarshalJSON accepts RFC 3339 only.
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
# What the original client's `logs` sends: INFO|WARN|ERROR, 50 a page, no timeout.
ORIGINAL_LOGS_QUERY = {"from": 0, "levels": 14, "size": 50}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class OriginalClient:
    """Sends requests as the original client's Go code writes them on the wire."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.host, self.port = "127.0.0.1", server.port
        self.token = token

    def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        # net/http writes Host, User-Agent, Content-Length (when there is a body, and
        # always for POST), then the request's own headers sorted by name, then the
        # transport's Accept-Encoding. h11 writes headers as given, in this order.
        headers = [("Host", f"{self.host}:{self.port}"), ("User-Agent", "Go-http-client/1.1")]
        if body is not None or method == "POST":
            headers.append(("Content-Length", str(len(body or b""))))
        headers += [("Accept", "application/json"), ("Authorization", f"Bearer {self.token}")]
        headers.append(("Accept-Encoding", "gzip"))
        connection = h11.Connection(h11.CLIENT)
        raw = connection.send(h11.Request(method=method, target=path, headers=headers))
        if body:
            raw += connection.send(h11.Data(data=body))
        raw += connection.send(h11.EndOfMessage())
        assert b"content-type" not in raw.lower()
        with socket.create_connection((self.host, self.port), timeout=90) as sock:
            sock.sendall(raw)
            status, answer_headers, answer_body = 0, {}, b""
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(sock.recv(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    answer_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    answer_body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return Answer(status, answer_headers, answer_body)

    # The original's api package, call by call.
    def key_gen(self, metadata: dict[str, str] | None) -> Answer:
        # SSHKeyGenerationRequest: `metadata,omitempty`
        body = {"metadata": metadata} if metadata else {}
        return self.request("POST", "/ssh_keys", json.dumps(body, separators=(",", ":")).encode())

    def list_workflows(self) -> Answer:
        return self.request("GET", "/workflows")

    def trigger(self, workflow_id: str, inputs: dict[str, str] | None) -> Answer:
        # WorkflowInputs: `inputs` without omitempty, so null when no -i was given
        body = json.dumps({"inputs": inputs}, separators=(",", ":")).encode()
        return self.request("POST", f"/workflows/{workflow_id}", body)

    def status(self, execution_id: str) -> Answer:
        return self.request("GET", f"/executions/{execution_id}")

    def logs(self, execution_id: str, start: int) -> Answer:
        query = urlencode({**ORIGINAL_LOGS_QUERY, "from": start})
        return self.request("GET", f"/executions/{execution_id}/logs?{query}")

    def cancel(self, execution_id: str) -> Answer:
        return self.request("DELETE", f"/executions/{execution_id}")


@pytest.fixture
def original(server: LiveServer, user: str) -> OriginalClient:
    return OriginalClient(server, server.token(user))


def _execution_id(answer: Answer) -> str:
    assert answer.status == 201, answer
    # The original client takes path.Base of Location.
    location = answer.headers["location"]
    assert location.startswith("/executions/")
    return location.rsplit("/", 1)[1]


def _check_logs_shape(body: dict[str, Any]) -> None:
    assert set(body) >= {"logs", "total_results", "from"}
    assert isinstance(body["total_results"], int) and isinstance(body["from"], int)
    for entry in body["logs"]:
        assert entry["level"] in {"DEBUG", "INFO", "WARN", "ERROR"}
        assert RFC3339.match(entry["timestamp"]), entry
        assert isinstance(entry["content"], str)


def test_the_original_clients_whole_journey(server: LiveServer, original: OriginalClient) -> None:
    made = original.key_gen(None)
    assert made.status == 201, made
    key = made.json()
    assert key["public_key"].startswith("ssh-rsa ") and uuid.UUID(key["id"])

    tagged = original.key_gen({"site": "mn5", "project": "a,b"})
    assert tagged.status == 201, tagged
    with server.client(original.token) as api:
        listed = {k["id"]: k for k in api.get("/ssh_keys").json()["ssh_keys"]}
    assert listed[tagged.json()["id"]]["metadata"] == {"site": "mn5", "project": "a,b"}

    workflows = original.list_workflows()
    assert workflows.status == 200
    ids = [w["id"] for w in workflows.json()["workflows"]]
    assert "demo@local@hello" in ids and "demo@local@sleep" in ids

    # trigger without -i: {"inputs":null}
    hello = _execution_id(original.trigger("demo@local@hello", None))
    # and with -i name=Ada
    named = _execution_id(original.trigger("demo@local@hello", {"name": "Ada"}))
    with server.client(original.token) as api:
        wait_for_status(api, named, {"SUCCEEDED"})
        wait_for_status(api, hello, {"SUCCEEDED"})

    status = original.status(named)
    assert status.status == 200
    assert status.json()["id"] == named and status.json()["status"] == "SUCCEEDED"

    logs = original.logs(named, 0)
    assert logs.status == 200
    _check_logs_shape(logs.json())
    contents = [entry["content"] for entry in logs.json()["logs"]]
    assert "Hello, Ada!" in contents
    assert logs.json()["from"] == 0

    sleeping = _execution_id(original.trigger("demo@local@sleep", None))
    cancelled = original.cancel(sleeping)
    assert cancelled.status == 202 and cancelled.body == b""
    with server.client(original.token) as api:
        wait_for_status(api, sleeping, {"CANCELLED"})
    # The original's follow loop stops once the status no longer ends in "ing".
    assert not original.status(sleeping).json()["status"].lower().endswith("ing")


def test_the_original_clients_errors_come_in_its_envelope(original: OriginalClient) -> None:
    unknown = original.status(str(uuid.uuid4()))
    assert unknown.status == 404
    (item,) = unknown.json()["errors"]
    assert set(item) >= {"id", "status", "title", "detail"} and item["id"] == "not_found"
    refused = original.trigger("demo@local@hello", {"nope": "1"})
    assert refused.status == 400
    assert "nope" in refused.json()["errors"][0]["detail"]


def test_curl_dash_d_triggers_whatever_its_content_type(server: LiveServer, user: str) -> None:
    token = server.token(user)
    command = [
        "curl", "-sS", "-o", "/dev/null", "-D", "-",
        "-H", f"Authorization: Bearer {token}",
        "-d", '{"inputs":{"name":"curl"}}',
        f"{server.url}/workflows/demo@local@hello",
    ]  # fmt: skip
    headers = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert headers.startswith("HTTP/1.1 201"), headers
    location = re.search(r"(?im)^location: (\S+)", headers)
    assert location is not None
    with server.client(token) as api:
        done = wait_for_status(api, location.group(1).rsplit("/", 1)[1], {"SUCCEEDED"})
        logs = api.get(f"/executions/{done['id']}/logs", params={"timeout": "0s"}).json()
    assert "Hello, curl!" in [entry["content"] for entry in logs["logs"]]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://elsewhere.example"},
        {"Origin": "https://elsewhere.example", "Content-Type": "text/plain"},
        {"Origin": "https://elsewhere.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/x-www-form-urlencoded"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_post_from_another_sites_page_is_refused_and_records_nothing(
    server: LiveServer, user: str, headers: dict[str, str]
) -> None:
    token = server.token(user)
    with server.client(token) as api:
        before = api.get("/executions").json()["executions"]
        for path, body in (
            ("/workflows/demo@local@hello", b'{"inputs":{"name":"x"}}'),
            ("/ssh_keys", b"{}"),
        ):
            refused = api.post(path, content=body, headers=headers)
            item = envelope_item(refused, 403)
            assert "another site" in item["detail"]
        assert api.get("/executions").json()["executions"] == before
        assert api.get("/ssh_keys").json()["ssh_keys"] == []
        # Cancels and deletes too.
        assert api.delete(f"/executions/{uuid.uuid4()}", headers=headers).status_code == 403


def test_the_servers_own_pages_may_post(server: LiveServer, user: str) -> None:
    with server.client(server.token(user)) as api:
        own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        made = api.post("/ssh_keys", json={}, headers=own)
        assert made.status_code == 201, made.text


def test_the_original_rest_documentation_examples(server: LiveServer, user: str) -> None:
    """The requests of the original's REST API page, as its examples show them."""
    with server.client(server.token(user)) as api:
        listed = api.get("/workflows")
        assert listed.status_code == 200
        assert listed.headers["content-type"] == "application/json"
        for workflow in listed.json()["workflows"]:
            assert set(workflow) >= set(WORKFLOW_FIELDS)
        triggered = api.post("/workflows/demo@local@hello", json={"inputs": {"name": ""}})
        assert triggered.status_code == 201 and triggered.content == b""
        execution_id = triggered.headers["location"].removeprefix("/executions/")
        status = api.get(f"/executions/{execution_id}")
        assert status.status_code == 200 and status.json()["id"] == execution_id
        logs = api.get(
            f"/executions/{execution_id}/logs",
            params={"from": 0, "timeout": "1m", "size": -1, "levels": 0},
        )
        assert logs.status_code == 200
        _check_logs_shape(logs.json())
        assert api.delete(f"/executions/{execution_id}").status_code in (202, 409)
        # "The request body is fully optional."
        made = api.post("/ssh_keys")
        assert made.status_code == 201 and set(made.json()) == {"id", "public_key"}
        documented = api.post("/ssh_keys", json={"metadata": {"key1": "value1", "key2": "value2"}})
        assert documented.status_code == 201


def test_the_original_logs_follow_loop_is_paced_on_an_ended_execution(
    original: OriginalClient, server: LiveServer
) -> None:
    """The original's `logs -f` asks again at once, forever: on an ended execution with
    nothing new, each answer comes after one second, so it sends about one request a second.
    """
    execution_id = _execution_id(original.trigger("demo@local@hello", {"name": "loop"}))
    with server.client(original.token) as api:
        wait_for_status(api, execution_id, {"SUCCEEDED"})
    position = 0
    requests = 0
    started = time.monotonic()
    while time.monotonic() - started < 10:
        page = original.logs(execution_id, position)
        assert page.status == 200
        requests += 1
        position += len(page.json()["logs"])
    rate = requests / (time.monotonic() - started)
    # One request brought the entries at once; each of the others waited a second.
    assert 6 <= requests <= 12, requests
    assert rate <= 1.2, rate
    # hpcwaas's own client sends a timeout, and is answered at once.
    with server.client(original.token) as api:
        began = time.monotonic()
        quick = api.get(
            f"/executions/{execution_id}/logs", params={"from": position, "timeout": "30s"}
        )
        assert quick.status_code == 200 and quick.json()["logs"] == []
        assert time.monotonic() - began < 0.9
