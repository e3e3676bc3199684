"""An application's deployment: run once per environment before its executions, again when
the file changes or an operator asks; its outputs reach the workflows; operators see it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml
from tests.conftest import BIN, trigger, wait_for_status
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
    """Load the catalog files again, as the server does after `hpcwaas-api catalog reload`."""
    server.on_loop(lambda: server._app.state.runtime.live_catalog.reload())


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
        new_id = again.headers["location"].rsplit("/", 1)[1]
        _wait_deployment(operator, {"FAILED"})
        events = operator.get("/audit", params={"action": "deployment.run"}).json()["events"]
        # the first started with ada's trigger, the second by the operator; newest first
        assert [(e["actor"], e["details"]["requested_by"]) for e in events] == [
            (OPERATOR, OPERATOR),
            ("ada", "trigger"),
        ]
        assert events[0]["target"] == new_id
        assert {e["details"]["deployment_user"] for e in events} == {"hpcwaas-deployment"}
    assert counter.read_text() == "run\nrun\n"


def _dry_run_command(api: httpx.Client) -> str:
    plan = api.post("/workflows/tool@local@use", params={"dry_run": "true"}, json={})
    assert plan.status_code == 200, plan.text
    [step] = plan.json()["steps"]
    return str(step["command"])


def test_a_dry_run_shows_the_deployment_outputs_once_the_deployment_succeeded(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, catalog, counter = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        assert "using @deployment.outputs.install.tool_dir@" in _dry_run_command(api)
        assert not counter.exists()  # a dry run starts no deployment
        wait_for_status(api, trigger(api, "tool@local@use"), {"SUCCEEDED"})
        assert "using /opt/tool-1" in _dry_run_command(api)
        # the file changed: a trigger would start its deployment, whose outputs are unknown
        _write(catalog, counter, version="2")
        _reload(server)
        assert "using @deployment.outputs.install.tool_dir@" in _dry_run_command(api)
    assert counter.read_text() == "run\n"


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
        time.sleep(0.1)
    raise AssertionError(f"deployment still {body.get('status')}")


def test_admin_command_lists_shows_prints_logs_and_runs_a_deployment(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, catalog, counter = _start(fresh_server, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"catalog_dirs": [str(catalog)]}))
    base = ["--config", str(config), "--data_dir", str(server.data_dir)]

    def admin(*words: str) -> tuple[int, str, str]:
        command = [str(BIN / "hpcwaas-api"), *words[:2], *base, *words[2:]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr

    with server.client(server.token("ada")) as api:
        wait_for_status(api, trigger(api, "tool@local@use"), {"SUCCEEDED"})
    code, out, _ = admin("deployments", "list")
    assert code == 0
    application, environment, status, execution_id, _ = out.strip().split("\t")
    assert (application, environment, status) == ("tool", "local", "SUCCEEDED")
    code, out, _ = admin("deployments", "show", "tool", "local", "--json")
    assert json.loads(out)["execution_id"] == execution_id
    code, out, _ = admin("deployments", "logs", "tool", "local")
    assert code == 0 and "installing version 1" in out
    code, out, _ = admin("deployments", "run", "tool", "local")
    assert code == 0
    new_id = out.strip()
    assert new_id != execution_id
    with server.client(server.token(OPERATOR)) as operator:
        wait_for_status(operator, new_id, {"SUCCEEDED"})
    assert counter.read_text() == "run\nrun\n"
    code, _, err = admin("deployments", "show", "tool", "elsewhere")
    assert code == 1
    assert err.strip() == (
        "hpcwaas-api: the deployment of tool on elsewhere has not been started "
        "(`hpcwaas-api deployments run tool elsewhere` starts it)"
    )
    code, _, err = admin("deployments", "run", "nothing", "local")
    assert code == 1 and "application 'nothing' has no deployment" in err


def test_cancelling_a_running_deployment_fails_the_executions_waiting_for_it(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    never = tmp_path / "never"
    wait = f"while [ ! -e {never} ]; do sleep 0.1; done"
    server, _, _ = _start(fresh_server, tmp_path, extra=wait)
    with server.client(server.token("ada")) as api:
        waiting = trigger(api, "tool@local@use")
        cancelled = trigger(api, "tool@local@use")
        with server.client(server.token(OPERATOR)) as operator:
            deployment = _wait_deployment(operator, {"RUNNING"})
            # a waiting execution is cancelled like any PENDING one
            assert api.delete(f"/executions/{cancelled}").status_code == 202
            wait_for_status(api, cancelled, {"CANCELLED"})
            assert operator.delete(f"/executions/{deployment['execution_id']}").status_code == 202
        body = wait_for_status(api, waiting, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "FAILED"
        assert body["error"] == (
            "the deployment of tool on local was cancelled; an operator runs it again"
        )
