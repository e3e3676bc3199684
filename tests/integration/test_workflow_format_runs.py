"""The format's additions, run for real on the `local` environment of a real server.

Retries (attempts visible on the step), step outputs flowing into a later step, on_failure
steps (run after a failure, not after a cancel), secret inputs (never in the database, the
responses, the logs or the server log), ssh_key and path inputs, and the public schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import LiveServer, free_port, wait_for_status

from hpcwaas.engine.secret_inputs import secret_inputs_path
from hpcwaas.secrets.embedded import EmbeddedKeyStore, load_or_create_master_key
from hpcwaas.store.database import Database

APP = """
application: fmt
environments: [local]
expose: [flaky, relay, broken, slow, vault, keyed]
workflows:
  flaky:
    steps:
      try:
        kind: shell
        retries: 2
        retry_delay: 0.2
        run: test -f marker || { touch marker; echo first attempt fails; exit 3; }
  relay:
    steps:
      make:
        kind: shell
        outputs: [greeting]
        run: echo "greeting=hello world; it's me" >> "$HPCWAAS_OUTPUTS"
      use:
        kind: shell
        needs: [make]
        run: printf '%s\\n' {{ steps.make.outputs.greeting }} > got.txt
    outputs:
      got: {step: use, path: got.txt}
  broken:
    inputs:
      tag: {type: string, default: run-42}
    steps:
      main: {kind: shell, run: exit 4}
    on_failure:
      note:
        kind: shell
        retries: 1
        retry_delay: 0.1
        run: test -f noted || { touch noted; exit 1; }; echo cleaning {{ inputs.tag }}
      fails_too: {kind: shell, needs: [note], run: exit 9}
  slow:
    steps:
      wait: {kind: shell, run: sleep 30}
    on_failure:
      note: {kind: shell, run: echo cleanup ran}
  vault:
    inputs:
      token: {type: secret, min_length: 8}
    steps:
      use:
        kind: shell
        env: {TOKEN: "{{ inputs.token }}"}
        run: printf '%s' "$TOKEN" | sha256sum; echo "the token is $TOKEN"
  keyed:
    inputs:
      key: {type: ssh_key}
      where: {type: path}
    steps:
      show: {kind: shell, run: "echo {{ inputs.key }} {{ inputs.where }}"}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("format")
    catalog = root / "catalog"
    catalog.mkdir()
    (catalog / "fmt.yaml").write_text(APP)
    config = root / "config.json"
    config.write_text(json.dumps({"catalog_dirs": [str(catalog)]}))
    server = LiveServer(root / "data", free_port(), extra_args=["--config", str(config)]).start()
    yield server
    server.stop()


def client(live: LiveServer, user: str) -> httpx.Client:
    return live.client(live.token(user))


def trigger(api: httpx.Client, workflow: str, inputs: dict[str, object] | None = None) -> str:
    response = api.post(f"/workflows/fmt@local@{workflow}", json={"inputs": inputs or {}})
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def logs(api: httpx.Client, execution_id: str) -> list[str]:
    body = api.get(f"/executions/{execution_id}/logs", params={"levels": 15, "timeout": "1s"})
    return [entry["content"] for entry in body.json()["logs"]]


def step(body: dict[str, object], name: str) -> dict[str, object]:
    steps = body["steps"]
    assert isinstance(steps, list)
    return next(s for s in steps if s["name"] == name)


def test_failed_step_is_retried_and_its_attempts_are_shown(live: LiveServer) -> None:
    with client(live, "ret") as api:
        execution_id = trigger(api, "flaky")
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "SUCCEEDED"
        assert step(body, "try")["attempts"] == 2
        lines = logs(api, execution_id)
        assert "first attempt fails" in lines
        assert any("failed with exit code 3 (attempt 1 of 3)" in line for line in lines)
        assert "Step try: attempt 2 of 3" in lines


def test_step_output_flows_quoted_into_a_later_step(live: LiveServer) -> None:
    with client(live, "rel") as api:
        execution_id = trigger(api, "relay")
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "SUCCEEDED", logs(api, execution_id)
        # one shell word: the space, the ';' and the quote reached the command as text
        assert body["outputs"] == {"got": "hello world; it's me\n"}
        assert step(body, "make")["outputs"] == {"greeting": "hello world; it's me"}


def test_on_failure_steps_run_after_a_failure_and_keep_its_error(live: LiveServer) -> None:
    with client(live, "clean") as api:
        execution_id = trigger(api, "broken")
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "FAILED"
        assert body["error"] == "step main failed with exit code 4"
        deadline = time.monotonic() + 10
        while "Execution failed" not in " ".join(lines := logs(api, execution_id)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "cleaning run-42" in lines
        assert "Cleanup step note: attempt 2 of 2" in lines
        assert "Cleanup step fails_too failed with exit code 9" in lines
        assert [s["name"] for s in body["steps"]] == ["main"]  # type: ignore[union-attr]


def test_on_failure_steps_do_not_run_on_cancel(live: LiveServer) -> None:
    with client(live, "cancel") as api:
        execution_id = trigger(api, "slow")
        wait_for_status(api, execution_id, {"RUNNING"})
        time.sleep(0.3)
        assert api.delete(f"/executions/{execution_id}").status_code == 202
        wait_for_status(api, execution_id, {"CANCELLED"})
        lines = logs(api, execution_id)
        assert "cleanup ran" not in lines
        assert not any("on_failure" in line for line in lines)


def test_secret_input_reaches_the_step_and_nothing_else(live: LiveServer) -> None:
    canary = "canary-" + secrets.token_hex(16)
    seen: list[str] = []
    with client(live, "sec") as api:
        api.event_hooks["response"] = [lambda r: seen.append(r.read().decode())]
        execution_id = trigger(api, "vault", {"token": canary})
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "SUCCEEDED"
        lines = logs(api, execution_id)
        # the step had the value: it printed its digest, and the value itself masked
        assert f"{hashlib.sha256(canary.encode()).hexdigest()}  -" in lines
        assert "the token is [secret]" in lines
        api.get("/executions", params={"limit": 50})
        refused = api.post("/workflows/fmt@local@vault", json={"inputs": {"token": "short"}})
        assert refused.status_code == 400
    assert seen and not any(canary in text for text in seen)
    assert canary not in live.log_path.read_text()
    for path in live.data_dir.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    # the key store kept it for the execution only
    assert asyncio.run(_stored_secret(live, execution_id)) is None


async def _stored_secret(live: LiveServer, execution_id: str) -> dict[str, str] | None:
    db = Database(f"sqlite+aiosqlite:///{live.data_dir / 'hpcwaas.sqlite3'}")
    store = EmbeddedKeyStore(db, load_or_create_master_key(live.data_dir / "master.key"))
    try:
        return await store.get(secret_inputs_path(execution_id))
    finally:
        await db.dispose()


def test_ssh_key_input_must_be_one_of_the_callers_keys(live: LiveServer) -> None:
    with client(live, "owner") as owner, client(live, "other") as other:
        key_id = owner.post("/ssh_keys").json()["id"]
        inputs = {"key": key_id, "where": "/scratch/run 1"}
        refused = other.post("/workflows/fmt@local@keyed", json={"inputs": inputs})
        # Someone else's key gets the answer an unknown one gets: IDs leak nothing.
        assert refused.status_code == 400
        assert "key-gen" in refused.json()["errors"][0]["detail"]
        missing = other.post(
            "/workflows/fmt@local@keyed", json={"inputs": {**inputs, "key": "no-such-key"}}
        )
        assert missing.status_code == 400
        assert "key-gen" in missing.json()["errors"][0]["detail"]
        execution_id = trigger(owner, "keyed", inputs)
        body = wait_for_status(owner, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "SUCCEEDED"
        assert f"{key_id} /scratch/run 1" in logs(owner, execution_id)


def test_path_input_with_a_line_break_is_a_clear_400(live: LiveServer) -> None:
    with client(live, "paths") as api:
        key_id = api.post("/ssh_keys").json()["id"]
        response = api.post(
            "/workflows/fmt@local@keyed", json={"inputs": {"key": key_id, "where": "a\nb"}}
        )
        assert response.status_code == 400
        assert "line break" in response.json()["errors"][0]["detail"]


def test_workflow_schema_is_public(live: LiveServer) -> None:
    response = httpx.get(live.url + "/schemas/workflow.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema["$id"] == "/schemas/workflow.json"
    assert "on_failure" in schema["$defs"]["WorkflowSpec"]["properties"]
