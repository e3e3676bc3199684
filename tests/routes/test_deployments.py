"""An application's deployment: run once per environment before its executions, again when
the file changes or an operator asks; its outputs reach the workflows; operators see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from tests.conftest import trigger, wait_for_status
from tests.inprocess_support import InProcessServer

OPERATOR = "olga"

# The deployment counts its runs in a file of the test's, and leaves a value for the workflow.
APP = """\
application: tool
environments: [local]
expose: [use]
deployment:
  steps:
    install:
      kind: shell
      outputs: [tool_dir]
      run: |
        echo run >> {counter}
        echo "installing version {version}"
        {extra}
        echo "tool_dir=/opt/tool-{version}" >> "$HPCWAAS_OUTPUTS"
workflows:
  use:
    steps:
      run:
        kind: shell
        run: echo using {{{{ deployment.outputs.install.tool_dir }}}}
"""


def _write(catalog: Path, counter: Path, *, version: str = "1", extra: str = "true") -> None:
    text = APP.format(counter=counter, version=version, extra=extra)
    (catalog / "tool.yaml").write_text(text)


def _start(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path, **file: str
) -> tuple[InProcessServer, Path, Path]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    counter = tmp_path / "runs"
    _write(catalog, counter, **file)
    server = fresh_server(catalog_dirs=[catalog], operators={"users": [OPERATOR]})
    return server, catalog, counter


def _logs(api: httpx.Client, execution_id: str) -> list[str]:
    body = api.get(f"/executions/{execution_id}/logs").json()
    return [entry["content"] for entry in body["logs"]]


def _reload(server: InProcessServer) -> None:
    runtime = server.on_loop(lambda: server._app.state.runtime)  # noqa: SLF001
    runtime.live_catalog.reload()


def test_deployment_runs_once_for_two_executions_and_its_output_reaches_the_steps(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, _, counter = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        first = trigger(api, "tool@local@use")
        second = trigger(api, "tool@local@use")
        for execution_id in (first, second):
            body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
            assert body["status"] == "SUCCEEDED", body
            assert "using /opt/tool-1" in _logs(api, execution_id)
    assert counter.read_text() == "run\n"


def test_deployment_runs_again_after_the_file_changed(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, catalog, counter = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        wait_for_status(api, trigger(api, "tool@local@use"), {"SUCCEEDED"})
        _write(catalog, counter, version="2")
        _reload(server)
        execution_id = trigger(api, "tool@local@use")
        wait_for_status(api, execution_id, {"SUCCEEDED"})
        assert "using /opt/tool-2" in _logs(api, execution_id)
    assert counter.read_text() == "run\nrun\n"


def test_an_execution_waits_for_a_running_deployment(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    wait = f"while [ ! -e {gate} ]; do sleep 0.1; done"
    server, _, _ = _start(fresh_server, tmp_path, extra=wait)
    with server.client(server.token("ada")) as api:
        execution_id = trigger(api, "tool@local@use")
        with server.client(server.token(OPERATOR)) as operator:
            _wait_deployment(operator, {"RUNNING"})
        assert api.get(f"/executions/{execution_id}").json()["status"] == "PENDING"
        assert any(
            "Waiting for the deployment of tool on local" in line
            for line in _logs(api, execution_id)
        )
        gate.touch()
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "SUCCEEDED", body


def test_a_failing_deployment_fails_the_execution_with_its_error_until_run_again(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, _, counter = _start(fresh_server, tmp_path, extra="exit 7")
    with server.client(server.token("ada")) as api:
        body = wait_for_status(api, trigger(api, "tool@local@use"), {"SUCCEEDED", "FAILED"})
        assert body["status"] == "FAILED"
        assert str(body["error"]).startswith("the deployment of tool on local failed: ")
        # A failed deployment is not retried by triggers: the operator runs it again.
        body = wait_for_status(api, trigger(api, "tool@local@use"), {"SUCCEEDED", "FAILED"})
        assert body["status"] == "FAILED"
    assert counter.read_text() == "run\n"
    with server.client(server.token(OPERATOR)) as operator:
        again = operator.post("/deployments/tool/local")
        assert again.status_code == 201, again.text
        _wait_deployment(operator, {"FAILED"})
    assert counter.read_text() == "run\nrun\n"


def test_operators_see_the_deployment_and_its_logs(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, _, _ = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        wait_for_status(api, trigger(api, "tool@local@use"), {"SUCCEEDED"})
    with server.client(server.token(OPERATOR)) as operator:
        listed = operator.get("/deployments").json()["deployments"]
        assert [(d["application_id"], d["environment_id"], d["status"]) for d in listed] == [
            ("tool", "local", "SUCCEEDED")
        ]
        shown = operator.get("/deployments/tool/local").json()
        assert shown["execution_id"] == listed[0]["execution_id"]
        assert shown["requested_by"] == "trigger"
        execution = operator.get(f"/executions/{shown['execution_id']}").json()
        assert [step["name"] for step in execution["steps"]] == ["install"]
        assert "installing version 1" in _logs(operator, shown["execution_id"])
        missing = operator.get("/deployments/tool/elsewhere")
        assert missing.status_code == 404


def test_a_user_who_is_not_an_operator_cannot_see_deployments(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, _, _ = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        wait_for_status(api, trigger(api, "tool@local@use"), {"SUCCEEDED"})
        assert api.get("/deployments").status_code == 403
        assert api.get("/deployments/tool/local").status_code == 403
        assert api.post("/deployments/tool/local").status_code == 403
        listed = api.get("/executions").json()["executions"]
        assert [e["workflow_id"] for e in listed] == ["tool@local@use"]


def _wait_deployment(operator: httpx.Client, statuses: set[str]) -> dict[str, object]:
    body: dict[str, object] = {}
    for _ in range(300):
        response = operator.get("/deployments/tool/local")
        if response.status_code == 200:
            body = response.json()
            if body["status"] in statuses:
                return body
        import time

        time.sleep(0.1)
    raise AssertionError(f"deployment still {body.get('status')}")
