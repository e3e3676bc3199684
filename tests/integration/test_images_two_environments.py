"""An imported image topology on two environments: its one deployment builds the image and moves
it onto each environment as that environment's service identity, and each cluster's PyCOMPSs
job runs in the image moved there.

The topology is tests/unit/data/tosca/registry/parallel.yaml, shaped like the registry's
minimal_workflow/tosca/parallel. The two environments are the loopback cluster reached as two
environment IDs (``hpc-a``: working root ``.hpcwaas``; ``hpc-b``: ``site-b``), as in
test_cluster_environments.py; each has its own deployment_user, whose account differs
(``hpc-a``: hpcuser2, ``hpc-b``: hpcuser1), so an image moved as the wrong one shows in its
owner. The Image Creation service is the stand-in of tests/image_service.py; enqueue_compss
the test cluster's stand-in, which records its arguments.
"""

from __future__ import annotations

import json
import pwd
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
from tests.integration.test_cluster_runs import _execution_id
from tests.integration.test_images_cluster import ImagesServer
from tests.unit.tosca_topologies import DATA

pytestmark = pytest.mark.images

TOPOLOGY = DATA / "registry" / "parallel.yaml"
WORKFLOW_ID = "ParallelImages@hpc-a@exec_job"
USER = "hpcuser1"  # alice's login on both environments
SERVICES = {"hpc-a": ("svc-a", "hpcuser2"), "hpc-b": ("svc-b", "hpcuser1")}
APP = b"""import sys
open(sys.argv[1], "w").write("counted\\n")
"""


@pytest.fixture
def two_environments(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster, image_service: ImageService
) -> Iterator[tuple[ImagesServer, dict[str, str]]]:
    """The server with the topology on hpc-a and hpc-b; the image directory of each."""
    tag = uuid.uuid4().hex[:8]
    images = {e: f"/tmp/hpcwaas-images-{e}-{tag}" for e in SERVICES}
    setup = ImagesServer(tmp_path, cluster, image_service)
    environments = json.loads(setup.server.env["HPCWAAS_ENVIRONMENTS"])
    loopback = environments.pop("cluster")  # with the stand-in Image Creation service
    for environment, name, root in (("hpc-a", "Site A", ".hpcwaas"), ("hpc-b", "Site B", "site-b")):
        environments[environment] = {**loopback, "name": name, "work_root": root}
        environments[environment]["deployment_user"] = SERVICES[environment][0]
    setup.server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
    catalog = tmp_path / "catalog"
    for old in catalog.iterdir():
        old.unlink()  # the files of ImagesServer run on `cluster`, not configured here
    shutil.copy(TOPOLOGY, catalog / TOPOLOGY.name)
    tags = yaml.safe_load(TOPOLOGY.with_suffix(".tags").read_text())
    tags["hpcwaas-deployment-inputs"] = {
        "images_cluster1": images["hpc-a"],
        "images_cluster2": images["hpc-b"],
    }
    (catalog / TOPOLOGY.name).with_suffix(".tags").write_text(yaml.safe_dump(tags))
    setup.server.start()
    yield setup, images
    setup.server.stop()
    for environment, (_, login) in SERVICES.items():
        cluster.run_as(login, f"rm -rf {images[environment]}")
    for login in ("hpcuser1", "hpcuser2"):  # the second environment's root, this test's only
        shutil.rmtree(Path(pwd.getpwnam(login).pw_dir, "site-b"), ignore_errors=True)


def _key(setup: ImagesServer, cluster: Cluster, user: str, login: str) -> str:
    """A new SSH key of ``user``'s, authorized for ``login`` (beside the keys already there)."""
    made = setup.waas(setup.server.token(user), "-o", "json", "ssh_keys", "key-gen")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    cluster.authorize(login, key["public_key"])
    return str(key["id"])


def test_one_deployment_moves_the_image_to_each_environment_for_the_job_there(
    two_environments: tuple[ImagesServer, dict[str, str]], cluster: Cluster, http_files: HttpFiles
) -> None:
    setup, images = two_environments
    for login in ("hpcuser1", "hpcuser2"):
        cluster.clear_authorized(login)
    for environment, (service, login) in SERVICES.items():
        key = _key(setup, cluster, service, login)
        token = setup.server.token(service)
        saved = setup.waas(
            token, "environments", "set-identity", environment, "--login", login, "--key", key
        )
        assert saved.returncode == 0, saved.stderr
    token = setup.server.token("alice")
    key = _key(setup, cluster, "alice", USER)
    inputs = ["-i", f"user_id={USER}", "-i", f"vault_id={key}"]
    inputs += ["-i", f"app_url={http_files.add('/apps/counter.py', APP)}"]
    run = setup.waas(token, "workflows", "trigger", *inputs, WORKFLOW_ID)
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = _execution_id(run.stdout)
    with setup.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=240)
        assert body["status"] == "SUCCEEDED", client.get(f"/executions/{execution_id}/logs").text
    home = pwd.getpwnam(USER).pw_dir
    work = {"hpc-a": ".hpcwaas", "hpc-b": "site-b"}
    for environment, (_, login) in SERVICES.items():
        # the image is on each environment, moved as that environment's service identity
        listed = cluster.run_as(login, f"ls {images[environment]}")
        (name,) = listed.stdout.split()
        image = f"{images[environment]}/{name}"
        owner = cluster.run_as(login, f"stat -c %U {image}")
        assert owner.stdout.split() == [login], owner.stderr
        # and the job there received that one as its container image
        args = Path(home, work[environment], "executions", execution_id).glob("enqueue_compss-*")
        (recorded,) = [p.read_text().splitlines() for p in args if p.name.endswith(".args")]
        assert f"--container_image={image}" in recorded, (environment, recorded)
        cluster_number = "1" if environment == "hpc-a" else "2"
        assert recorded[-2:] == ["counter.py", f"cluster{cluster_number}.txt"]
