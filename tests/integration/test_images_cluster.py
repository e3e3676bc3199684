"""Container images on the loopback cluster: built by the stand-in Image Creation service
(tests/image_service.py), streamed onto the cluster over SFTP, run by PyCOMPSs.

The workflow is shaped like the registry's rom_pillar_I: the image is built and moved, the
application is staged in, and the PyCOMPSs job runs in the container. enqueue_compss is the
test cluster's stand-in (tests/cluster/enqueue_compss), which records its arguments: the
job must receive --container_image pointing at the transferred file. The model upload of
rom_pillar_I (a DLS DAG) is left out here: test_rom_pillar_end_to_end.py runs the whole
topology, its data logistics as DAG runs on the real Airflow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, wait_for_status
from tests.http_files import HttpFiles
from tests.image_service import ImageService
from tests.integration.test_cluster_runs import ClusterServer, _execution_id, _new_key

pytestmark = pytest.mark.images

LOGIN = "hpcuser1"
CREDENTIALS = "services/images"
FILENAME = "rom_pillar_i_reduce_order_model_sandybridge_openmpi_4_nogpu_v_latest.sif"

ROM = """
application: rom
environments: [cluster]
expose: [pillar]
workflows:
  pillar:
    inputs:
      images_dir: {type: string}
      app_url: {type: string}
    steps:
      build:
        kind: image_build
        service_url: https://wrong.example.org/image_creation
        machine:
          platform: linux/amd64
          architecture: sandybridge
          container_engine: singularity
          mpi: openmpi@4
        workflow: rom_pillar_I
        step_id: reduce_order_model
      transfer:
        kind: image_transfer
        needs: [build]
        url: "{{ steps.build.outputs.download_url }}"
        target_path: "{{ inputs.images_dir }}"
      stage_in:
        kind: stage_in
        url: "{{ inputs.app_url }}"
        target_path: rom.py
      run:
        kind: pycompss
        needs: [transfer, stage_in]
        app: rom.py
        arguments: [done.txt]
        num_nodes: 1
        container_image: "{{ steps.transfer.outputs.image_path }}"
        container_compss_path: /opt/view/compss
        container_opts: -e
"""

APP = b"""import sys
open(sys.argv[1], "w").write("reduced\\n")
print("rom ran")
"""


class ImagesServer(ClusterServer):
    """The cluster server, whose cluster environment has the stand-in Image Creation service."""

    def __init__(self, tmp_path: Path, cluster: Cluster, service: ImageService) -> None:
        super().__init__(tmp_path, cluster)
        (tmp_path / "catalog" / "rom.yaml").write_text(ROM)
        environments = json.loads(self.server.env["HPCWAAS_ENVIRONMENTS"])
        environments["cluster"]["image_creation"] = {
            "url": service.url,  # the topology's service_url is wrong: this one wins
            "credentials": CREDENTIALS,
            "poll_interval": 0.2,
        }
        self.server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
        for key, value in service.users.items():
            for entry, text in (("username", key), ("password", value)):
                put = self.server.admin("secrets", "put", CREDENTIALS, entry, input_text=text)
                assert put.returncode == 0, put.stderr

    def trigger(self, token: str, key: str, *inputs: str) -> str:
        args = ["-i", f"user_id={LOGIN}", "-i", f"vault_id={key}"]
        for value in inputs:
            args += ["-i", value]
        run = self.waas(token, "workflows", "trigger", *args, "rom@cluster@pillar")
        assert run.returncode == 0, run.stdout + run.stderr
        return _execution_id(run.stdout)


@pytest.fixture
def images(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster, image_service: ImageService
) -> Iterator[ImagesServer]:
    setup = ImagesServer(tmp_path, cluster, image_service)
    setup.server.start()
    yield setup
    setup.server.stop()


def _logs(client: httpx.Client, execution_id: str) -> str:
    answer = client.get(f"/executions/{execution_id}/logs")
    assert answer.status_code == 200, answer.text
    return json.dumps(answer.json())


def _run(images: ImagesServer, server: LiveServer, token: str, key: str, *inputs: str) -> tuple:
    execution_id = images.trigger(token, key, *inputs)
    with server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        return execution_id, body, _logs(client, execution_id)


def test_pycompss_runs_in_the_image_built_and_moved_onto_the_cluster(
    images: ImagesServer, cluster: Cluster, image_service: ImageService, http_files: HttpFiles
) -> None:
    home = cluster.run_as(LOGIN, "echo $HOME").stdout.strip()
    images_dir = f"{home}/hpcwaas-images"
    cluster.run_as(LOGIN, f"rm -rf {images_dir}")
    app_url = http_files.add("/apps/rom.py", APP)
    token = images.server.token("alice")
    key = _new_key(images, cluster, token, LOGIN)
    inputs = (f"images_dir={images_dir}", f"app_url={app_url}")
    execution_id, body, logs = _run(images, images.server, token, key, *inputs)
    assert body["status"] == "SUCCEEDED", logs
    assert "Build " in logs and "FINISHED" in logs, logs
    # the image is on the cluster, whole, owned by the user's account
    image = f"{images_dir}/{FILENAME}"
    listed = cluster.run_as(LOGIN, f"sha256sum {image}; stat -c %U {image}; ls -A {images_dir}")
    expected = hashlib.sha256(image_service.image(FILENAME)).hexdigest()
    assert listed.stdout.split() == [expected, image, LOGIN, FILENAME], listed.stderr
    # enqueue_compss got the container options, the image being the transferred file
    work = f".hpcwaas/executions/{execution_id}"
    recorded = cluster.run_as(LOGIN, f"cat {work}/enqueue_compss-*.args").stdout.splitlines()
    assert f"--container_image={image}" in recorded, recorded
    assert "--container_compss_path=/opt/view/compss" in recorded
    assert "--container_opts=-e" in recorded
    assert recorded[-2:] == ["rom.py", "done.txt"]
    # a second execution reuses the finished build and the image already there
    _, body, logs = _run(images, images.server, token, key, *inputs)
    assert body["status"] == "SUCCEEDED", logs
    assert len(image_service.requests) == 1, image_service.requests
    assert image_service.hits[f"/images/download/{FILENAME}"] == 1
    assert "exists already" in logs and "reused" in logs, logs


def test_a_failed_build_fails_the_execution_with_the_services_message_and_moves_nothing(
    images: ImagesServer, cluster: Cluster, image_service: ImageService, http_files: HttpFiles
) -> None:
    image_service.failure = "spack concretization failed for openmpi@4"
    images_dir = "hpcwaas-images-failed"
    cluster.run_as(LOGIN, f"rm -rf {images_dir}")
    token = images.server.token("alice")
    key = _new_key(images, cluster, token, LOGIN)
    app_url = http_files.add("/apps/rom.py", APP)
    _, body, logs = _run(
        images, images.server, token, key, f"images_dir={images_dir}", f"app_url={app_url}"
    )
    assert body["status"] == "FAILED", logs
    assert "spack concretization failed for openmpi@4" in logs, logs
    assert cluster.run_as(LOGIN, f"test -e {images_dir}").returncode != 0
