"""The REST contract of /workflows: shapes, codes, headers, bad input."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from tests.conftest import envelope_items, wait_for_status
from tests.inprocess_support import InProcessServer

WORKFLOW_KEYS = {"id", "name", "application_id", "environment_id", "environment_name"}


def test_list_workflows_returns_the_original_shape_with_the_demo_ids(api: httpx.Client) -> None:
    response = api.get("/workflows")
    assert response.status_code == 200
    workflows = response.json()["workflows"]
    ids = [w["id"] for w in workflows]
    assert {"demo@local@hello", "demo@local@sweep", "demo@local@sleep"} <= set(ids)
    assert ids == sorted(ids)
    hello = next(w for w in workflows if w["id"] == "demo@local@hello")
    assert WORKFLOW_KEYS <= set(hello)
    assert hello["name"] == "hello"
    assert hello["application_id"] == "demo"
    assert hello["environment_id"] == "local"


def test_list_workflows_paginates_with_limit_and_cursor(api: httpx.Client) -> None:
    everything = [w["id"] for w in api.get("/workflows").json()["workflows"]]
    first = api.get("/workflows", params={"limit": 2}).json()
    assert [w["id"] for w in first["workflows"]] == everything[:2]
    second = api.get("/workflows", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [w["id"] for w in second["workflows"]] == everything[2:4]


def test_show_workflow_gives_its_input_schema(api: httpx.Client) -> None:
    body = api.get("/workflows/demo@local@sweep").json()
    inputs = {i["name"]: i for i in body["inputs"]}
    assert inputs["n"]["type"] == "integer"
    assert inputs["n"]["default"] == 3
    assert inputs["mode"]["values"] == ["fast", "accurate"]
    assert body["steps"][0] == "prepare"


def test_trigger_returns_201_with_location_and_an_empty_body(api: httpx.Client) -> None:
    response = api.post("/workflows/demo@local@hello", json={"inputs": {"name": "Ada"}})
    assert response.status_code == 201
    assert response.content == b""
    match = re.fullmatch(r"/executions/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    body = wait_for_status(api, match.group(1), {"SUCCEEDED", "FAILED"})
    assert body["status"] == "SUCCEEDED"


def test_trigger_without_body_uses_the_defaults(api: httpx.Client) -> None:
    response = api.post("/workflows/demo@local@hello")
    assert response.status_code == 201


def _errors(response: httpx.Response) -> list[dict[str, object]]:
    return envelope_items(response, response.status_code)


def test_malformed_workflow_id_is_a_400_that_shows_the_expected_form(api: httpx.Client) -> None:
    response = api.post("/workflows/not-an-id", json={"inputs": {}})
    assert response.status_code == 400
    [error] = _errors(response)
    assert error["id"] == "bad_request"
    assert "<application>@<environment>@<workflow>" in str(error["detail"])


def test_unknown_workflow_is_a_404(api: httpx.Client) -> None:
    response = api.post("/workflows/demo@local@nope", json={"inputs": {}})
    assert response.status_code == 404
    assert _errors(response)[0]["id"] == "not_found"


def test_bad_inputs_are_all_reported_at_once_and_nothing_is_recorded(api: httpx.Client) -> None:
    before = api.get("/executions").json()["executions"]
    response = api.post(
        "/workflows/demo@local@sweep",
        json={"inputs": {"n": "many", "mode": "slow", "colour": "red"}},
    )
    assert response.status_code == 400
    details = " | ".join(str(e["detail"]) for e in _errors(response))
    for name in ("n", "mode", "colour"):
        assert name in details
    assert api.get("/executions").json()["executions"] == before


def test_a_lone_surrogate_in_an_input_is_a_400_naming_it_and_nothing_is_recorded(
    api: httpx.Client,
) -> None:
    before = api.get("/executions").json()["executions"]
    # JSON can carry half of a UTF-16 pair alone; sent as written, escapes and all.
    for workflow, name, raw in [
        ("demo@local@hello", "name", '"a\\ud800b"'),
        ("demo@local@sweep", "label", '"\\udfff"'),
        ("demo@local@sweep", "n", '"\\ud800"'),
        ("demo@local@sweep", "mode", '"\\ud800"'),
    ]:
        response = api.post(
            f"/workflows/{workflow}",
            content=f'{{"inputs": {{"{name}": {raw}}}}}'.encode("ascii"),
            headers={"Content-Type": "application/json"},
        )
        [item] = envelope_items(response, 400)
        assert item["source"] == {"input": name}, item
        assert item["detail"].startswith(f"input {name!r}: "), item
    assert api.get("/executions").json()["executions"] == before


def test_malformed_json_is_a_400_in_the_envelope(api: httpx.Client) -> None:
    response = api.post(
        "/workflows/demo@local@hello",
        content=b'{"inputs": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "JSON" in str(_errors(response)[0]["detail"])


def test_unknown_body_field_is_a_400(api: httpx.Client) -> None:
    response = api.post("/workflows/demo@local@hello", json={"input": {"name": "x"}})
    assert response.status_code == 400
    assert "input" in str(_errors(response)[0]["detail"])


def test_oversized_body_is_a_413(api: httpx.Client) -> None:
    response = api.post(
        "/workflows/demo@local@hello", json={"inputs": {"name": "x" * (2 * 1024 * 1024)}}
    )
    assert response.status_code == 413
    assert _errors(response)[0]["id"] == "payload_too_large"


def test_unknown_route_gets_the_envelope(api: httpx.Client) -> None:
    response = api.get("/nowhere")
    assert response.status_code == 404
    assert _errors(response)[0]["id"] == "not_found"


RESTRICTED = """
application: private
environments: [local]
expose: [open]
access: {users: [alice]}
workflows:
  open:
    steps:
      hi: {kind: shell, run: echo hi}
  hidden:
    steps:
      hi: {kind: shell, run: echo hidden}
"""


def test_access_list_and_exposure_decide_who_sees_and_triggers(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "private.yaml").write_text(RESTRICTED)
    server = fresh_server(catalog_dirs=[catalog])
    with server.client(server.token("alice")) as alice:
        ids = [w["id"] for w in alice.get("/workflows").json()["workflows"]]
        assert ids == ["private@local@open"]
        assert alice.post("/workflows/private@local@open").status_code == 201
        hidden = alice.post("/workflows/private@local@hidden")
        assert hidden.status_code == 404
    with server.client(server.token("bob")) as bob:
        assert bob.get("/workflows").json()["workflows"] == []
        refused = bob.post("/workflows/private@local@open")
        assert refused.status_code == 403
        assert _errors(refused)[0]["id"] == "forbidden"
