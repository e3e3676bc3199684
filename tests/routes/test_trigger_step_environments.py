"""Triggering a workflow whose steps run on another environment: its account there is checked
before anything is recorded, and the dry run shows where each step runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from tests.environments_support import MIXED_APPLICATION, unreachable_cluster
from tests.inprocess_support import InProcessServer

OPERATOR = "olga"


def _start(fresh_server: Callable[..., InProcessServer], tmp_path: Path) -> InProcessServer:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "mixed.yaml").write_text(MIXED_APPLICATION)
    hpc = unreachable_cluster(1)
    return fresh_server(
        catalog_dirs=[catalog],
        environments={"local": {"kind": "local"}, "hpc": hpc},
        operators={"users": [OPERATOR]},
    )


def _post_with_account(api: httpx.Client, key: str, query: str = "") -> httpx.Response:
    """Ada's trigger (or dry run) of the mixed workflow as hpcuser1 with ``key``."""
    return api.post(
        f"/workflows/mixed@local@run{query}",
        json={"inputs": {"user_id": "hpcuser1", "vault_id": key}},
    )


def test_a_step_on_a_cluster_needs_an_account_there_even_from_a_local_environment(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        refused = api.post("/workflows/mixed@local@run", json={"inputs": {}})
        assert refused.status_code == 400, refused.text
        text = refused.text
        assert "workflow mixed@local@run runs steps on hpc as your cluster account" in text
        assert "waas environments set-identity hpc" in text
        assert api.get("/executions").json()["executions"] == []  # nothing recorded


def test_a_trigger_with_someone_elses_key_for_the_other_environment_is_refused(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = _start(fresh_server, tmp_path)
    with server.client(server.token("eve")) as api:
        refused = api.post(
            "/workflows/mixed@local@run",
            json={"inputs": {"user_id": "hpcuser1", "vault_id": "not-a-key-of-eve"}},
        )
        assert refused.status_code == 400, refused.text
        assert "no SSH key" in refused.text


def test_the_dry_run_names_the_environment_of_a_step_that_runs_elsewhere(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        key = api.post("/ssh_keys").json()["id"]
        planned = _post_with_account(api, key, "?dry_run=true")
        assert planned.status_code == 200, planned.text
        steps = {s["name"]: s for s in planned.json()["steps"]}
    assert steps["prepare"]["environment_id"] is None
    assert steps["solve"]["environment_id"] == "hpc"
    assert steps["solve"]["error"] is None
    assert "sbatch" in steps["solve"]["command"]


def test_an_execution_shows_where_a_step_runs_elsewhere_and_the_account_is_audited(
    fresh_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = _start(fresh_server, tmp_path)
    with server.client(server.token("ada")) as api:
        key = api.post("/ssh_keys").json()["id"]
        triggered = _post_with_account(api, key)
        assert triggered.status_code == 201, triggered.text
        # the original's answer: 201 and the execution in Location
        shown = api.get(triggered.headers["location"]).json()
    steps = {s["name"]: s for s in shown["steps"]}
    assert steps["prepare"]["environment_id"] is None
    assert steps["solve"]["environment_id"] == "hpc"
    with server.client(server.token(OPERATOR)) as operator:
        (event,) = operator.get("/audit", params={"action": "execution.trigger"}).json()["events"]
    assert event["details"]["places"] == f"hpc: hpcuser1 with key {key}"
