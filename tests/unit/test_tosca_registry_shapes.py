"""Topologies shaped like the eFlows4HPC registry's: every node accounted for, environments."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from tests.unit.tosca_topologies import DATA, problems, topology

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.errors import WorkflowNotFound

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


def test_two_environment_nodes_on_two_clusters_in_one_workflow_are_refused_naming_them(tmp_path):
    tags = {"hpcwaas-workflows": "exec_job", ENVS: "Cluster1Environment=a,Cluster2Environment=b"}
    catalog = Catalog.load([copy(tmp_path, "two_sites.yaml", tags)], None)
    text = messages(catalog)
    assert "workflow 'exec_job' runs its nodes on different clusters" in text
    assert "Cluster1Environment: a; Cluster2Environment: b" in text


def test_two_environment_nodes_with_different_hosts_are_two_clusters(tmp_path):
    document = yaml.safe_load((REGISTRY / "two_sites.yaml").read_text())
    nodes = document["topology_template"]["node_templates"]
    nodes["Cluster1Environment"]["properties"] = {"cluster_login_host": "one.example"}
    nodes["Cluster2Environment"]["properties"] = {"cluster_login_host": "two.example"}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(document))
    assert "runs its nodes on different clusters" in messages(Catalog.load([path], None))


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
