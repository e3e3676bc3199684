"""An imported image topology on the loopback cluster: its deployment phase builds the image
(the stand-in Image Creation service, tests/image_service.py) and moves it onto the cluster
as the environment's service identity, and the user's PyCOMPSs job runs in that image.

The topology is tests/unit/data/tosca/registry/image_deployment.yaml, shaped like the
registry's minimal_workflow/tosca/classic: ImageCreation and DLSDAGImageTransfer in standard
mode, a PyCOMPSJob whose img_transfer requirement names the transfer. enqueue_compss is the
test cluster's stand-in, which records its arguments.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.cluster_support import Cluster
from tests.conftest import wait_for_status
from tests.http_files import HttpFiles
from tests.image_service import ImageService
from tests.integration.test_cluster_deployment import _identity
from tests.integration.test_cluster_runs import _execution_id, _new_key
from tests.integration.test_images_cluster import ImagesServer
from tests.unit.tosca_topologies import DATA

pytestmark = pytest.mark.images

TOPOLOGY = DATA / "registry" / "image_deployment.yaml"
WORKFLOW_ID = "ImageDeployment@cluster@exec_job"
USER, SERVICE = "hpcuser1", "hpcuser2"  # the user's cluster login, the service identity's
FILENAME = "counting_workflow_counter_sandybridge_openmpi_4_nogpu_v_latest.sif"
APP = b"""import sys
open(sys.argv[1], "w").write("counted\\n")
"""


@pytest.fixture
def deployed(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster, image_service: ImageService
) -> Iterator[tuple[ImagesServer, str]]:
    """The images server with the topology, the directory its deployment moves the image to."""
    images_dir = f"/tmp/hpcwaas-deployed-images-{uuid.uuid4().hex[:8]}"
    setup = ImagesServer(tmp_path, cluster, image_service)
    catalog = tmp_path / "catalog"
    shutil.copy(TOPOLOGY, catalog / TOPOLOGY.name)
    tags = {
        "hpcwaas-workflows": "exec_job",
        "hpcwaas-environments": "cluster",
        "hpcwaas-deployment-inputs": {"image_directory": images_dir},
    }
    (catalog / TOPOLOGY.name).with_suffix(".tags").write_text(yaml.safe_dump(tags))
    environments = json.loads(setup.server.env["HPCWAAS_ENVIRONMENTS"])
    environments["cluster"]["deployment_user"] = "svc-images"
    setup.server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
    setup.server.start()
    yield setup, images_dir
    setup.server.stop()
    cluster.run_as(SERVICE, f"rm -rf {images_dir}")


def test_the_job_of_an_imported_topology_runs_in_the_image_its_deployment_moved(
    deployed: tuple[ImagesServer, str], cluster: Cluster, http_files: HttpFiles
) -> None:
    images, images_dir = deployed
    with images.server.client(images.server.token("svc-images")) as service:
        _identity(service, cluster, SERVICE)
    token = images.server.token("alice")
    key = _new_key(images, cluster, token, USER)
    inputs = ["-i", f"user_id={USER}", "-i", f"vault_id={key}"]
    inputs += ["-i", f"app_url={http_files.add('/apps/counter.py', APP)}"]
    run = images.waas(token, "workflows", "trigger", *inputs, WORKFLOW_ID)
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = _execution_id(run.stdout)
    with images.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        assert body["status"] == "SUCCEEDED", client.get(f"/executions/{execution_id}/logs").text
    # the deployment moved the image, as the service identity's account
    image = f"{images_dir}/{FILENAME}"
    owner = cluster.run_as(SERVICE, f"stat -c %U {image}")
    assert owner.stdout.split() == [SERVICE], owner.stderr
    # the user's job got it as its container image
    work = f".hpcwaas/executions/{execution_id}"
    recorded = cluster.run_as(USER, f"cat {work}/enqueue_compss-*.args").stdout.splitlines()
    assert f"--container_image={image}" in recorded, recorded
    assert "--container_compss_path=/opt/view/compss" in recorded
    assert recorded[-2:] == ["counter.py", "result.txt"]
    # and a dry run now shows the image the deployment moved
    plan = images.waas(token, "workflows", "trigger", "--dry-run", *inputs, WORKFLOW_ID)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"--container_image={image}" in plan.stdout, plan.stdout
