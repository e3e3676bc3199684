"""Key use in the audit log: which execution used which SSH key, on which host, as which login.

Runs workflows on the loopback cluster (tests/cluster_support.py) and reads the events back
with `hpcwaas-api audit list`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster_support import Cluster
from tests.conftest import wait_for_status
from tests.integration.test_cluster_runs import ClusterServer, _new_key, _trigger_long


@pytest.fixture
def hpc(tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster) -> Iterator[ClusterServer]:
    setup = ClusterServer(tmp_path, cluster)
    setup.server.start()
    yield setup
    setup.server.stop()


def _key_uses(hpc: ClusterServer, *args: str) -> list[dict[str, Any]]:
    listed = hpc.server.admin("audit", "list", "-o", "json", "--action", "ssh_key.use", *args)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def _trigger(hpc: ClusterServer, token: str, login: str, key: str) -> str:
    with hpc.server.client(token) as client:
        response = client.post(
            "/workflows/hpc@cluster@pipeline",
            json={"inputs": {"user_id": login, "vault_id": key}},
        )
    assert response.status_code == 201, response.text
    return str(response.headers["location"].rsplit("/", 1)[1])


def test_a_cluster_run_records_one_key_use_naming_execution_key_host_and_login(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("alice")
    key = _new_key(hpc, cluster, token, "hpcuser1")
    execution_id = _trigger(hpc, token, "hpcuser1", key)
    with hpc.server.client(token) as client:
        wait_for_status(client, execution_id, {"SUCCEEDED"}, timeout=180)

    # A shell step, a Slurm job and a PyCOMPSs job: many commands, one event.
    (event,) = _key_uses(hpc, "--target", key)
    assert event["actor"] == "alice"
    assert (event["source"], event["outcome"], event["request_id"]) == ("engine", "success", None)
    assert event["details"] == {
        "execution_id": execution_id,
        "host": cluster.host,
        "port": cluster.port,
        "login": "hpcuser1",
    }
    assert "PRIVATE KEY" not in json.dumps(event)


def test_a_key_the_cluster_refuses_is_a_failed_key_use_with_the_reason(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token = hpc.server.token("bob")
    key = _new_key(hpc, cluster, token, "hpcuser2")
    cluster.clear_authorized("hpcuser2")  # the user forgot to install the public key
    execution_id = _trigger(hpc, token, "hpcuser2", key)
    with hpc.server.client(token) as client:
        wait_for_status(client, execution_id, {"FAILED"}, timeout=120)

    (event,) = _key_uses(hpc, "--user", "bob")
    assert (event["target"], event["outcome"]) == (key, "failure")
    assert event["details"]["execution_id"] == execution_id
    assert event["details"]["login"] == "hpcuser2"
    assert "refused the SSH key" in event["details"]["reason"]


def test_a_restarted_server_records_the_key_use_of_the_execution_it_resumes(
    hpc: ClusterServer, cluster: Cluster
) -> None:
    token, execution_id, _ = _trigger_long(hpc, cluster, "dave", "hpcuser2", 6)
    hpc.server.stop()
    hpc.server.start()
    with hpc.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=90)
    assert body["status"] == "SUCCEEDED", body

    uses = _key_uses(hpc, "--user", "dave")
    assert [e["details"]["execution_id"] for e in uses] == [execution_id, execution_id]
    assert {e["outcome"] for e in uses} == {"success"}
    assert {e["details"]["login"] for e in uses} == {"hpcuser2"}
