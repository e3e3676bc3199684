"""image_transfer steps through the Data Logistics Service: on an environment with an Airflow,
the image built by the stand-in Image Creation service goes onto the cluster by a run of the
DLS's transfer_image DAG (dags/dls_images.py), which reads the user's key from the Vault."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.airflow_support import Airflow
from tests.cluster_support import Cluster
from tests.conftest import wait_for_status
from tests.http_files import HttpFiles
from tests.image_service import ImageService
from tests.integration.test_cluster_runs import _execution_id, _new_key
from tests.integration.test_dls_runs import LOGIN, DlsSetup, _logs, _runs_of
from tests.integration.test_images_cluster import APP, FILENAME, ROM
from tests.openbao_support import OpenBao

pytestmark = pytest.mark.images

CREDENTIALS = "services/images"


class DlsImages(DlsSetup):
    """The dls server, whose cluster environment also has the stand-in Image Creation service."""

    def __init__(self, tmp_path: Path, cluster: Cluster, airflow: Airflow, vault: OpenBao,
                 service: ImageService) -> None:  # fmt: skip
        super().__init__(tmp_path, cluster, airflow, vault)
        self.service = service
        (tmp_path / "catalog" / "rom.yaml").write_text(ROM)
        path = tmp_path / "hpcwaas.yml"
        config = yaml.safe_load(path.read_text())
        config["environments"]["cluster"]["image_creation"] = {
            "url": service.url,
            "credentials": CREDENTIALS,
            "poll_interval": 0.2,
        }
        path.write_text(yaml.safe_dump(config))

    def start(self) -> None:
        for key, value in self.service.users.items():
            for entry, text in (("username", key), ("password", value)):
                put = self.server.admin("secrets", "put", CREDENTIALS, entry, input_text=text)
                assert put.returncode == 0, put.stderr
        super().start()


@pytest.fixture
def dls_images(
    tmp_path: Path,
    cluster: Cluster,
    cluster_jobs_cleanup: Cluster,
    airflow: Airflow,
    openbao: OpenBao,
    image_service: ImageService,
) -> Iterator[DlsImages]:
    setup = DlsImages(tmp_path, cluster, airflow, openbao, image_service)
    setup.start()
    yield setup
    setup.server.stop()


def test_with_an_airflow_the_image_goes_to_the_cluster_by_the_dls_transfer_image_dag(
    dls_images: DlsImages, cluster: Cluster, image_service: ImageService, http_files: HttpFiles
) -> None:
    images_dir = "dls-images"
    cluster.run_as(LOGIN, f"rm -rf {images_dir}")
    token = dls_images.server.token("alice")
    key = _new_key(dls_images, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    app_url = http_files.add("/apps/rom.py", APP)
    args = ["-i", f"user_id={LOGIN}", "-i", f"vault_id={key}"]
    args += ["-i", f"images_dir={images_dir}", "-i", f"app_url={app_url}"]
    run = dls_images.waas(token, "workflows", "trigger", *args, "rom@cluster@pillar")
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = _execution_id(run.stdout)
    with dls_images.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=240)
        logs = _logs(client, execution_id)
    assert body["status"] == "SUCCEEDED", logs
    [dag_run] = _runs_of(dls_images.airflow, "transfer_image", execution_id)
    assert dag_run["state"] == "success"
    conf = dag_run["conf"]
    assert conf["image_id"] == FILENAME
    assert conf["url"] == f"{image_service.url}/images/download/"
    assert conf["login"] == LOGIN and conf["vault_id"] == key
    # relative to the execution's directory, as without an Airflow
    work = f".hpcwaas/executions/{execution_id}"
    assert conf["target"] == f"{work}/{images_dir}"
    image = f"{work}/{images_dir}/{FILENAME}"
    digest = cluster.run_as(LOGIN, f"sha256sum {image}").stdout.split()[0]
    assert digest == hashlib.sha256(image_service.image(FILENAME)).hexdigest()
    recorded = cluster.run_as(LOGIN, f"cat {work}/enqueue_compss-*.args").stdout.splitlines()
    assert f"--container_image={images_dir}/{FILENAME}" in recorded, recorded
    assert "[stream_upload]" in logs and "Copied" in logs
