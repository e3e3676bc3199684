"""A real Slurm job's timeline and accounting (the loopback cluster of cluster_support).

The job is held PENDING a few seconds by ``--begin``, as a busy queue would: its step gets
a queued bar up to the moment Slurm ran it, then a running bar, the mark where it was done,
and its Slurm job ID; the API shows that moment as the step's ``running_at``. Once it
ended, what slurmdbd kept of it (sacct: state, exit code, elapsed, CPU time, max RSS) is in
the API, on the execution page, and in `waas executions status` after the original's line.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.cluster_support import Cluster
from tests.conftest import BIN, LiveServer, free_port, wait_for_status
from tests.portal_support import Watch, logged_in, with_csp

if TYPE_CHECKING:
    from playwright.sync_api import Page

HELD = """
application: queue
environments: [cluster]
expose: [held]
workflows:
  held:
    steps:
      prepare:
        kind: shell
        run: echo ready
      compute:
        kind: slurm
        needs: [prepare]
        script: |
          echo computing
          sleep 2
        options: {ntasks: 1, time: "00:05:00", extra: ["--begin=now+6"]}
"""


@pytest.fixture
def queue_server(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> Iterator[LiveServer]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "queue.yaml").write_text(HELD)
    environment = {
        "kind": "slurm",
        "name": "Loopback cluster",
        "host": cluster.host,
        "port": cluster.port,
        "host_keys": [cluster.known_hosts],
        "poll_interval": 1,
        "unreachable_deadline": 120,
    }
    server = LiveServer(tmp_path / "data", free_port())
    server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps({"cluster": environment})
    server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    yield server.start()
    server.stop()


def test_a_queued_slurm_job_gets_a_queued_bar_then_a_running_bar_and_its_job_id(
    chromium: Page, queue_server: LiveServer, cluster: Cluster
) -> None:
    token = queue_server.token("alice")
    with queue_server.client(token) as api:
        key = api.post("/ssh_keys", json={}).json()
        cluster.clear_authorized("hpcuser1")
        cluster.authorize("hpcuser1", key["public_key"])
        response = api.post(
            "/workflows/queue@cluster@held",
            json={"inputs": {"user_id": "hpcuser1", "vault_id": key["id"]}},
        )
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        page = logged_in(chromium, queue_server.url, token)
        watch = Watch(page, queue_server.url)
        page.route("**/*", with_csp)
        page.goto(f"{queue_server.url}/ui/#/executions/{execution_id}")
        # while Slurm holds the job: a queued bar that grows, and no running bar yet
        page.locator("svg.timeline g.row[data-row='compute'] rect[data-phase='queued']").wait_for(
            timeout=30_000
        )
        assert not page.locator("g.row[data-row='compute'] rect[data-phase='running']").count()
        wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        body = api.get(f"/executions/{execution_id}").json()
    page.wait_for_function(
        "() => document.querySelector('.status-line .badge')?.textContent === 'SUCCEEDED'"
    )
    step = {s["name"]: s for s in body["steps"]}["compute"]
    queued = datetime.fromisoformat(step["running_at"]) - datetime.fromisoformat(step["started_at"])
    # held 6 s, then started at Slurm's next scheduling pass (up to a minute later)
    assert 4 <= queued.total_seconds() <= 120, step
    assert {s["name"]: s for s in body["steps"]}["prepare"]["running_at"] is None
    row = page.locator("svg.timeline g.row[data-row='compute']")
    spans = row.evaluate(
        """(row) => Object.fromEntries([...row.querySelectorAll("rect")].map((r) => [
             r.dataset.phase, [r.x.baseVal.value, r.x.baseVal.value + r.width.baseVal.value],
           ]))"""
    )
    assert sorted(spans) == ["done", "queued", "running"]
    assert spans["queued"][1] == pytest.approx(spans["running"][0])
    # held about as long as it ran (6 s begin, 2 s sleep plus polls): the queued bar is long
    assert spans["queued"][1] - spans["queued"][0] > 0.5 * (
        spans["running"][1] - spans["running"][0]
    )
    assert row.locator("text.row-job").text_content() == f"job {step['job_id']}"
    assert re.fullmatch(r"\d+", step["job_id"])

    # Slurm's accounting of the job: in the API, on the page, in `waas executions status`
    accounting = step["accounting"]
    assert accounting["state"] == "COMPLETED" and accounting["exit_code"] == 0
    assert 2 <= accounting["elapsed_seconds"] <= 30
    assert accounting["cpu_seconds"] is not None and accounting["cpu_seconds"] >= 0
    assert accounting["max_rss_bytes"] > 0
    shown = page.locator("[data-step='compute'] .step-accounting").inner_text()
    assert "COMPLETED" in shown and "max RSS" in shown
    status = subprocess.run(
        [str(BIN / "waas"), "--api_url", queue_server.url, f"-t={token}", "executions", "status",
         execution_id],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = status.stdout.splitlines()
    assert lines[0] == f"Execution: ID: {execution_id}, Status: SUCCEEDED"
    at = lines.index(f"  Step compute: SUCCEEDED (Slurm job {step['job_id']}, exit code 0)")
    assert lines[at + 1].startswith("    Slurm accounting: COMPLETED, exit code 0, elapsed ")
    assert watch.errors == []
