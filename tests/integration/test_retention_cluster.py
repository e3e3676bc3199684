"""Retention on the real cluster: an execution's directory there is removed over SSH as the
user's own account, by the sweep and on request; links in it are not followed; an unreachable
cluster leaves the directory for later and the rest goes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster_support import Cluster
from tests.integration.test_cluster_runs import ClusterServer, _execution_id, _new_key

from hpcwaas.transports.ssh import FAIL_FAST_SECONDS

LOGIN = "hpcuser1"
WORKFLOWS = """
application: tidy
environments: [cluster]
expose: [note]
workflows:
  note:
    steps:
      write:
        kind: shell
        run: mkdir -p sub && echo kept > sub/note.txt && echo written
"""


def _server(tmp_path: Path, cluster: Cluster, retention: dict[str, Any]) -> ClusterServer:
    setup = ClusterServer(tmp_path, cluster)
    (tmp_path / "catalog" / "tidy.yaml").write_text(WORKFLOWS)
    setup.server.env["HPCWAAS_RETENTION"] = json.dumps(retention)
    return setup


@pytest.fixture
def sweeping(tmp_path: Path, cluster: Cluster) -> Iterator[ClusterServer]:
    setup = _server(
        tmp_path,
        cluster,
        {"cluster_work_dirs": "4s", "logs": None, "outputs": None, "sweep_interval_seconds": 0.5},
    )
    setup.server.start()
    yield setup
    setup.server.stop()


@pytest.fixture
def keeping(tmp_path: Path, cluster: Cluster) -> Iterator[ClusterServer]:
    setup = _server(tmp_path, cluster, {})
    setup.server.start()
    yield setup
    setup.server.stop()


def _run_note(hpc: ClusterServer, token: str, key: str) -> str:
    run = hpc.waas(
        token, "workflows", "trigger", "-f", "-i", f"user_id={LOGIN}", "-i", f"vault_id={key}",
        "tidy@cluster@note",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return _execution_id(run.stdout)


def _exists_on_cluster(cluster: Cluster, path: str) -> bool:
    return cluster.run_as(LOGIN, f"test -e {path} || test -L {path}").returncode == 0


def _plant_link_out(cluster: Cluster, execution_id: str) -> None:
    """A file outside the execution's directory, and links to it from inside."""
    made = cluster.run_as(
        LOGIN,
        f"echo precious > ~/precious-{execution_id}.txt && "
        f"ln -s ~/precious-{execution_id}.txt .hpcwaas/executions/{execution_id}/sub/link && "
        f"ln -s ~ .hpcwaas/executions/{execution_id}/home",
    )
    assert made.returncode == 0, made.stderr


def _precious_intact(cluster: Cluster, execution_id: str) -> bool:
    read = cluster.run_as(LOGIN, f"cat ~/precious-{execution_id}.txt")
    return read.returncode == 0 and read.stdout.strip() == "precious"


def test_the_sweep_removes_the_cluster_work_dir_over_ssh_without_following_links(
    sweeping: ClusterServer, cluster: Cluster
) -> None:
    token = sweeping.server.token("alice")
    key = _new_key(sweeping, cluster, token, LOGIN)
    execution_id = _run_note(sweeping, token, key)
    directory = f".hpcwaas/executions/{execution_id}"
    assert _exists_on_cluster(cluster, f"{directory}/sub/note.txt")
    _plant_link_out(cluster, execution_id)

    deadline = time.monotonic() + 60
    body: dict[str, Any] = {}
    with sweeping.server.client(token) as client:
        while time.monotonic() < deadline:
            body = client.get(f"/executions/{execution_id}").json()
            if "cluster_work_dir" in (body.get("data_removed") or {}):
                break
            time.sleep(0.3)
    removal = (body.get("data_removed") or {}).get("cluster_work_dir")
    assert removal is not None and removal["by"] == "retention", body
    assert body["status"] == "SUCCEEDED"
    assert not _exists_on_cluster(cluster, directory)
    assert _precious_intact(cluster, execution_id)
    assert _exists_on_cluster(cluster, ".ssh/authorized_keys")  # the home the link pointed to
    # logs are kept forever on this server
    assert "logs" not in body["data_removed"]


def test_purge_with_the_cluster_down_is_a_503_that_keeps_the_directory_until_asked_again(
    keeping: ClusterServer, cluster: Cluster
) -> None:
    token = keeping.server.token("alice")
    key = _new_key(keeping, cluster, token, LOGIN)
    execution_id = _run_note(keeping, token, key)
    directory = f".hpcwaas/executions/{execution_id}"
    _plant_link_out(cluster, execution_id)

    with keeping.server.client(token) as client:
        cluster.stop_sshd()
        try:
            response = client.delete(f"/executions/{execution_id}/data")
        finally:
            cluster.start_sshd()
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        detail = response.json()["errors"][0]["detail"]
        assert "cluster_work_dir" in detail and "again later" in detail
        # the rest went; the cluster directory is still there
        body = client.get(f"/executions/{execution_id}").json()
        assert set(body["data_removed"]) == {"logs", "outputs"}
        assert _exists_on_cluster(cluster, f"{directory}/sub/note.txt")

    time.sleep(FAIL_FAST_SECONDS)  # later, as Retry-After asks: a new connection is tried
    purge = keeping.waas(token, "executions", "purge", execution_id)
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert "cluster work dir" in purge.stdout
    assert not _exists_on_cluster(cluster, directory)
    assert _precious_intact(cluster, execution_id)
