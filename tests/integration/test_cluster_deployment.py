"""A deployment on the real test cluster: it runs over SSH as the environment's service
identity (deployment_user), and the user's execution, as the user's own account, reads its
outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port, wait_for_status

SERVICE = "svc-deploy"
APP = """
application: tool
environments: [cluster]
expose: [use]
deployment:
  steps:
    install:
      kind: shell
      outputs: [account]
      run: echo "account=$(id -un)" >> "$HPCWAAS_OUTPUTS"
workflows:
  use:
    steps:
      run:
        kind: shell
        run: echo deployed by {{ deployment.outputs.install.account }}, run by "$(id -un)"
"""


@pytest.fixture
def server(tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster) -> Iterator[LiveServer]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "tool.yaml").write_text(APP)
    environments = {
        "cluster": {
            "kind": "slurm",
            "host": cluster.host,
            "port": cluster.port,
            "host_keys": [cluster.known_hosts],
            "poll_interval": 1,
            "deployment_user": SERVICE,
        }
    }
    live = LiveServer(tmp_path / "data", free_port())
    live.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.start()
    yield live
    live.stop()


def _identity(client: httpx.Client, cluster: Cluster, login: str) -> None:
    """A key of the caller's, authorized for ``login``, registered as their identity."""
    made = client.post("/ssh_keys", json={})
    assert made.status_code == 201, made.text
    cluster.clear_authorized(login)
    cluster.authorize(login, made.json()["public_key"])
    saved = client.put(
        "/environments/cluster/identity", json={"login": login, "key_id": made.json()["id"]}
    )
    assert saved.status_code in (200, 204), saved.text


def test_deployment_runs_as_the_service_identity_and_the_execution_as_the_user(
    server: LiveServer, cluster: Cluster
) -> None:
    with server.client(server.token("alice")) as alice:
        _identity(alice, cluster, "hpcuser1")
        refused = alice.post("/workflows/tool@cluster@use", json={})
        assert refused.status_code == 503, refused.text
        assert (
            f"the service identity '{SERVICE}' (deployment_user of environment cluster) has "
            "no cluster login and SSH key there"
        ) in refused.json()["errors"][0]["detail"]
        with server.client(server.token(SERVICE)) as service:
            _identity(service, cluster, "hpcuser2")
        triggered = alice.post("/workflows/tool@cluster@use", json={})
        assert triggered.status_code == 201, triggered.text
        execution_id = triggered.headers["location"].rsplit("/", 1)[1]
        body = wait_for_status(alice, execution_id, {"SUCCEEDED", "FAILED"}, timeout=120)
        assert body["status"] == "SUCCEEDED", body
        logs = alice.get(f"/executions/{execution_id}/logs").json()["logs"]
        assert "deployed by hpcuser2, run by hpcuser1" in [entry["content"] for entry in logs]
