"""The rom_pillar_I shape (tests/unit/data/tosca/registry/rom_pillar.yaml): on an environment
with an Airflow its data logistics nodes are DAG runs of the DLS and its job runs in the image
of the deployment phase; without one it is not offered, naming the steps that need it. The
test cluster runs it end to end: tests/integration/test_rom_pillar_end_to_end.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.unit.tosca_topologies import DATA

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.engine.plan import build_plan
from hpcwaas.settings import SlurmEnvironment

pytestmark = [pytest.mark.images, pytest.mark.dls]

FIXTURE = DATA / "registry" / "rom_pillar.yaml"
WORKFLOW_ID = "RomPillar@cluster@exec_job"
HOST = "login.hpc.example"
CLUSTER = SlurmEnvironment(
    kind="slurm",
    host=HOST,
    host_keys=[f"{HOST} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"],
    airflow={"url": "https://dls.example.org", "credentials": "services/dls"},
)
INPUTS = {
    "user_id": "ada",
    "vault_id": "k1",
    "data_oid": "rom-case-0042",
    "data_path": "/scratch/ada/case",
    "rom_path": "/scratch/ada/rom",
    "parameters": "mu=0.5",
}
IMAGE = "/shared/images/rom_pillar_i_reduce_order_model.sif"


def _load(tmp_path: Path, services: frozenset[str]) -> Catalog:
    path = tmp_path / FIXTURE.name
    shutil.copy(FIXTURE, path)
    shutil.copy(FIXTURE.with_suffix(".tags"), path.with_suffix(".tags"))
    return Catalog.load(
        [path], {"cluster": "Cluster"}, {"cluster": "slurm"}, {"cluster": HOST},
        {"cluster": services},
    )  # fmt: skip


def test_with_an_airflow_the_dry_run_shows_the_dag_runs_and_the_job_in_the_deployed_image(
    tmp_path: Path,
) -> None:
    catalog = _load(tmp_path, frozenset({"airflow", "image_creation"}))
    deployment = catalog.deployment("RomPillar", "cluster")
    assert deployment is not None and list(deployment.spec.steps) == ["BuildImage", "MoveImage"]
    workflow = catalog.by_id(WORKFLOW_ID)
    assert workflow is not None, [p.message for p in catalog.file_problems]
    inputs = validate_inputs(workflow.spec, INPUTS)
    moved = {"MoveImage": {"image_path": IMAGE}}
    plan = build_plan(workflow, inputs, CLUSTER, local_work_root=tmp_path, deployment_outputs=moved)
    steps = {step.name: step for step in plan.steps}
    assert list(steps) == ["CaseDownload", "Reduce", "UploadCenter", "UploadOutside"]
    assert all(step.error is None for step in plan.steps), plan.steps
    stage_in = steps["CaseDownload"]
    assert stage_in.command == "trigger a run of DAG webdav_stagein"
    conf = {"oid": "rom-case-0042", "target": "/scratch/ada/case", "force": True}
    assert json.loads(stage_in.script or "") == conf
    job = steps["Reduce"]
    assert job.needs == ["CaseDownload"]
    assert f"--container_image={IMAGE} " in str(job.command)
    words = "/reduce_order_model/src/Workflow.py /scratch/ada/case/data /scratch/ada/rom mu=0.5"
    assert str(job.command).endswith(" " + words)
    for name, subfolder in (("UploadCenter", "center"), ("UploadOutside", "outside")):
        upload = steps[name]
        assert upload.needs == ["Reduce"]
        assert upload.command == "trigger a run of DAG mlflow_upload_model"
        conf = {"location": "/scratch/ada/rom", "subfolder": subfolder}
        assert json.loads(upload.script or "") == conf


def test_without_an_airflow_it_is_not_offered_naming_each_step_that_needs_one(
    tmp_path: Path,
) -> None:
    catalog = _load(tmp_path, frozenset({"image_creation"}))
    assert catalog.by_id(WORKFLOW_ID) is None
    text = "\n".join(p.message for p in catalog.file_problems)
    for step in ("CaseDownload", "UploadCenter", "UploadOutside"):
        assert (
            f"step {step!r} of kind dag_run needs the environment's airflow: setting, which "
            "environment 'cluster' does not have"
        ) in text, text
