"""A rom_pillar_I-shaped topology end to end on the loopback cluster, its data logistics as
runs of DLS DAGs on the real Airflow.

The topology is tests/unit/data/tosca/registry/rom_pillar.yaml: its deployment phase builds the
image (the stand-in Image Creation service, tests/image_service.py) and moves it onto the
cluster through the DLS's transfer_image DAG (dags/dls_images.py) as the environment's service
identity; each execution stages its case in (webdav_stagein), runs the PyCOMPSs job in that
image, and uploads the two reduced order models it wrote (mlflow_upload_model, twice). The
last two DAGs are the stand-ins of tests/dags/dls_standins.py: a data catalogue in an Airflow
variable whose dataset the tests' HTTP server serves, and a model repository directory on the
Airflow host. enqueue_compss is the test cluster's stand-in, which records its arguments.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from tests.airflow_support import Airflow
from tests.cluster_support import Cluster
from tests.conftest import wait_for_status
from tests.http_files import HttpFiles
from tests.image_service import ImageService
from tests.integration.test_cluster_deployment import _identity
from tests.integration.test_cluster_runs import _execution_id, _new_key
from tests.integration.test_dls_images import DlsImages
from tests.integration.test_dls_runs import LOGIN, _logs, _runs_of
from tests.openbao_support import OpenBao
from tests.unit.tosca_topologies import DATA

pytestmark = [pytest.mark.images, pytest.mark.dls]

TOPOLOGY = DATA / "registry" / "rom_pillar.yaml"
WORKFLOW_ID = "RomPillar@cluster@exec_job"
SERVICE_USER, SERVICE_LOGIN = "svc-rom", "hpcuser2"
OID = "rom-case-0042"
CASE = {"mesh.csv": b"x,y\n0,0\n1,0\n1,1\n", "snapshots/s1.csv": b"u\n0.1\n0.2\n0.3\n"}
# The application of the image, run by the enqueue_compss stand-in on the host: it reads the
# staged-in case and writes one model per region, as the DLS's mlflow_upload_model expects
# them (attrs.json beside the model files).
APP = """import json, os, sys
data, rom, parameters = sys.argv[1:4]
rows = sum(len(open(os.path.join(d, f)).read().splitlines())
           for d, _, files in os.walk(data) for f in files)
for region in ("center", "outside"):
    os.makedirs(os.path.join(rom, region), exist_ok=True)
    with open(os.path.join(rom, region, "basis.txt"), "w") as out:
        out.write(f"{region} basis from {rows} rows with {parameters}\\n")
    with open(os.path.join(rom, region, "attrs.json"), "w") as out:
        json.dump({"name": f"rom_{region}", "params": {"parameters": parameters}}, out)
print("reduced order models written to", rom)
"""


class Rom(NamedTuple):
    """The dls server with the topology, the image directory, the stand-in model repository,
    and a directory of alice's account (hpcuser1) for the run's files."""

    setup: DlsImages
    images_dir: str
    repository: Path
    work: str


@pytest.fixture
def rom(
    tmp_path: Path,
    cluster: Cluster,
    cluster_jobs_cleanup: Cluster,
    airflow: Airflow,
    openbao: OpenBao,
    image_service: ImageService,
    http_files: HttpFiles,
) -> Iterator[Rom]:
    images_dir = f"/tmp/hpcwaas-rom-images-{uuid.uuid4().hex[:8]}"
    setup = DlsImages(tmp_path, cluster, airflow, openbao, image_service)
    catalog = tmp_path / "catalog"
    shutil.copy(TOPOLOGY, catalog / TOPOLOGY.name)
    tags = yaml.safe_load(TOPOLOGY.with_suffix(".tags").read_text())
    tags["hpcwaas-deployment-inputs"] = {"container_image_transfer_directory": images_dir}
    (catalog / TOPOLOGY.name).with_suffix(".tags").write_text(yaml.safe_dump(tags))
    config_path = tmp_path / "hpcwaas.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["cluster"]["deployment_user"] = SERVICE_USER
    config_path.write_text(yaml.safe_dump(config))
    # the stand-ins' data catalogue and model repository (tests/dags/dls_standins.py)
    base = "/datasets/case-0042/data/"
    for name, data in CASE.items():
        http_files.add(base + name, data)
    entry = {"url": http_files.url(base), "files": sorted(CASE)}
    airflow.set_variable("stand_in_datacat", json.dumps({OID: entry}))
    repository = tmp_path / "model-repository"
    repository.mkdir()
    airflow.set_variable("stand_in_model_repository", str(repository))
    setup.start()
    home = cluster.run_as(LOGIN, "pwd").stdout.strip()
    work = f"{home}/rom-{uuid.uuid4().hex[:8]}"
    yield Rom(setup, images_dir, repository, work)
    setup.server.stop()
    cluster.run_as(SERVICE_LOGIN, f"rm -rf {images_dir}")
    cluster.run_as(LOGIN, f"rm -rf {work}")


def _user(rom: Rom, cluster: Cluster, oid: str) -> tuple[str, str, list[str]]:
    """The service identity and alice registered, the application in alice's account: her
    token, her key and the trigger's inputs for ``oid``."""
    setup, work = rom.setup, rom.work
    with setup.server.client(setup.server.token(SERVICE_USER)) as service:
        _identity(service, cluster, SERVICE_LOGIN)
    token = setup.server.token("alice")
    key = _new_key(setup, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    script = f"mkdir -p {work} && cat > {work}/Workflow.py <<'EOF'\n{APP}EOF"
    written = cluster.run_as(LOGIN, script)
    assert written.returncode == 0, written.stderr
    inputs = ["-i", f"user_id={LOGIN}", "-i", f"vault_id={key}", "-i", f"data_oid={oid}"]
    inputs += ["-i", f"data_path={work}/case", "-i", f"rom_path={work}/rom"]
    inputs += ["-i", "parameters=mu=0.5", "-i", f"application={work}/Workflow.py"]
    return token, key, inputs


def _run(setup: DlsImages, token: str, inputs: list[str]) -> tuple[str, dict[str, Any], str]:
    """Trigger with ``inputs``, wait for the end: the execution ID, its body and its logs."""
    run = setup.waas(token, "workflows", "trigger", *inputs, WORKFLOW_ID)
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = _execution_id(run.stdout)
    with setup.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=240)
        return execution_id, body, _logs(client, execution_id)


def test_rom_pillar_stages_in_runs_in_the_deployed_image_and_uploads_its_models_through_the_dls(
    rom: Rom, cluster: Cluster, image_service: ImageService
) -> None:
    setup, images_dir, repository, work = rom
    token, key, inputs = _user(rom, cluster, OID)
    case, models = f"{work}/case", f"{work}/rom"
    execution_id, body, logs = _run(setup, token, inputs)
    assert body["status"] == "SUCCEEDED", logs

    # the deployment built the image and moved it with the DLS's transfer_image DAG
    shown = setup.server.admin("deployments", "show", "RomPillar", "cluster", "--json")
    assert shown.returncode == 0, shown.stderr
    deployment = json.loads(shown.stdout)
    assert deployment["status"] == "SUCCEEDED", deployment
    [transfer] = _runs_of(setup.airflow, "transfer_image", deployment["execution_id"])
    assert transfer["state"] == "success"
    assert transfer["conf"]["login"] == SERVICE_LOGIN and transfer["conf"]["target"] == images_dir
    image = posixpath.join(images_dir, transfer["conf"]["image_id"])
    digest = cluster.run_as(LOGIN, f"sha256sum {image}").stdout.split()[0]
    assert digest == hashlib.sha256(image_service.image(transfer["conf"]["image_id"])).hexdigest()
    deployment_log = setup.server.admin("deployments", "logs", "RomPillar", "cluster")
    assert deployment_log.returncode == 0, deployment_log.stderr
    assert "[stream_upload]" in deployment_log.stdout, deployment_log.stdout
    assert "Copied" in deployment_log.stdout

    # the case came in through webdav_stagein, as the user's account, from the catalogue's URL
    [stage_in] = _runs_of(setup.airflow, "webdav_stagein", execution_id)
    assert stage_in["state"] == "success"
    conf = stage_in["conf"]
    assert (conf["oid"], conf["target"], conf["force"]) == (OID, case, True)
    assert (conf["login"], conf["vault_id"]) == (LOGIN, key)
    staged = cluster.run_as(LOGIN, f"cat {case}/data/mesh.csv {case}/data/snapshots/s1.csv")
    assert staged.stdout.encode() == CASE["mesh.csv"] + CASE["snapshots/s1.csv"], staged.stderr
    assert "Copied 2 files" in logs

    # the job ran in the transferred image, on the staged-in case
    job_dir = f".hpcwaas/executions/{execution_id}"
    recorded = cluster.run_as(LOGIN, f"cat {job_dir}/enqueue_compss-*.args").stdout.splitlines()
    assert f"--container_image={image}" in recorded, recorded
    assert recorded[-4:] == [f"{work}/Workflow.py", f"{case}/data", models, "mu=0.5"]

    # both models went to the (stand-in) model repository, each by its own DAG run
    uploads = _runs_of(setup.airflow, "mlflow_upload_model", execution_id)
    assert sorted(r["conf"]["subfolder"] for r in uploads) == ["center", "outside"]
    for upload in uploads:
        region = upload["conf"]["subfolder"]
        assert upload["state"] == "success"
        assert upload["conf"]["location"] == models
        assert (upload["conf"]["login"], upload["conf"]["vault_id"]) == (LOGIN, key)
        stored = repository / upload["dag_run_id"]
        assert sorted(p.name for p in stored.iterdir()) == ["attrs.json", "basis.txt"]
        basis = (stored / "basis.txt").read_text()
        assert basis == f"{region} basis from 8 rows with mu=0.5\n"
        assert f"Uploaded {models}/{region}/basis.txt" in logs

    # and the dry run now shows the DAG runs and the image the deployment moved
    plan = setup.waas(token, "workflows", "trigger", "--dry-run", *inputs, WORKFLOW_ID)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "trigger a run of DAG webdav_stagein" in plan.stdout, plan.stdout
    assert "trigger a run of DAG mlflow_upload_model" in plan.stdout
    assert f"--container_image={image}" in plan.stdout


def test_an_oid_the_data_catalogue_does_not_know_fails_the_stage_in_and_nothing_runs_after_it(
    rom: Rom, cluster: Cluster
) -> None:
    setup, _, repository, work = rom
    token, _, inputs = _user(rom, cluster, "rom-case-unknown")
    execution_id, body, logs = _run(setup, token, inputs)
    assert body["status"] == "FAILED", logs
    assert "oid 'rom-case-unknown' is not in the data catalogue" in logs, logs
    steps = {step["name"]: step["state"] for step in body["steps"]}
    assert steps["CaseDownload"] == "FAILED"
    assert {steps[s] for s in ("Reduce", "UploadCenter", "UploadOutside")} == {"SKIPPED"}, steps
    assert not cluster.run_as(LOGIN, f"ls {work}/case").stdout
    assert _runs_of(setup.airflow, "mlflow_upload_model", execution_id) == []
    assert list(repository.iterdir()) == []
