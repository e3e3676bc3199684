"""A deployment whose steps run on another environment: each environment's steps run as that
environment's deployment_user, whose account there is checked before anything is recorded."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.environments_support import unreachable_cluster
from tests.inprocess_support import InProcessServer

from hpcwaas.store import executions as execution_store
from hpcwaas.store.executions import ExecutionRecord

APP = """\
application: tool
environments: [local]
expose: [use]
deployment:
  steps:
    here: {kind: shell, run: "true"}
    there: {kind: shell, run: "true", environment: hpc}
workflows:
  use:
    steps:
      run: {kind: shell, run: "true"}
"""
OPERATOR = "olga"


def _start(fresh_server: Callable[..., InProcessServer], tmp_path: Path) -> InProcessServer:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "tool.yaml").write_text(textwrap.dedent(APP))
    hpc = unreachable_cluster(1) | {"deployment_user": "svc-hpc"}
    return fresh_server(
        catalog_dirs=[catalog],
        environments={"local": {"kind": "local", "deployment_user": "svc-local"}, "hpc": hpc},
        operators={"users": [OPERATOR]},
    )


def test_a_deployment_step_on_a_cluster_whose_deployment_user_has_no_account_is_refused(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        refused = api.post("/workflows/tool@local@use", json={"inputs": {}})
        assert refused.status_code == 503, refused.text
        (error,) = refused.json()["errors"]
        detail = error["detail"]
        assert detail.startswith(
            "the deployment of tool on local cannot run: the service identity 'svc-hpc' "
            "(deployment_user of environment hpc) has no cluster login and SSH key there "
            "(for its steps there)"
        ), detail
        assert "waas environments set-identity hpc --login <login> --key <key id>" in detail
        assert api.get("/executions").json()["executions"] == []  # nothing recorded
    with server.client(server.token(OPERATOR)) as operator:
        assert operator.get("/deployments").json()["deployments"] == []
        again = operator.post("/deployments/tool/local")
        assert again.status_code == 503 and "'svc-hpc'" in again.text


def test_a_deployment_runs_its_steps_on_each_environment_as_that_environments_service_user(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = _start(fresh_server, tmp_path)
    with server.client(server.token("svc-hpc")) as service:
        key = service.post("/ssh_keys").json()["id"]
        registered = service.put(
            "/environments/hpc/identity", json={"login": "svcdeploy", "key_id": key}
        )
        assert registered.status_code == 200, registered.text
    with server.client(server.token("ada")) as api:
        triggered = api.post("/workflows/tool@local@use", json={"inputs": {}})
        assert triggered.status_code == 201, triggered.text
    with server.client(server.token(OPERATOR)) as operator:
        (deployment,) = operator.get("/deployments").json()["deployments"]
    record = server.on_loop(_record, server, deployment["execution_id"])
    assert record.owner == "svc-local"  # the home's service identity
    assert record.account_on("local") == (None, None)
    assert record.account_on("hpc") == ("svcdeploy", key)
    assert record.user_on("hpc") == "svc-hpc"  # whose account it is there
    with server.client(server.token(OPERATOR)) as operator:
        (event,) = operator.get("/audit", params={"action": "deployment.run"}).json()["events"]
    assert event["target"] == deployment["execution_id"]
    assert event["details"]["places"] == f"hpc: svcdeploy with key {key} (as svc-hpc)"


async def _record(server: InProcessServer, execution_id: str) -> ExecutionRecord:
    async with server._app.state.runtime.db.read() as conn:
        record = await execution_store.get_execution(conn, execution_id)
    assert record is not None
    return record


def test_running_the_deployment_of_the_other_environment_names_the_one_to_run(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = _start(fresh_server, tmp_path)
    with server.client(server.token(OPERATOR)) as operator:
        refused = operator.post("/deployments/tool/hpc")
        assert refused.status_code == 404, refused.text
        (error,) = refused.json()["errors"]
        assert error["detail"] == (
            "application 'tool' has no deployment on environment 'hpc'; its steps there "
            "belong to its deployment on local: run that one"
        )
