"""Step outputs, secrets, retries and timeouts on the loopback cluster, where they go over SSH.

There a shell step's environment travels in the script on the SSH channel's stdin, a Slurm
step's in its batch wrapper (removed once submitted), and the outputs file is read back
over SSH.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster_support import Cluster
from tests.conftest import wait_for_status
from tests.integration.test_cluster_runs import ClusterServer, _new_key

APP = """
application: fmtc
environments: [cluster]
expose: [chain, late]
workflows:
  chain:
    inputs:
      token: {type: secret}
    steps:
      first:
        kind: shell
        outputs: [where]
        env: {TOKEN: "{{ inputs.token }}"}
        run: |
          cd /tmp && echo "where=login node; it's here" >> "$HPCWAAS_OUTPUTS"
          printf '%s' "$TOKEN" | sha256sum
      job:
        kind: slurm
        needs: [first]
        outputs: [digest]
        retries: 1
        retry_delay: 1
        env: {TOKEN: "{{ inputs.token }}"}
        script: |
          test -f tried || { touch tried; exit 5; }
          echo job got {{ steps.first.outputs.where }}
          echo "digest=$(printf '%s' "$TOKEN" | sha256sum | cut -c1-16)" >> "$HPCWAAS_OUTPUTS"
          echo "the job saw $TOKEN"
        options: {ntasks: 1, time: "00:05:00"}
      last:
        kind: shell
        needs: [job]
        run: echo final {{ steps.job.outputs.digest }}
  late:
    steps:
      wait:
        kind: slurm
        timeout: 3
        script: sleep 120
"""


@pytest.fixture
def hpc(tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster) -> Iterator[ClusterServer]:
    setup = ClusterServer(tmp_path, cluster)
    (tmp_path / "catalog" / "fmtc.yaml").write_text(APP)
    setup.server.start()
    yield setup
    setup.server.stop()


def test_outputs_secrets_and_retries_over_ssh_and_slurm(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("carol")
    key = _new_key(hpc, cluster, token, "hpcuser1")
    canary = "canary-" + secrets.token_hex(16)
    digest = hashlib.sha256(canary.encode()).hexdigest()
    with hpc.server.client(token) as api:
        inputs = {"user_id": "hpcuser1", "vault_id": key, "token": canary}
        response = api.post("/workflows/fmtc@cluster@chain", json={"inputs": inputs})
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        logs = api.get(
            f"/executions/{execution_id}/logs", params={"levels": 15, "timeout": "1s"}
        ).json()["logs"]
        lines = [entry["content"] for entry in logs]
        assert body["status"] == "SUCCEEDED", lines
        steps = {s["name"]: s for s in body["steps"]}  # type: ignore[union-attr]
        assert steps["first"]["outputs"] == {"where": "login node; it's here"}
        assert steps["job"]["attempts"] == 2
        assert steps["job"]["outputs"] == {"digest": digest[:16]}
        assert f"{digest}  -" in lines  # the shell step over SSH had the secret
        assert "job got login node; it's here" in lines
        assert "the job saw [secret]" in lines
        assert f"final {digest[:16]}" in lines
        assert canary not in response.text + api.get(f"/executions/{execution_id}").text
    assert canary not in hpc.server.log_path.read_text()
    for path in hpc.server.data_dir.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    # nothing we left on the cluster holds it: the batch wrapper was removed once submitted
    # (the job's own output file holds what the job printed, as the job printed it)
    found = cluster.run_as("hpcuser1", f"grep -rl --exclude='*.out' {canary} .hpcwaas || true")
    assert found.stdout.strip() == ""


def test_timeout_of_a_slurm_step_cancels_its_job(hpc: ClusterServer, cluster: Cluster) -> None:
    token = hpc.server.token("dave")
    key = _new_key(hpc, cluster, token, "hpcuser2")
    with hpc.server.client(token) as api:
        inputs = {"user_id": "hpcuser2", "vault_id": key}
        response = api.post("/workflows/fmtc@cluster@late", json={"inputs": inputs})
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"}, timeout=90)
    assert body["status"] == "FAILED"
    assert "timed out after 3 s" in str(body["error"])
    job_id = body["steps"][0]["job_id"]  # type: ignore[index]
    assert cluster.wait_job_state(job_id, {"CANCELLED"}, timeout=30) == "CANCELLED"
