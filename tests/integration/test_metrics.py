"""/metrics (Prometheus), request IDs and the access log, against a real server."""

from __future__ import annotations

import re
import time

import httpx
from tests.conftest import LiveServer, wait_for_status


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_by_route_and_executions_by_status(
    server: LiveServer, api: httpx.Client
) -> None:
    response = api.post("/workflows/demo@local@hello", json={"inputs": {"name": "Ada"}})
    assert response.status_code == 201, response.text
    execution_id = response.headers["location"].rsplit("/", 1)[1]
    wait_for_status(api, execution_id, {"SUCCEEDED"})
    assert api.get("/workflows").status_code == 200
    assert api.get("/no/such/route").status_code == 404

    scrape = httpx.get(server.url + "/metrics", timeout=30)  # public by default
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert (
        _sample(
            text,
            "hpcwaas_http_requests_total",
            route="/executions/{execution_id}",
            method="GET",
            status="200",
        )
        >= 1
    )
    assert (
        _sample(
            text,
            "hpcwaas_http_requests_total",
            route="/workflows/{workflow_id}",
            method="POST",
            status="201",
        )
        >= 1
    )
    assert _sample(text, "hpcwaas_http_requests_total", route="/workflows", method="GET") >= 1
    assert _sample(text, "hpcwaas_http_requests_total", route="unmatched", status="404") >= 1
    assert _sample(text, "hpcwaas_http_request_duration_seconds_count", route="/workflows") >= 1
    assert _sample(text, "hpcwaas_executions", status="SUCCEEDED") >= 1
    for name in (
        "hpcwaas_ssh_connections_opened_total",
        "hpcwaas_ssh_connection_failures_total",
        "hpcwaas_logs_long_polls_waiting",
    ):
        assert re.search(rf"^{name} ", text, re.MULTILINE), name


def _log_line_with(server: LiveServer, needle: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            line
            for line in server.log_path.read_text(errors="replace").splitlines()
            if needle in line
        ]
        if lines or time.monotonic() > deadline:
            return "\n".join(lines)
        time.sleep(0.05)


def test_request_id_is_echoed_and_logged_on_the_request_line(
    server: LiveServer, api: httpx.Client
) -> None:
    response = api.get("/workflows", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-123"
    line = _log_line_with(server, "abc-123")
    assert "GET /workflows 200" in line, line
    assert "authorization" not in line.lower()


def test_request_id_on_errors_and_query_string_not_logged(
    server: LiveServer, api: httpx.Client
) -> None:
    response = api.get(
        "/executions/nope/logs?timeout=bogus-secret", headers={"X-Request-ID": "err.req_42"}
    )
    assert response.status_code in (400, 404)
    assert response.headers["x-request-id"] == "err.req_42"
    line = _log_line_with(server, "err.req_42")
    assert "/executions/nope/logs" in line
    assert "bogus-secret" not in line


def test_bad_request_id_is_replaced_by_a_generated_one(
    server: LiveServer, api: httpx.Client
) -> None:
    for bad in ("has space", "x" * 129, "semi;colon", ""):
        response = api.get("/workflows", headers={"X-Request-ID": bad})
        generated = response.headers["x-request-id"]
        assert generated != bad
        assert re.fullmatch(r"[0-9a-f]{32}", generated), generated
    missing = httpx.get(server.url + "/healthz", timeout=30)
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["x-request-id"])


def test_metrics_token_restricts_the_scrape(fresh_server: LiveServer) -> None:
    fresh_server.env["HPCWAAS_METRICS_TOKEN"] = "scrape-s3cret"
    fresh_server.env["HPCWAAS_LOG_FORMAT"] = "json"
    fresh_server.start()
    url = fresh_server.url + "/metrics"
    denied = httpx.get(url, timeout=30)
    assert denied.status_code == 401
    assert denied.json()["errors"][0]["id"] == "unauthorized"
    assert denied.headers["x-request-id"]
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401
    allowed = httpx.get(url, headers={"Authorization": "Bearer scrape-s3cret"}, timeout=30)
    assert allowed.status_code == 200
    assert "hpcwaas_http_requests_total" in allowed.text
    line = _log_line_with(fresh_server, '"request_id"')
    assert '"logger": "hpcwaas.access"' in line, line
    assert "scrape-s3cret" not in fresh_server.log_path.read_text()


def test_metrics_count_steps_and_key_store_calls_and_logs_carry_the_request_id(
    server: LiveServer, api: httpx.Client
) -> None:
    response = api.post(
        "/workflows/demo@local@hello",
        json={"inputs": {"name": "Ada"}},
        headers={"X-Request-ID": "trigger-req-7"},
    )
    assert response.status_code == 201, response.text
    execution_id = response.headers["location"].rsplit("/", 1)[1]
    wait_for_status(api, execution_id, {"SUCCEEDED"})
    assert api.post("/ssh_keys").status_code == 201

    text = httpx.get(server.url + "/metrics", timeout=30).text
    assert _sample(text, "hpcwaas_steps", kind="shell", state="SUCCEEDED") >= 1
    assert _sample(text, "hpcwaas_key_store_calls_total", operation="put") >= 1
    assert re.search(r"^hpcwaas_ssh_connections_open ", text, re.MULTILINE)

    logs = api.get(f"/executions/{execution_id}/logs", params={"levels": 15}).json()["logs"]
    debug = [entry["content"] for entry in logs if entry["level"] == "DEBUG"]
    assert any("(request trigger-req-7)" in line for line in debug), debug
    default = api.get(f"/executions/{execution_id}/logs").json()["logs"]
    assert not any("trigger-req-7" in entry["content"] for entry in default)
