"""The image_build and image_transfer kinds: their checks, what they render, and a dry run of a
workflow shaped like the registry's rom_pillar_I (build, transfer, stage in, PyCOMPSs in the
container)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.catalog.kinds.base import ClusterAccess, ClusterDefaults, Preparation
from hpcwaas.catalog.kinds.image_build import ImageBuildKind, ImageBuildStep
from hpcwaas.catalog.kinds.image_transfer import (
    THROUGH_DLS,
    ImageTransferKind,
    ImageTransferStep,
)
from hpcwaas.catalog.kinds.transfers import TransferError
from hpcwaas.catalog.loader import read_application
from hpcwaas.engine.plan import build_plan
from hpcwaas.schedulers.slurm_options import SlurmDefaults
from hpcwaas.settings import SlurmEnvironment

pytestmark = pytest.mark.images

ROM_PILLAR = """\
application: rom
environments: [hpc]
expose: [pillar]
workflows:
  pillar:
    inputs:
      architecture: {type: string, default: sandybridge, pattern: "[a-z0-9_]+"}
      images_dir: {type: string, default: images}
      model_url: {type: string, default: "https://models.example.org/rom/model.zip"}
    steps:
      build:
        kind: image_build
        service_url: https://images.example.org/image_creation
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
        url: "{{ inputs.model_url }}"
        target_path: model.zip
      run:
        kind: pycompss
        needs: [transfer, stage_in]
        app: /reduce_order_model/src/rom.py
        arguments: [model.zip]
        num_nodes: 2
        container_image: "{{ steps.transfer.outputs.image_path }}"
        container_compss_path: /opt/view/compss
        container_opts: -e
"""

SLURM = SlurmEnvironment(
    kind="slurm",
    host="login.example.org",
    host_keys=["login.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"],
)


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "rom.yaml"
    path.write_text(text)
    return read_application(path).application


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(CatalogFileError) as info:
        _load(tmp_path, text)
    return "\n".join(info.value.problems)


def _request(step_outputs: dict[str, dict[str, str]] | None = None) -> Preparation:
    return Preparation(
        execution_id="e1",
        step_name="s",
        inputs={"architecture": "sandybridge", "images_dir": "/home/u/images"},
        step_outputs=step_outputs,
        limits={"max_stage_in_bytes": 10 * 1024**3},
        work_dir=".hpcwaas/executions/e1",
        cluster=ClusterDefaults(SlurmDefaults()),
    )


def test_a_build_request_has_the_services_keys_with_its_templates_rendered(tmp_path):
    text = ROM_PILLAR.replace(
        "step_id: reduce_order_model", "step_id: rom_{{ inputs.architecture }}"
    )
    step = _load(tmp_path, text).workflows["pillar"].steps["build"]
    assert isinstance(step, ImageBuildStep)
    request = ImageBuildKind().prepare(step, _request())
    assert request.service == "image_creation"
    assert request.service_url == "https://images.example.org/image_creation"
    assert request.body == {
        "machine": {
            "platform": "linux/amd64",
            "architecture": "sandybridge",
            "container_engine": "singularity",
            "mpi": "openmpi@4",
        },
        "workflow": "rom_pillar_I",
        "step_id": "rom_sandybridge",
        "version": "latest",
        "force": False,
        "push": True,
    }


def test_a_build_step_offers_the_builds_outputs_and_refuses_others(tmp_path):
    step = _load(tmp_path, ROM_PILLAR).workflows["pillar"].steps["build"]
    assert step.outputs == ["build_id", "image_id", "filename", "download_url"]
    one = "        step_id: reduce_order_model\n"
    text = ROM_PILLAR.replace(one, one + "        outputs: [sif]\n")
    problems = _problems(tmp_path, text)
    assert "an image build gives no 'sif'" in problems


def test_a_build_for_an_unknown_container_engine_or_a_hostile_machine_is_refused_at_load(
    tmp_path,
):
    problems = _problems(tmp_path, ROM_PILLAR.replace("singularity", "podman"))
    assert "container_engine" in problems
    problems = _problems(tmp_path, ROM_PILLAR.replace("openmpi@4", "openmpi; rm -rf /"))
    assert "mpi" in problems


def test_a_transfer_goes_into_the_target_directory_under_the_images_file_name(tmp_path):
    step = _load(tmp_path, ROM_PILLAR).workflows["pillar"].steps["transfer"]
    assert isinstance(step, ImageTransferStep)
    url = "https://images.example.org/image_creation/images/download/rom_v_latest.sif"
    plan = ImageTransferKind().prepare(step, _request({"build": {"download_url": url}}))
    assert plan.url == url
    assert plan.target_path == "/home/u/images/rom_v_latest.sif"
    assert plan.outputs == {"image_path": "/home/u/images/rom_v_latest.sif"}
    assert plan.force is False


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "is not an http:// or https:// URL"),
        ("ftp://images.example.org/x.sif", "is not an http:// or https:// URL"),
        ("https://images.example.org/image_creation/images/download/", "file name"),
    ],
)
def test_a_transfer_without_a_usable_download_url_fails_saying_what_to_give(tmp_path, url, message):
    step = _load(tmp_path, ROM_PILLAR).workflows["pillar"].steps["transfer"]
    with pytest.raises(TransferError, match=message):
        ImageTransferKind().prepare(step, _request({"build": {"download_url": url}}))


def test_a_pycompss_step_gets_its_container_image_from_the_transfer(tmp_path):
    app = _load(tmp_path, ROM_PILLAR)
    workflow = DeployedWorkflow(
        id="rom@hpc@pillar",
        application=app,
        environment="hpc",
        environment_name="HPC",
        name="pillar",
        spec=app.workflows["pillar"],
        digest="d" * 64,
        source=Path("rom.yaml"),
    )
    inputs = {"architecture": "sandybridge", "images_dir": "images",
              "model_url": "https://models.example.org/rom/model.zip"}  # fmt: skip
    plan = build_plan(workflow, inputs, SLURM, local_work_root=Path("/unused"))
    steps = {step.name: step for step in plan.steps}
    assert [s.name for s in plan.steps].index("transfer") < [s.name for s in plan.steps].index(
        "run"
    )
    assert all(step.error is None for step in plan.steps), [s.error for s in plan.steps]
    assert steps["build"].script is not None and '"step_id": "reduce_order_model"' in (
        steps["build"].script
    )
    command = steps["run"].command or ""
    assert "--container_image=@transfer.outputs.image_path@" in command
    assert "--container_compss_path=/opt/view/compss" in command
    assert "--container_opts=-e" in command


def test_a_container_image_template_must_use_a_step_the_pycompss_step_needs(tmp_path):
    text = ROM_PILLAR.replace(
        "        needs: [transfer, stage_in]\n", "        needs: [stage_in]\n"
    )
    assert "transfer" in _problems(tmp_path, text)


def test_through_the_dls_the_transfer_is_a_transfer_image_run_with_the_cluster_account(tmp_path):
    step = _load(tmp_path, ROM_PILLAR).workflows["pillar"].steps["transfer"]
    url = "https://images.example.org/image_creation/images/download/rom_v_latest.sif"
    access = ClusterAccess(host="login.example.org", port=2222, login="jdoe", key_id="key-1")
    request = replace(_request({"build": {"download_url": url}}), access=access)
    run = THROUGH_DLS.prepare(step, request)
    assert run.dag_id == "transfer_image"
    assert run.conf == {
        "image_id": "rom_v_latest.sif",
        "url": "https://images.example.org/image_creation/images/download/",
        "target": "/home/u/images",  # absolute: as given
        "force": False,
        "vault_path": "",
        "host": "login.example.org",
        "port": 2222,
        "login": "jdoe",
        "vault_id": "key-1",
    }
    # the step gives the same image_path as without an Airflow
    assert run.outputs == {"image_path": "/home/u/images/rom_v_latest.sif"}
    relative = replace(request, inputs={"images_dir": "images"})
    run = THROUGH_DLS.prepare(step, relative)
    assert run.conf["target"] == ".hpcwaas/executions/e1/images"  # the DAG's base is the home
    assert run.outputs == {"image_path": "images/rom_v_latest.sif"}  # the job's is the work dir
