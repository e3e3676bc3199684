"""Retention on a real server: the sweep removes finished `local` executions' work dirs, logs
and stored outputs, keeping the execution; a user removes them early with
`DELETE /executions/{id}/data` or `waas executions purge`; an operator with
`hpcwaas-api retention run`."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import BIN, LiveServer, envelope_item, free_port, wait_for_status

OPERATOR = f"operator-{uuid.uuid4().hex[:6]}"
WORKFLOWS = """
application: keep
environments: [local]
expose: [report, slow]
workflows:
  report:
    steps:
      write:
        kind: shell
        run: mkdir -p out && echo hello > out/report.txt && echo written
      keep:
        kind: stage_out
        needs: [write]
        source_path: out/report.txt
        output: report
  slow:
    steps:
      wait:
        kind: shell
        run: sleep 60
"""


def _server(root: Path, retention: dict[str, Any]) -> LiveServer:
    catalog = root / "catalog"
    catalog.mkdir(parents=True)
    (catalog / "keep.yaml").write_text(WORKFLOWS)
    config = root / "hpcwaas.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "catalog_dirs": [str(catalog)],
                "retention": retention,
                "operators": {"users": [OPERATOR]},
            }
        )
    )
    return LiveServer(root / "data", free_port(), extra_args=["--config", str(config)])


@pytest.fixture(scope="module")
def sweeping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that removes everything 3 s after an execution ended, sweeping twice a second."""
    live = _server(
        tmp_path_factory.mktemp("sweeping"),
        {
            "work_dirs": "3s",
            "logs": "3s",
            "outputs": "3s",
            "cluster_work_dirs": None,
            "sweep_interval_seconds": 0.5,
        },
    ).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def keeping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the default retention (days): data stays unless a user removes it."""
    live = _server(tmp_path_factory.mktemp("keeping"), {}).start()
    yield live
    live.stop()


def _run_report(client: httpx.Client) -> str:
    response = client.post("/workflows/keep@local@report", json={"inputs": {}})
    assert response.status_code == 201, response.text
    execution_id = response.headers["location"].rsplit("/", 1)[1]
    wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"})
    assert client.get(f"/executions/{execution_id}").json()["status"] == "SUCCEEDED"
    return execution_id


def _data_of(server: LiveServer, execution_id: str) -> dict[str, bool]:
    """Which of the execution's data is still on the server's disk."""
    return {
        "work_dir": (server.data_dir / "work" / execution_id).exists(),
        "outputs": (server.data_dir / "results" / execution_id).exists(),
    }


def _assert_data_gone(client: httpx.Client, server: LiveServer, execution_id: str) -> None:
    assert _data_of(server, execution_id) == {"work_dir": False, "outputs": False}
    logs = client.get(f"/executions/{execution_id}/logs", params={"levels": 15}).json()
    assert logs["logs"] == [] and logs["total_results"] == 0
    assert client.get(f"/executions/{execution_id}/outputs").json()["outputs"] == []
    missing = client.get(f"/executions/{execution_id}/outputs/report")
    assert missing.status_code == 404


def _waas(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
    return subprocess.run(
        [str(BIN / "waas"), "--api_url", server.url, f"-t={token}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


# -- the sweep -----------------------------------------------------------------------------------


def test_the_sweep_removes_work_dir_logs_and_outputs_and_keeps_the_execution(
    sweeping: LiveServer,
) -> None:
    token = sweeping.token(f"alice-{uuid.uuid4().hex[:6]}")
    with sweeping.client(token) as client:
        execution_id = _run_report(client)
        # within its retention, everything is there
        assert _data_of(sweeping, execution_id) == {"work_dir": True, "outputs": True}
        assert client.get(f"/executions/{execution_id}/logs").json()["total_results"] > 0

        deadline = time.monotonic() + 20
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = client.get(f"/executions/{execution_id}").json()
            if set(body.get("data_removed") or {}) == {"work_dir", "logs", "outputs"}:
                break
            time.sleep(0.2)
        removed = body.get("data_removed") or {}
        assert set(removed) == {"work_dir", "logs", "outputs"}, body
        assert {entry["by"] for entry in removed.values()} == {"retention"}
        # the execution itself stays, with its status and its steps
        assert body["status"] == "SUCCEEDED"
        assert [s["state"] for s in body["steps"]] == ["SUCCEEDED", "SUCCEEDED"]
        _assert_data_gone(client, sweeping, execution_id)
        listed = client.get("/executions").json()["executions"]
        assert [e["id"] for e in listed] == [execution_id]

    status = _waas(sweeping, token, "executions", "status", execution_id)
    assert status.returncode == 0, status.stderr
    assert "Data removed: logs (by retention on " in status.stdout
    assert "Data removed: outputs (by retention on " in status.stdout

    log = sweeping.log_path.read_text()
    assert "retention sweep removed work dirs of 1 executions" in log
    events = sweeping.admin("audit", "list", "--action", "retention.sweep", "-o", "json")
    assert events.returncode == 0, events.stderr
    details = [json.loads(line)["details"] for line in events.stdout.splitlines()]
    assert sum(d["logs"] for d in details) >= 1
    assert all(d["replica"] for d in details)


# -- early removal by the user -------------------------------------------------------------------


def test_the_owner_removes_a_finished_executions_data_at_once_and_again_harmlessly(
    keeping: LiveServer,
) -> None:
    user = f"alice-{uuid.uuid4().hex[:6]}"
    with keeping.client(keeping.token(user)) as client:
        execution_id = _run_report(client)
        assert _data_of(keeping, execution_id) == {"work_dir": True, "outputs": True}
        assert client.get(f"/executions/{execution_id}").json().get("data_removed") is None

        response = client.delete(f"/executions/{execution_id}/data")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == execution_id and body["status"] == "SUCCEEDED"
        assert set(body["data_removed"]) == {"work_dir", "logs", "outputs"}
        assert {entry["by"] for entry in body["data_removed"].values()} == {user}
        _assert_data_gone(client, keeping, execution_id)
        assert (
            client.get(f"/executions/{execution_id}").json()["data_removed"]
            == (body["data_removed"])
        )

        again = client.delete(f"/executions/{execution_id}/data")
        assert again.status_code == 200, again.text
        assert again.json()["data_removed"] == body["data_removed"]

    events = keeping.admin(
        "audit", "list", "--action", "execution.data_remove", "--target", execution_id, "-o", "json"
    )
    [first, *_] = [json.loads(line) for line in events.stdout.splitlines()]
    assert first["actor"] == user and first["outcome"] == "success"


def test_removing_the_data_of_a_running_execution_is_a_409_that_says_to_cancel_first(
    keeping: LiveServer,
) -> None:
    with keeping.client(keeping.token(f"alice-{uuid.uuid4().hex[:6]}")) as client:
        response = client.post("/workflows/keep@local@slow", json={"inputs": {}})
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        wait_for_status(client, execution_id, {"RUNNING"})
        try:
            item = envelope_item(client.delete(f"/executions/{execution_id}/data"), 409)
            assert item["id"] == "conflict"
            assert "RUNNING" in item["detail"] and "cancel it first" in item["detail"]
            assert (keeping.data_dir / "work" / execution_id).exists()
        finally:
            client.delete(f"/executions/{execution_id}")
        wait_for_status(client, execution_id, {"CANCELLED"})
        assert client.delete(f"/executions/{execution_id}/data").status_code == 200


def test_someone_elses_execution_is_not_found_but_an_operator_may_remove_its_data(
    keeping: LiveServer,
) -> None:
    with keeping.client(keeping.token(f"alice-{uuid.uuid4().hex[:6]}")) as alice:
        execution_id = _run_report(alice)
    with keeping.client(keeping.token(f"mallory-{uuid.uuid4().hex[:6]}")) as mallory:
        item = envelope_item(mallory.delete(f"/executions/{execution_id}/data"), 404)
        assert execution_id in item["detail"]
        unknown = envelope_item(mallory.delete("/executions/no-such-execution/data"), 404)
        assert "no-such-execution" in unknown["detail"]
    assert _data_of(keeping, execution_id) == {"work_dir": True, "outputs": True}
    with keeping.client(keeping.token(OPERATOR)) as operator:
        response = operator.delete(f"/executions/{execution_id}/data")
        assert response.status_code == 200, response.text
        assert {e["by"] for e in response.json()["data_removed"].values()} == {OPERATOR}
    assert _data_of(keeping, execution_id) == {"work_dir": False, "outputs": False}


def test_waas_executions_purge_reports_each_id_and_exits_1_if_any_failed(
    keeping: LiveServer,
) -> None:
    token = keeping.token(f"alice-{uuid.uuid4().hex[:6]}")
    with keeping.client(token) as client:
        first, second = _run_report(client), _run_report(client)
    run = _waas(keeping, token, "executions", "purge", first, second)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f'Removed the data of execution "{first}" (work dir, logs, outputs)' in run.stdout
    assert f'Removed the data of execution "{second}"' in run.stdout
    assert "Removed the data of 2 executions." in run.stdout
    assert _data_of(keeping, first) == {"work_dir": False, "outputs": False}

    mixed = _waas(keeping, token, "-o", "json", "executions", "purge", first, "not-an-execution")
    assert mixed.returncode == 1
    document = json.loads(mixed.stdout)
    assert document["purged"] == [first]
    assert [f["id"] for f in document["failed"]] == ["not-an-execution"]
    assert 'Failed to remove the data of execution "not-an-execution"' in mixed.stderr

    # `delete` stays an alias of cancel: on a finished execution it is a conflict, nothing more
    cancel = _waas(keeping, token, "executions", "delete", second)
    assert cancel.returncode == 1
    assert "Failed to cancel" in cancel.stdout + cancel.stderr


def test_retention_run_sweeps_once_and_prints_what_it_removed(keeping: LiveServer) -> None:
    with keeping.client(keeping.token(f"alice-{uuid.uuid4().hex[:6]}")) as client:
        execution_id = _run_report(client)
        time.sleep(1.1)
        # the same server settings, with retention shortened for this one command
        env = {**os.environ, "HPCWAAS_RETENTION__WORK_DIRS": "1s", "HPCWAAS_RETENTION__LOGS": "1s"}
        run = subprocess.run(
            [
                str(BIN / "hpcwaas-api"),
                "--data_dir",
                str(keeping.data_dir),
                *keeping.extra_args,
                "retention",
                "run",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        counts = json.loads(run.stdout)
        assert counts["work_dirs"] >= 1 and counts["logs"] >= 1
        assert counts["outputs"] == 0 and counts["left"] == 0
        body = client.get(f"/executions/{execution_id}").json()
        assert set(body["data_removed"]) == {"work_dir", "logs"}
        assert _data_of(keeping, execution_id) == {"work_dir": False, "outputs": True}

    text = keeping.admin("retention", "run")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("removed work dirs of 0 executions")
