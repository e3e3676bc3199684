"""A PyCOMPSJob's container image from its img_transfer requirement: the image_path of the
DLSDAGImageTransfer node, moved by the deployment phase (or by a step of the same workflow),
over the job's own container_image, as the PyCOMPSs Yorc plugin read it; a workflow whose
job has no such image is not offered, saying what to add."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.tosca_topologies import DATA, problems

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.errors import WorkflowNotFound
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.catalog.kinds.pycompss import PycompssStep
from hpcwaas.engine.plan import build_plan
from hpcwaas.settings import SlurmEnvironment

pytestmark = pytest.mark.images

FIXTURE = DATA / "registry" / "image_deployment.yaml"
TAGS = yaml.safe_load(FIXTURE.with_suffix(".tags").read_text())
WORKFLOW_ID = "ImageDeployment@cluster@exec_job"
FROM_DEPLOYMENT = "{{ deployment.outputs.Transfer.image_path }}"
SLURM = SlurmEnvironment(
    kind="slurm",
    host="login.hpc.example",
    host_keys=["login.hpc.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"],
)
INPUTS = {"user_id": "ada", "vault_id": "k1", "app_url": "https://apps.example.org/counter.py"}


def _document() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(FIXTURE.read_text()))


def _nodes(document: dict[str, Any]) -> dict[str, Any]:
    nodes: dict[str, Any] = document["topology_template"]["node_templates"]
    return nodes


def _load(tmp_path: Path, document: dict[str, Any] | None = None, **tags: Any) -> Catalog:
    path = tmp_path / FIXTURE.name
    if document is None:
        shutil.copy(FIXTURE, path)
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.with_suffix(".tags").write_text(yaml.safe_dump({**TAGS, **tags}))
    return Catalog.load([path], {"cluster": "Cluster"}, {"cluster": "slurm"})


def _messages(catalog: Catalog) -> str:
    return "\n".join(p.message for p in catalog.file_problems)


def _job(catalog: Catalog) -> PycompssStep:
    workflow = catalog.by_id(WORKFLOW_ID)
    assert workflow is not None, _messages(catalog)
    step = workflow.spec.steps["Counter"]
    assert isinstance(step, PycompssStep)
    return step


def _refusal(catalog: Catalog) -> str:
    assert catalog.by_id(WORKFLOW_ID) is None
    with pytest.raises(WorkflowNotFound) as info:
        catalog.get(WORKFLOW_ID, "alice")
    return str(info.value)


def test_the_job_runs_in_the_image_the_deployment_phase_moved(tmp_path: Path) -> None:
    catalog = _load(tmp_path)
    assert _job(catalog).container_image == FROM_DEPLOYMENT
    deployment = catalog.deployment("ImageDeployment", "cluster")
    assert deployment is not None
    assert list(deployment.spec.steps) == ["Build", "Transfer"]
    assert deployment.spec.steps["Transfer"].needs == ["Build"]
    # every node ends as a step: nothing reported as unused, no input left without a use
    assert "not used" not in _messages(catalog) and "not offered" not in _messages(catalog)


def test_the_requirement_wins_over_the_jobs_own_container_image(tmp_path: Path) -> None:
    document = _document()
    job = _nodes(document)["Counter"]["properties"]
    job["application"]["container_opts"]["container_image"] = "/images/old.sif"
    job["submission_params"]["extra_compss_opts"] = "--container_image=/images/older.sif"
    step = _job(_load(tmp_path, document))
    assert step.container_image == FROM_DEPLOYMENT
    assert step.extra_options == []  # the option's key is set once, by the requirement


def test_the_older_pycompsjob_type_takes_the_image_of_its_requirement_too(
    tmp_path: Path,
) -> None:
    document = _document()
    nodes = _nodes(document)
    nodes["Counter"]["type"] = "pycomps.ansible.nodes.PyCOMPSJob"
    nodes["Counter"]["properties"] = {
        "command": "${app_file}",
        "arguments": ["${result_file}"],
        "num_nodes": 1,
        "container_image": "/images/old.sif",
    }
    assert _job(_load(tmp_path, document)).container_image == FROM_DEPLOYMENT


def test_without_the_deployment_input_the_workflow_is_not_offered_saying_what_to_give(
    tmp_path: Path,
) -> None:
    catalog = _load(tmp_path, **{"hpcwaas-deployment-inputs": {}})
    assert catalog.deployment("ImageDeployment", "cluster") is None
    reason = _refusal(catalog)
    assert (
        "node 'Counter' takes its container image from 'Transfer' (img_transfer), which the "
        "deployment phase moves, and it is not made: its input 'image_directory' has no value; "
        "give it in the tags file (hpcwaas-deployment-inputs: {image_directory: <value>})"
    ) in reason


def test_a_deployment_node_of_a_type_not_run_leaves_the_job_without_its_image(
    tmp_path: Path,
) -> None:
    document = _document()
    _nodes(document)["Licence"] = {
        "type": "example.nodes.LicenceServer",
        "properties": {"run_in_standard_mode": True},
    }
    reason = _refusal(_load(tmp_path, document))
    assert "which the deployment phase moves, and it is not made: node 'Licence'" in reason
    assert "(example.nodes.LicenceServer) needs a supported node type" in reason


def test_a_transfer_that_nothing_runs_leaves_the_workflow_not_offered(tmp_path: Path) -> None:
    document = _document()
    for name in ("Build", "Transfer"):
        _nodes(document)[name]["properties"]["run_in_standard_mode"] = False
    reason = _refusal(_load(tmp_path, document))
    assert (
        "node 'Counter' takes its container image from 'Transfer' (img_transfer), which "
        "neither the deployment phase runs (run_in_standard_mode: true, called by no workflow) "
        "nor this workflow"
    ) in reason


def test_an_img_transfer_requirement_on_a_node_that_moves_no_image_is_a_load_error(
    tmp_path: Path,
) -> None:
    document = _document()
    [requirement] = [
        r for r in _nodes(document)["Counter"]["requirements"] if "dependsOnTransferFeature" in r
    ]
    requirement["dependsOnTransferFeature"]["node"] = "Build"
    [found] = problems(tmp_path, document)
    assert (
        "node 'Counter': its img_transfer requirement names 'Build', of type "
        "imagecreation.ansible.nodes.ImageCreation; a job's image comes from a "
        "dls.ansible.nodes.DLSDAGImageTransfer node"
    ) in found
    requirement["dependsOnTransferFeature"]["node"] = "Nowhere"
    [found] = problems(tmp_path, document)
    assert "names 'Nowhere', which is no node of the topology" in found


def _moved_by_the_workflow(*, then: list[str]) -> dict[str, Any]:
    """The fixture whose workflow runs Build and Transfer first, Transfer followed by ``then``."""
    document = _document()
    workflow = document["topology_template"]["workflows"]["exec_job"]
    for name in ("Build", "Transfer"):
        _nodes(document)[name]["properties"]["run_in_standard_mode"] = False
    workflow["steps"] = {
        "Build_run": {"target": "Build", "activities": [{"call_operation": "Runnable.run"}],
                      "on_success": ["Transfer_run"]},
        "Transfer_run": {"target": "Transfer", "activities": [{"call_operation": "Runnable.run"}],
                         "on_success": then},
        **workflow["steps"],
    }  # fmt: skip
    workflow["inputs"]["image_directory"] = {"type": "string", "default": "images"}
    return document


def test_a_job_runs_in_the_image_a_step_of_its_own_workflow_moved(tmp_path: Path) -> None:
    catalog = _load(tmp_path, _moved_by_the_workflow(then=["Fetch_run"]))
    step = _job(catalog)
    assert step.container_image == "{{ steps.Transfer.outputs.image_path }}"
    assert catalog.deployment("ImageDeployment", "cluster") is None


def test_a_job_not_after_the_transfer_of_its_workflow_is_a_load_error_naming_the_requirement(
    tmp_path: Path,
) -> None:
    [found] = problems(tmp_path, _moved_by_the_workflow(then=[]))
    assert "node 'Counter' requirement img_transfer 'Transfer': the template uses " in found
    assert "step 'Transfer' is not among the steps this one needs" in found


def test_the_dry_run_shows_the_image_the_deployment_moved_once_it_has(tmp_path: Path) -> None:
    workflow = _load(tmp_path).by_id(WORKFLOW_ID)
    assert workflow is not None
    inputs = validate_inputs(workflow.spec, INPUTS)
    # before the deployment ran: a placeholder that enqueue_compss's checks accept
    [job] = [s for s in build_plan(workflow, inputs, SLURM, local_work_root=tmp_path).steps
             if s.name == "Counter"]  # fmt: skip
    assert job.error is None, job
    assert "--container_image=@deployment.outputs.Transfer.image_path@" in str(job.command)
    moved = {"Transfer": {"image_path": "/shared/images/counter.sif"}}
    plan = build_plan(workflow, inputs, SLURM, local_work_root=tmp_path, deployment_outputs=moved)
    [job] = [s for s in plan.steps if s.name == "Counter"]
    assert "--container_image=/shared/images/counter.sif" in str(job.command), job
