"""A workflow's `secrets:` on the `local` environment of a real server with the embedded key
store: the operator stores the value with `hpcwaas-api secrets put`, the step sees it in its
environment, and it appears nowhere else (responses, logs, server log, database, data files).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator

import pytest
from tests.conftest import LiveServer, free_port, wait_for_status

APP = """
application: sec
environments: [local]
expose: [use, missing]
workflows:
  use:
    secrets:
      token: {path: apps/sec/api, key: token}
    steps:
      show:
        kind: shell
        env: {TOKEN: "{{ secrets.token }}"}
        outputs: [echoed]
        run: |
          printf '%s' "$TOKEN" | sha256sum
          echo "the token is $TOKEN"
          echo "echoed=$TOKEN" >> "$HPCWAAS_OUTPUTS"
  missing:
    secrets:
      token: {path: apps/sec/none, key: token}
    steps:
      show: {kind: shell, env: {TOKEN: "{{ secrets.token }}"}, run: 'true'}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("secrets")
    catalog = root / "catalog"
    catalog.mkdir()
    (catalog / "sec.yaml").write_text(APP)
    config = root / "config.json"
    config.write_text(json.dumps({"catalog_dirs": [str(catalog)]}))
    server = LiveServer(root / "data", free_port(), extra_args=["--config", str(config)]).start()
    yield server
    server.stop()


def test_key_store_secret_reaches_the_step_environment_and_nothing_else(live: LiveServer) -> None:
    canary = "canary-" + secrets.token_hex(16)
    stored = live.admin("secrets", "put", "apps/sec/api", "token", input_text=canary + "\n")
    assert stored.returncode == 0, stored.stderr
    assert canary not in stored.stdout + stored.stderr
    seen: list[str] = []
    with live.client(live.token("sec")) as api:
        api.event_hooks["response"] = [lambda r: seen.append(r.read().decode())]
        plan = api.post("/workflows/sec@local@use", params={"dry_run": "true"}, json={})
        assert plan.status_code == 200, plan.text
        assert plan.json()["steps"][0]["env"]["TOKEN"] == "[secret]"
        response = api.post("/workflows/sec@local@use", json={"inputs": {}})
        assert response.status_code == 201, response.text
        execution_id = response.headers["Location"].rsplit("/", 1)[-1]
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "SUCCEEDED", body
        logs = api.get(f"/executions/{execution_id}/logs", params={"levels": 15}).json()
        lines = [entry["content"] for entry in logs["logs"]]
        # the step had the value: it printed its digest; the value itself is masked
        assert f"{hashlib.sha256(canary.encode()).hexdigest()}  -" in lines
        assert "the token is [secret]" in lines
        [show] = [s for s in body["steps"] if s["name"] == "show"]
        assert show["outputs"] == {"echoed": "[secret]"}
    assert seen and not any(canary in text for text in seen)
    assert canary not in live.log_path.read_text()
    work = live.data_dir / "work"  # the step's own files: it wrote the value there itself
    for path in live.data_dir.rglob("*"):
        if path.is_file() and work not in path.parents:
            assert canary.encode() not in path.read_bytes(), path


def test_a_secret_missing_from_the_key_store_fails_the_execution_saying_how_to_add_it(
    live: LiveServer,
) -> None:
    with live.client(live.token("sec")) as api:
        response = api.post("/workflows/sec@local@missing", json={"inputs": {}})
        assert response.status_code == 201, response.text
        execution_id = response.headers["Location"].rsplit("/", 1)[-1]
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "FAILED"
        logs = api.get(f"/executions/{execution_id}/logs", params={"levels": 15}).json()
        text = "\n".join(entry["content"] for entry in logs["logs"])
        assert "secret 'token': the key store has no entry at path 'apps/sec/none'" in text
        assert "hpcwaas-api secrets put apps/sec/none token" in text


def test_secrets_put_refuses_a_path_the_service_keeps_for_itself(live: LiveServer) -> None:
    result = live.admin("secrets", "put", "ssh-credentials/x", "privateKey", input_text="v\n")
    assert result.returncode == 1
    assert "kept by the service for itself" in result.stderr
