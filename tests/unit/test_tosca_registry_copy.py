"""The eFlows4HPC workflow registry's own topologies, read from a local copy of it.

The registry is not part of this repository and the tests fetch nothing: set
``HPCWAAS_REGISTRY_COPY`` to a checkout of eflows4hpc/workflow-registry to run these
(docs/tosca-import.md, "The registry's topologies"). Without it they are skipped, saying
so; with a path that holds no topology they fail. What the CI checks without the network is
tests/unit/test_tosca_registry_shapes.py and test_tosca_dialect.py, on fixtures of the same
shapes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.engine.plan import build_plan
from hpcwaas.settings import SlurmEnvironment

VARIABLE = "HPCWAAS_REGISTRY_COPY"
TOPOLOGIES = [
    "Caelestis_DT/tosca/topology.yml",
    "PillarII/feature_extraction_wf/tosca/topology.yml",
    "Pillar_II/esm/topology.yml",
    "Pillar_II/feature_extraction_wf/tosca/topology.yml",
    "Pillar_III/ftrt/tosca/topology.yml",
    "Pillar_III/mlesmap/tosca/topology.yml",
    "Pillar_I_non_intrusive/tosca/topology.yml",
    "minimal_workflow/tosca/classic/types.yaml",
    "minimal_workflow/tosca/parallel/types.yaml",
    "rom_pillar_I/tosca/topology.yml",
]
# Gaps in the registry's own files, which the original ran as nothing (an empty word, no
# application): the file validates, and the workflow is not offered until they are filled.
KNOWN_GAPS = {
    "Pillar_I_non_intrusive/tosca/topology.yml": [
        "uses $Case_type, which is neither a workflow input",
        "uses $Reduction_method, which is neither a workflow input",
    ],
    "Pillar_III/mlesmap/tosca/topology.yml": [
        "node 'Parameters_file_download' (dls.ansible.nodes.HTTP2SSH) has no url",
        "node 'Parameters_file_download' (dls.ansible.nodes.HTTP2SSH) has no target_path",
        "node 'PyCOMPSJob' property application.command is empty",
    ],
}
# The PyCOMPSs-only ones: operator configuration (a .tags file) and inputs for a dry run.
DRY_RUNS = {
    "Caelestis_DT/tosca/topology.yml": ("customWorkflow", {"application_path": "/apps/cmcc"}),
    "PillarII/feature_extraction_wf/tosca/topology.yml": (
        "customWorkflow",
        {"application_path": "/apps/cmcc"},
    ),
    "Pillar_II/esm/topology.yml": ("exec_job", {"target_path": "/t", "source_path": "/s"}),
}
# The others, on an environment with an Airflow and an Image Creation service: the workflow
# to expose, and the deployment phase's inputs the operator gives (tags).
OFFERED = {
    "Pillar_II/feature_extraction_wf/tosca/topology.yml": ("customWorkflow", {}),
    "Pillar_III/ftrt/tosca/topology.yml": (
        "PTFExecution",
        {"images_path": "/i", "data_path": "/d", "templates_oid": "t", "region_data_oid": "r"},
    ),
    "minimal_workflow/tosca/classic/types.yaml": (
        "exec_job",
        {"container_image_transfer_directory": "/i"},
    ),
    "minimal_workflow/tosca/parallel/types.yaml": (
        "exec_job",
        {
            "container_image_transfer_directory_cluster1": "/i1",
            "container_image_transfer_directory_cluster2": "/i2",
        },
    ),
    "rom_pillar_I/tosca/topology.yml": ("exec_job", {"container_image_transfer_directory": "/i"}),
    "Pillar_I_non_intrusive/tosca/topology.yml": (
        "rom_computation",
        {"container_image_transfer_directory": "/i"},
    ),
    "Pillar_III/mlesmap/tosca/topology.yml": ("modelSelection", {"image_path": "/i"}),
}
# The inputs a topology's nodes use and it does not declare, declared by the operator.
DECLARED = {
    "Pillar_I_non_intrusive/tosca/topology.yml": {
        "Case_type": "string",
        "Reduction_method": {"type": "string", "default": "pod"},
    },
    "Pillar_III/mlesmap/tosca/topology.yml": dict.fromkeys(
        ("url", "data_path", "oid", "experiment", "location"), "string"
    ),
}
# The node properties a topology leaves out, given by the operator.
GIVEN = {
    "Pillar_III/mlesmap/tosca/topology.yml": {
        "PyCOMPSJob": {"application": {"command": "/mlesmap/src/model_selection.py"}},
    },
}
SLURM = SlurmEnvironment(
    kind="slurm",
    host="login.hpc.example",
    host_keys=["login.hpc.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"],
)


@pytest.fixture(scope="module")
def registry() -> Path:
    given = os.environ.get(VARIABLE)
    if not given:
        pytest.skip(f"{VARIABLE} is not set: no local copy of the workflow registry to read")
    root = Path(given)
    missing = [t for t in TOPOLOGIES if not (root / t).is_file()]
    assert not missing, f"{VARIABLE}={given} lacks {', '.join(missing)}"
    return root


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_registry_topology_validates_unchanged(registry, name):
    catalog = Catalog.load([registry / name], None)
    assert [p.message for p in catalog.file_problems if not p.warning] == []
    not_offered = [p.message for p in catalog.file_problems if "is not offered: " in p.message]
    for part in KNOWN_GAPS.get(name, []):
        assert any(part in message for message in not_offered), not_offered


@pytest.mark.parametrize("name", list(DRY_RUNS))
def test_pycompss_only_topology_dry_runs_with_operator_configuration_only(registry, tmp_path, name):
    workflow_name, extra = DRY_RUNS[name]
    path = tmp_path / "topology.yaml"
    shutil.copy(registry / name, path)
    tags = {"hpcwaas-workflows": workflow_name, "hpcwaas-environments": "hpc"}
    path.with_suffix(".tags").write_text(yaml.safe_dump(tags))
    catalog = Catalog.load([path], {"hpc": "HPC"}, {"hpc": "slurm"}, {"hpc": SLURM.host})
    [workflow] = catalog.workflows.values()
    inputs = {n: s.default for n, s in workflow.spec.inputs.items()} | {
        "user_id": "alice",
        "vault_id": "alice",
        "num_nodes": 1,
        "project_name": "bsc19",
        "queue": "debug",
        "exec_time": 20,
    }
    inputs = {k: v for k, v in (inputs | extra).items() if k in workflow.spec.inputs}
    plan = build_plan(workflow, inputs, SLURM, local_work_root=tmp_path)
    [step] = plan.steps
    assert step.command is not None and "enqueue_compss" in step.command
    print(step.command)


@pytest.mark.parametrize("name", list(OFFERED))
def test_data_and_image_topology_is_offered_where_the_dls_and_image_service_are_and_dry_runs(
    registry, tmp_path, name
):
    workflow_name, deployment_inputs = OFFERED[name]
    path = tmp_path / "topology.yaml"
    shutil.copy(registry / name, path)
    tags = {
        "hpcwaas-workflows": workflow_name,
        "hpcwaas-environments": "hpc",
        "hpcwaas-deployment-inputs": deployment_inputs,
    }
    if name in DECLARED:
        tags["hpcwaas-inputs"] = DECLARED[name]
    if name in GIVEN:
        tags["hpcwaas-properties"] = GIVEN[name]
    path.with_suffix(".tags").write_text(yaml.safe_dump(tags))
    services = {"hpc": frozenset({"airflow", "image_creation"})}
    catalog = Catalog.load([path], {"hpc": "HPC"}, {"hpc": "slurm"}, {"hpc": SLURM.host}, services)
    [workflow] = catalog.workflows.values()
    assert workflow.name == workflow_name, [p.message for p in catalog.file_problems]
    jobs = [s for s in workflow.spec.steps.values() if s.kind == "pycompss"]
    assert jobs and any(s.kind == "dag_run" for s in workflow.spec.steps.values())
    moved: dict[str, dict[str, str]] = {}
    if deployment_inputs:  # the image topologies: each job runs in the image deployed
        deployment = catalog.deployment(workflow.application.application, "hpc")
        assert deployment is not None
        images = [getattr(job, "container_image", None) or "" for job in jobs]
        assert all("deployment.outputs." in image for image in images), images
        moved = {
            step: {"image_path": f"/shared/images/{step}.sif"}
            for step, spec in deployment.spec.steps.items()
            if spec.kind == "image_transfer"
        }
    # a dry run with a value for every required input renders every step
    given = {
        n: 1 if spec.type in ("integer", "number") else f"/{n}"
        for n, spec in workflow.spec.inputs.items()
        if spec.required
    }
    inputs = validate_inputs(workflow.spec, given | {"user_id": "alice", "vault_id": "k1"})
    environment = SlurmEnvironment(
        kind="slurm",
        host=SLURM.host,
        host_keys=SLURM.host_keys,
        airflow={"url": "https://dls.example.org", "credentials": "services/dls"},
        image_creation={"credentials": "services/images"},
    )
    plan = build_plan(
        workflow, inputs, environment, local_work_root=tmp_path, deployment_outputs=moved
    )
    assert [(step.name, step.error) for step in plan.steps if step.error] == []
    for step in plan.steps:
        if step.kind == "pycompss" and moved:
            assert "--container_image=/shared/images/" in str(step.command)


def test_rom_pillar_dry_run_shows_its_dag_runs_and_the_job_in_the_deployed_image(
    registry, tmp_path
):
    path = tmp_path / "topology.yaml"
    shutil.copy(registry / "rom_pillar_I/tosca/topology.yml", path)
    tags = {
        "hpcwaas-workflows": "exec_job",
        "hpcwaas-environments": "hpc",
        "hpcwaas-deployment-inputs": {"container_image_transfer_directory": "/shared/images"},
    }
    path.with_suffix(".tags").write_text(yaml.safe_dump(tags))
    services = {"hpc": frozenset({"airflow", "image_creation"})}
    catalog = Catalog.load([path], {"hpc": "HPC"}, {"hpc": "slurm"}, {"hpc": SLURM.host}, services)
    workflow = catalog.by_id("Pillar_I_ROM@hpc@exec_job")
    assert workflow is not None, [p.message for p in catalog.file_problems]
    environment = SlurmEnvironment(
        kind="slurm",
        host=SLURM.host,
        host_keys=SLURM.host_keys,
        airflow={"url": "https://dls.example.org", "credentials": "services/dls"},
    )
    # a value for each required input (all strings), whatever the registry names them
    given = {n: f"/{n}" for n, s in workflow.spec.inputs.items() if s.default is None}
    inputs = validate_inputs(workflow.spec, given | {"user_id": "alice", "vault_id": "k1"})
    moved = {"DLSDAGImageTransfer": {"image_path": "/shared/images/rom.sif"}}
    plan = build_plan(
        workflow, inputs, environment, local_work_root=tmp_path, deployment_outputs=moved
    )
    assert all(step.error is None for step in plan.steps), plan.steps
    commands = {step.name: str(step.command) for step in plan.steps}
    assert commands["Simulation_data_download"] == "trigger a run of DAG webdav_stagein"
    assert commands["ROM_upload_center"] == "trigger a run of DAG mlflow_upload_model"
    assert commands["ROM_upload_outside"] == "trigger a run of DAG mlflow_upload_model"
    assert "--container_image=/shared/images/rom.sif " in commands["PyCOMPSJob"]


def test_parallel_topology_on_two_clusters_moves_its_image_to_each_for_the_job_there(
    registry, tmp_path
):
    path = tmp_path / "topology.yaml"
    shutil.copy(registry / "minimal_workflow/tosca/parallel/types.yaml", path)
    workflow_name, deployment_inputs = OFFERED["minimal_workflow/tosca/parallel/types.yaml"]
    tags = {
        "hpcwaas-workflows": workflow_name,
        "hpcwaas-environments": "Cluster1Environment=hpc-a,Cluster2Environment=hpc-b",
        "hpcwaas-deployment-inputs": deployment_inputs,
    }
    path.with_suffix(".tags").write_text(yaml.safe_dump(tags))
    both = frozenset({"airflow", "image_creation"})
    catalog = Catalog.load(
        [path],
        {"hpc-a": "A", "hpc-b": "B"},
        {"hpc-a": "slurm", "hpc-b": "slurm"},
        None,
        {"hpc-a": both, "hpc-b": both},
    )
    [workflow] = catalog.workflows.values()
    assert workflow.environment == "hpc-a", [p.message for p in catalog.file_problems]
    deployment = catalog.deployment(workflow.application.application, "hpc-a")
    assert deployment is not None
    transfers = {n: s.environment for n, s in deployment.spec.steps.items() if "Transfer" in n}
    assert transfers == {
        "DLSDAGImageTransferCluster1": None,  # the home
        "DLSDAGImageTransferCluster2": "hpc-b",
    }
    jobs = {n: s for n, s in workflow.spec.steps.items() if s.kind == "pycompss"}
    assert jobs["PyCOMPSJobCluster2"].environment == "hpc-b"
    assert jobs["PyCOMPSJobCluster2"].container_image == (
        "{{ deployment.outputs.DLSDAGImageTransferCluster2.image_path }}"
    )
