"""stage_in and stage_out on the real cluster: HTTP -> SFTP onto the user's account -> a shell
step -> the result store -> the outputs API and `waas executions outputs`.

The files come from an HTTP server in this test process (tests/http_files.py); the hpcwaas
server (a subprocess) downloads them and writes them over SFTP as the user's cluster account.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster_support import Cluster
from tests.http_files import HttpFiles
from tests.integration.test_cluster_runs import ClusterServer, _execution_id, _new_key

DATA = os.urandom(3 * 1024 * 1024 + 123)
DIGEST = hashlib.sha256(DATA).hexdigest()
LOGIN = "hpcuser1"

WORKFLOWS = f"""
application: data
environments: [cluster]
expose: [roundtrip, limited, checked]
workflows:
  roundtrip:
    inputs:
      url: {{type: string}}
    steps:
      fetch:
        kind: stage_in
        url: "{{{{ inputs.url }}}}"
        target_path: in/data.bin
        sha256: "{DIGEST}"
      transform:
        kind: shell
        needs: [fetch]
        run: mkdir -p out && gzip -n < in/data.bin > out/data.gz && echo done > out/note.txt
      keep_file:
        kind: stage_out
        needs: [transform]
        source_path: out/data.gz
        output: compressed
        metadata: {{mid: dataset-1, register: true}}
      keep_dir:
        kind: stage_out
        needs: [transform]
        source_path: out
        output: everything
  limited:
    inputs:
      url: {{type: string}}
    steps:
      fetch:
        kind: stage_in
        url: "{{{{ inputs.url }}}}"
        target_path: in/data.bin
        max_bytes: 100000
  checked:
    inputs:
      url: {{type: string}}
    steps:
      fetch:
        kind: stage_in
        url: "{{{{ inputs.url }}}}"
        target_path: in/data.bin
        sha256: "{"0" * 64}"
"""


@pytest.fixture
def hpc(tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster) -> Iterator[ClusterServer]:
    setup = ClusterServer(tmp_path, cluster)
    (tmp_path / "catalog" / "data.yaml").write_text(WORKFLOWS)
    setup.server.start()
    yield setup
    setup.server.stop()


def _trigger(hpc: ClusterServer, token: str, key: str, workflow: str, url: str) -> tuple[int, str]:
    run = hpc.waas(
        token,
        "workflows",
        "trigger",
        "-f",
        "-i",
        f"user_id={LOGIN}",
        "-i",
        f"vault_id={key}",
        "-i",
        f"url={url}",
        f"data@cluster@{workflow}",
    )
    return run.returncode, run.stdout + run.stderr


def _remote_files(cluster: Cluster, execution_id: str) -> list[str]:
    """Every file under the execution's directory on the cluster, as the user sees them."""
    listing = cluster.run_as(LOGIN, f"cd .hpcwaas/executions/{execution_id} && find . -type f")
    assert listing.returncode == 0, listing.stderr
    return sorted(listing.stdout.split())


def test_data_goes_in_through_sftp_and_comes_out_through_the_api_and_the_cli(
    hpc: ClusterServer, cluster: Cluster, http_files: HttpFiles, tmp_path: Path
) -> None:
    url = http_files.add("/datasets/data.bin", DATA)
    token = hpc.server.token("alice")
    key = _new_key(hpc, cluster, token, LOGIN)
    code, output = _trigger(hpc, token, key, "roundtrip", url)
    assert code == 0, output
    execution_id = _execution_id(output)

    # staged in as the user's own account, complete
    owner = cluster.run_as(LOGIN, f"stat -c %U .hpcwaas/executions/{execution_id}/in/data.bin")
    assert owner.stdout.strip() == LOGIN
    digest = cluster.run_as(LOGIN, f"sha256sum .hpcwaas/executions/{execution_id}/in/data.bin")
    assert digest.stdout.split()[0] == DIGEST

    listed = hpc.waas(token, "-o", "json", "executions", "outputs", execution_id)
    assert listed.returncode == 0, listed.stderr
    outputs = {o["name"]: o for o in json.loads(listed.stdout)}
    assert set(outputs) == {"compressed", "everything"}
    assert outputs["compressed"]["metadata"] == {"mid": "dataset-1", "register": True}
    assert outputs["everything"]["media_type"] == "application/gzip"
    assert outputs["everything"]["file_name"] == "everything.tar.gz"

    table = hpc.waas(token, "executions", "outputs", execution_id)
    assert table.returncode == 0, table.stderr
    assert all(header in table.stdout for header in ("Name", "Size", "SHA-256"))
    assert outputs["compressed"]["sha256"] in table.stdout

    target = tmp_path / "downloads"
    fetched = hpc.waas(token, "executions", "outputs", execution_id, "--download", str(target))
    assert fetched.returncode == 0, fetched.stderr
    paths = sorted(fetched.stdout.split())
    assert paths == [str(target / "compressed.gz"), str(target / "everything.tar.gz")]
    assert gzip.decompress((target / "compressed.gz").read_bytes()) == DATA
    for name, path in (("compressed", "compressed.gz"), ("everything", "everything.tar.gz")):
        assert hashlib.sha256((target / path).read_bytes()).hexdigest() == outputs[name]["sha256"]

    with hpc.server.client(token) as client:
        response = client.get(f"/executions/{execution_id}/outputs/compressed")
        assert response.status_code == 200
        assert response.headers["etag"] == f'"{outputs["compressed"]["sha256"]}"'
        assert response.headers["content-disposition"].startswith("attachment;")
        assert hashlib.sha256(response.content).hexdigest() == outputs["compressed"]["sha256"]
        missing = client.get(f"/executions/{execution_id}/outputs/nothing")
        assert missing.status_code == 404
        assert "has no output 'nothing'" in missing.json()["errors"][0]["detail"]

    logs = hpc.waas(token, "executions", "logs", execution_id).stdout
    assert "Downloaded 3.0 MiB" in logs and "SHA-256 verified" in logs
    assert "no data catalogue" not in logs and "none is configured on this server" in logs

    # someone else learns nothing, not even that the execution exists
    other = hpc.server.token("mallory")
    with hpc.server.client(other) as client:
        for path in ("outputs", "outputs/compressed"):
            response = client.get(f"/executions/{execution_id}/{path}")
            assert response.status_code == 404, response.text
    denied = hpc.waas(other, "executions", "outputs", execution_id)
    assert denied.returncode == 1 and "not found" in denied.stdout + denied.stderr


def test_a_download_over_max_bytes_fails_the_step_and_leaves_nothing_on_the_cluster(
    hpc: ClusterServer, cluster: Cluster, http_files: HttpFiles
) -> None:
    url = http_files.add("/big.bin", DATA)
    token = hpc.server.token("alice")
    key = _new_key(hpc, cluster, token, LOGIN)
    code, output = _trigger(hpc, token, key, "limited", url)
    assert code == 1, output
    execution_id = _execution_id(output)
    status = json.loads(hpc.waas(token, "-o", "json", "executions", "status", execution_id).stdout)
    assert status["status"] == "FAILED"
    assert f"is {len(DATA)} bytes, more than max_bytes (100000); not downloaded" in status["error"]
    assert _remote_files(cluster, execution_id) == []


def test_a_sha256_mismatch_fails_the_step_and_leaves_no_partial_file(
    hpc: ClusterServer, cluster: Cluster, http_files: HttpFiles
) -> None:
    url = http_files.add("/other.bin", DATA)
    token = hpc.server.token("alice")
    key = _new_key(hpc, cluster, token, LOGIN)
    code, output = _trigger(hpc, token, key, "checked", url)
    assert code == 1, output
    execution_id = _execution_id(output)
    status = json.loads(hpc.waas(token, "-o", "json", "executions", "status", execution_id).stdout)
    assert status["status"] == "FAILED"
    assert "SHA-256 mismatch" in status["error"] and DIGEST in status["error"]
    assert "the file was not kept" in status["error"]
    assert _remote_files(cluster, execution_id) == []
