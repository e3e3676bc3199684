"""Topologies shaped like the eFlows4HPC registry's: every node accounted for, environments."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from tests.unit.tosca_topologies import DATA, problems, topology

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.errors import WorkflowNotFound
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.engine.plan import build_plan
from hpcwaas.settings import SlurmEnvironment

REGISTRY = DATA / "registry"
FIXTURES = sorted(REGISTRY.glob("*.yaml"))


def copy(tmp_path: Path, name: str, tags: dict[str, str] | None = None) -> Path:
    """The fixture (and its tags file, or the given tags) in a directory of its own."""
    target = tmp_path / name
    shutil.copy(REGISTRY / name, target)
    if tags is not None:
        target.with_suffix(".tags").write_text(yaml.safe_dump(tags))
    elif (REGISTRY / name).with_suffix(".tags").is_file():
        shutil.copy((REGISTRY / name).with_suffix(".tags"), target.with_suffix(".tags"))
    return target


def messages(catalog: Catalog) -> str:
    return "\n".join(p.message for p in catalog.file_problems)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_registry_shaped_topology_validates_alone(path):
    catalog = Catalog.load([path], None)
    assert catalog.refused == {}, messages(catalog)


def test_every_node_ends_as_a_step_configuration_deployment_phase_or_a_named_report(tmp_path):
    path = copy(tmp_path, "all_node_types.yaml")
    catalog = Catalog.load([path], {"cluster": "C"}, {"cluster": "slurm"})
    text = messages(catalog)
    for node in ("BuildImage", "MoveImage", "RegionData"):
        assert f"node {node!r}" in text and "belongs to the deployment phase" in text
    assert "node 'Unused' (dls.ansible.nodes.HTTP2SSH) is run by no imported workflow" in text
    [refusal] = [p for p in catalog.file_problems if "workflow 'solve' is not offered" in p.message]
    # its data logistics nodes (StageIn, Copy, Archive, Model, Search) are DAG runs: not named
    for node in ("StageIn", "Copy", "Archive", "Model", "Search"):
        assert f"node {node!r}" not in refusal.message
    assert "node 'Solver' takes its container image from 'MoveImage'" in refusal.message
    assert catalog.by_id("EveryNode@cluster@solve") is None
    assert catalog.by_id("EveryNode@cluster@fetch_only") is not None


def test_misspelt_property_of_a_recognised_data_node_is_an_error(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Move"] = {
        "type": "dls.ansible.nodes.DLSDAGWebdavStageInData",
        "properties": {"oid": "o1", "target_pth": "/data", "run_in_standard_mode": True},
    }
    [problem] = problems(tmp_path, document)
    assert "unknown property 'target_pth' of dls.ansible.nodes.DLSDAGWebdavStageInData" in problem


def test_one_environment_in_the_tag_places_every_environment_node(tmp_path):
    path = copy(tmp_path, "two_sites.yaml", {"hpcwaas-workflows": "exec_job", ENVS: "hpc"})
    catalog = Catalog.load([path], {"hpc": "HPC"}, {"hpc": "slurm"})
    assert catalog.by_id("TwoSites@hpc@exec_job") is not None


ENVS = "hpcwaas-environments"


def test_tag_map_of_both_environment_nodes_to_one_environment_deploys_there(tmp_path):
    tags = {
        "hpcwaas-workflows": "exec_job",
        ENVS: "Cluster1Environment=hpc,Cluster2Environment=hpc",
    }
    catalog = Catalog.load([copy(tmp_path, "two_sites.yaml", tags)], {"hpc": "H"}, {"hpc": "slurm"})
    assert catalog.by_id("TwoSites@hpc@exec_job") is not None


def test_tag_map_to_two_clusters_runs_each_node_on_its_own_deployed_on_the_first(tmp_path):
    tags = {"hpcwaas-workflows": "exec_job", ENVS: "Cluster1Environment=a,Cluster2Environment=b"}
    path = copy(tmp_path, "two_sites.yaml", tags)
    catalog = Catalog.load([path], {"a": "A", "b": "B"}, {"a": "slurm", "b": "slurm"})
    assert list(catalog.workflows) == ["TwoSites@a@exec_job"]  # one ID: the first pair's
    steps = catalog.by_id("TwoSites@a@exec_job").spec.steps
    assert steps["CountCluster1"].environment is None  # the home
    assert steps["CountCluster2"].environment == "b"


def test_tag_map_to_an_unconfigured_cluster_keeps_the_workflow_off_naming_the_node(tmp_path):
    tags = {"hpcwaas-workflows": "exec_job", ENVS: "Cluster1Environment=a,Cluster2Environment=b"}
    catalog = Catalog.load([copy(tmp_path, "two_sites.yaml", tags)], {"a": "A"}, {"a": "slurm"})
    assert catalog.workflows == {}
    text = messages(catalog)
    assert (
        "step 'CountCluster2' of kind pycompss names environment 'b', which is not configured"
        in text
    )


def test_two_environment_nodes_with_different_hosts_are_refused_unless_mapped(tmp_path):
    document = yaml.safe_load((REGISTRY / "two_sites.yaml").read_text())
    nodes = document["topology_template"]["node_templates"]
    nodes["Cluster1Environment"]["properties"] = {"cluster_login_host": "one.example"}
    nodes["Cluster2Environment"]["properties"] = {"cluster_login_host": "two.example"}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(document))
    text = "\n".join(Catalog.load([path], None).problems)
    assert "workflow 'exec_job' runs its nodes on sites with different hosts" in text
    assert "Cluster1Environment: one.example; Cluster2Environment: two.example" in text
    assert "Cluster1Environment=<environment>, Cluster2Environment=<environment>" in text


def test_tag_map_must_name_every_environment_node_and_only_them(tmp_path):
    tags = {ENVS: "Cluster1Environment=a,Elsewhere=b"}
    text = messages(Catalog.load([copy(tmp_path, "two_sites.yaml", tags)], None))
    assert "maps 'Elsewhere', which is no environment node" in text
    assert "does not map the environment node 'Cluster2Environment'" in text


def test_same_template_name_in_two_files_is_refused_naming_both_files(tmp_path):
    first = copy(tmp_path, "cmcc_features.yaml")
    second = copy(tmp_path, "cmcc_features_copy.yaml")
    catalog = Catalog.load([tmp_path], {"hpc": "H"}, {"hpc": "slurm"}, {"hpc": "login.hpc.example"})
    assert catalog.by_id("FeatureTwin@hpc@twin") is not None
    [refused] = list(catalog.refused)
    other = first if refused == second else second
    [problem] = catalog.refused[refused]
    assert "application 'FeatureTwin' is already defined by" in problem.message
    assert str(other) in problem.message and problem.path == refused


def test_endpoint_from_an_input_is_decided_by_the_workflow_id_and_not_required(tmp_path):
    path = copy(tmp_path, "esm.yaml")
    catalog = Catalog.load([path], {"cluster": "C"}, {"cluster": "slurm"})
    workflow = catalog.by_id("20240212@cluster@exec_job")
    assert workflow is not None
    assert not workflow.spec.inputs["target_host"].required
    assert "input 'target_host' gives the endpoint of node 'ESM_Workflow'" in messages(catalog)


def test_environment_modules_replace_the_jobs_compss_modules(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"]["compss_modules"] = ["COMPSs/2.10", "python/3.8"]
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(document))
    catalog = Catalog.load([path], None)
    [workflow] = catalog.workflows.values()
    assert workflow.spec.steps["Job"].modules == ["COMPSs/3.3"]


def test_asking_for_a_workflow_not_offered_says_which_node_and_capability(tmp_path):
    path = copy(tmp_path, "all_node_types.yaml")
    catalog = Catalog.load([path], {"cluster": "C"}, {"cluster": "slurm"})
    with pytest.raises(WorkflowNotFound) as info:
        catalog.get("EveryNode@cluster@solve", "alice")
    message = str(info.value)
    assert "workflow 'solve' is not offered by this server" in message
    assert "node 'Solver' takes its container image from 'MoveImage'" in message


def test_inputs_used_only_by_nodes_no_workflow_runs_are_reported_by_name(tmp_path):
    catalog = Catalog.load([copy(tmp_path, "all_node_types.yaml")], None)
    text = messages(catalog)
    assert "input 'images_path' is used only by nodes no workflow runs (MoveImage)" in text
    assert "input 'region_oid' is used only by nodes no workflow runs (RegionData)" in text
    assert "input 'debug' is used only by nodes no workflow runs (BuildImage)" in text
    assert "input 'user_id'" not in text and "input 'vault_id'" not in text


def test_parallel_topology_on_two_clusters_moves_an_image_to_each_for_its_own_job(tmp_path):
    path = copy(tmp_path, "parallel.yaml")  # its tags map Cluster1 to hpc-a, Cluster2 to hpc-b
    environments = {"hpc-a": "A", "hpc-b": "B"}
    catalog = Catalog.load([path], environments, {"hpc-a": "slurm", "hpc-b": "slurm"})
    assert messages(catalog) == ""
    assert list(catalog.workflows) == ["ParallelImages@hpc-a@exec_job"]
    assert list(catalog.deployments) == [("ParallelImages", "hpc-a")]  # one, on the home
    deployment = catalog.deployment("ParallelImages", "hpc-a").spec.steps
    # the build has no site: the home; each transfer is on its cluster's environment
    assert deployment["Build"].environment is None
    assert deployment["TransferCluster1"].environment is None
    assert deployment["TransferCluster2"].environment == "hpc-b"
    assert deployment["TransferCluster1"].target_path == "/shared/images-a"
    assert deployment["TransferCluster2"].target_path == "/shared/images-b"
    steps = catalog.by_id("ParallelImages@hpc-a@exec_job").spec.steps
    assert steps["JobCluster1"].environment is None
    assert steps["JobCluster2"].environment == "hpc-b"
    assert steps["JobCluster1"].container_image == (
        "{{ deployment.outputs.TransferCluster1.image_path }}"
    )
    assert steps["JobCluster2"].container_image == (
        "{{ deployment.outputs.TransferCluster2.image_path }}"
    )
    # each job's enqueue_compss gets the image its own environment's transfer moved
    moved = {
        "TransferCluster1": {"image_path": "/shared/images-a/wc.sif"},
        "TransferCluster2": {"image_path": "/shared/images-b/wc.sif"},
    }
    workflow = catalog.by_id("ParallelImages@hpc-a@exec_job")
    given = {"user_id": "ada", "vault_id": "k1", "app_url": "https://apps.example.org/c.py"}
    plan = build_plan(
        workflow,
        validate_inputs(workflow.spec, given),
        _slurm("login-a.example"),
        local_work_root=tmp_path,
        deployment_outputs=moved,
        others={"hpc-b": _slurm("login-b.example")},
    )
    commands = {step.name: str(step.command) for step in plan.steps}
    assert "--container_image=/shared/images-a/wc.sif " in commands["JobCluster1"]
    assert "--container_image=/shared/images-b/wc.sif " in commands["JobCluster2"]


def _slurm(host: str) -> SlurmEnvironment:
    return SlurmEnvironment(
        kind="slurm", host=host, host_keys=[f"{host} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"]
    )


def test_deployment_phase_node_on_an_unconfigured_environment_keeps_the_application_off(
    tmp_path,
):
    path = copy(tmp_path, "parallel.yaml")
    catalog = Catalog.load([path], {"hpc-a": "A"}, {"hpc-a": "slurm"})
    assert catalog.workflows == {} and catalog.deployments == {}
    assert (
        "the deployment: step 'TransferCluster2' of kind image_transfer names environment "
        "'hpc-b', which is not configured; application 'ParallelImages' is not deployed on "
        "'hpc-a'" in messages(catalog)
    )
