"""The data logistics node types as dag_run steps, and the choice each environment makes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from tests.unit.tosca_topologies import convert, problems, run_steps, topology, write

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.kinds.dag_run import DagRunStep
from hpcwaas.catalog.kinds.stage_in import StageInStep

DLS = "dls.ansible.nodes."
HOST = {"cluster": "login.hpc.example"}
SLURM = {"cluster": "slurm"}


def _with_node(node_type: str, properties: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    """The small topology with ``Data`` of ``node_type`` run before its job."""
    document = topology()
    template = document["topology_template"]
    template["node_templates"]["Data"] = {"type": DLS + node_type, "properties": properties}
    template["workflows"]["run"]["steps"] = run_steps("Data", "Job")
    if inputs:
        template["workflows"]["run"]["inputs"] = inputs
    return document


def _step(tmp_path: Path, document: dict[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = convert(tmp_path, document)["workflows"]["run"]["steps"]["Data"]
    return step


@pytest.mark.parametrize(
    ("node_type", "properties", "dag_id", "conf"),
    [
        (
            "DLSDAGStageInData",
            {"oid": "b2share-record-1", "target_path": "/scratch/in"},
            "taskflow_example",
            {"oid": "b2share-record-1", "target": "/scratch/in"},
        ),
        (
            "DLSDAGWebdavStageInData",
            {"oid": "o1", "target_path": "/scratch/in", "force": True},
            "webdav_stagein",
            {"oid": "o1", "target": "/scratch/in", "force": True},
        ),
        (
            "DLSDAGWebdavStageOutData",
            {"oid": "o2", "source_path": "/scratch/out"},
            "webdav_stageout",
            {"path": "/scratch/out", "oid": "o2"},
        ),
        (
            "DLSDAGModelUpload",
            {"location": "/scratch/model", "subfolder": "roms"},
            "mlflow_upload_model",
            {"location": "/scratch/model", "subfolder": "roms"},
        ),
        (
            "DLSDAGModelSearchUpload",
            {"location": "/scratch/search", "experiment": "grid"},
            "model_search_upload",
            {"location": "/scratch/search", "experiment_name": "grid"},
        ),
    ],
)
def test_each_data_logistics_type_runs_its_dag_with_its_properties_as_the_dags_params(
    tmp_path: Path,
    node_type: str,
    properties: dict[str, Any],
    dag_id: str,
    conf: dict[str, Any],
) -> None:
    step = _step(tmp_path, _with_node(node_type, properties))
    assert step == {"kind": "dag_run", "dag_id": dag_id, "conf": conf}


def test_ssh2ssh_gives_the_account_as_source_and_target(tmp_path: Path) -> None:
    properties = {"source_path": "/scratch/a", "target_path": "/archive/a"}
    step = _step(tmp_path, _with_node("SSH2SSH", properties))
    assert step["dag_id"] == "ssh2ssh"
    assert step["cluster_access"] == ["source_", "target_"]
    assert step["conf"] == {"source_path": "/scratch/a", "target_path": "/archive/a"}


def test_an_input_named_by_input_name_for_gives_the_value_with_its_type(tmp_path: Path) -> None:
    document = _with_node(
        "DLSDAGWebdavStageInData",
        {"oid": "fixed", "input_name_for_oid": "dataset", "input_name_for_force": "again"},
        dataset={"type": "string"},
        again={"type": "boolean", "default": False},
    )
    step = _step(tmp_path, document)
    # the declared input wins over the property; the conf value is the input, typed
    assert step["conf"] == {"oid": "{{ inputs.dataset }}", "force": "{{ inputs.again }}"}


def test_an_input_name_the_workflow_does_not_declare_leaves_the_property(tmp_path: Path) -> None:
    document = _with_node("DLSDAGStageInData", {"oid": "o1", "input_name_for_oid": "nowhere"})
    assert _step(tmp_path, document)["conf"] == {"oid": "o1"}


def test_target_host_becomes_the_dags_host(tmp_path: Path) -> None:
    document = _with_node("DLSDAGStageInData", {"oid": "o1", "target_host": "data.hpc.example"})
    assert _step(tmp_path, document)["conf"] == {"oid": "o1", "host": "data.hpc.example"}


def test_a_plain_dag_run_node_takes_its_dag_id_and_extra_conf(tmp_path: Path) -> None:
    document = _with_node(
        "DLSDAGRun", {"dag_id": "gitlab2ssh", "extra_conf": {"branch": "main", "depth": 1}}
    )
    step = _step(tmp_path, document)
    assert step["dag_id"] == "gitlab2ssh"
    assert step["conf"] == {"branch": "main", "depth": 1}


def test_a_plain_dag_run_node_without_dag_id_is_an_error_saying_what_to_set(
    tmp_path: Path,
) -> None:
    [problem] = problems(tmp_path, _with_node("DLSDAGRun", {}))
    assert "node 'Data' (dls.ansible.nodes.DLSDAGRun) has no dag_id" in problem
    assert "set dag_id" in problem


def test_extra_conf_that_is_not_a_map_is_an_error(tmp_path: Path) -> None:
    document = _with_node("DLSDAGRun", {"dag_id": "d", "extra_conf": "branch=main"})
    [problem] = problems(tmp_path, document)
    assert "extra_conf must be a map of conf keys to values" in problem


def test_literal_braces_in_a_property_reach_the_dag_as_written(tmp_path: Path) -> None:
    document = _with_node("DLSDAGStageInData", {"oid": "{{ 7 * 7 }}"})
    assert _step(tmp_path, document)["conf"] == {"oid": "{{ '{{ 7 * 7 }}' | raw }}"}


def _fetching(tmp_path: Path) -> Path:
    properties = {"url": "https://data.example/in.csv", "target_path": "/scratch/in.csv"}
    return write(tmp_path, _with_node("HTTP2SSH", properties))


def test_with_an_airflow_the_http2ssh_node_runs_plainhttp2ssh(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, "hpcwaas.catalog"):
        airflow = {"cluster": frozenset({"airflow"})}
        catalog = Catalog.load([_fetching(tmp_path)], {"cluster": "C"}, SLURM, HOST, airflow)
    workflow = catalog.by_id("demo@cluster@run")
    assert workflow is not None
    step = workflow.spec.steps["Data"]
    assert isinstance(step, DagRunStep) and step.dag_id == "plainhttp2ssh"
    assert "step 'Data' of kind dag_run runs as written on environment 'cluster'" in caplog.text


def test_without_an_airflow_the_http2ssh_node_is_the_services_own_stage_in(
    tmp_path: Path, caplog
) -> None:
    with caplog.at_level(logging.INFO, "hpcwaas.catalog"):
        catalog = Catalog.load(
            [_fetching(tmp_path)], {"cluster": "C"}, SLURM, HOST, {"cluster": frozenset()}
        )
    workflow = catalog.by_id("demo@cluster@run")
    assert workflow is not None
    step = workflow.spec.steps["Data"]
    assert isinstance(step, StageInStep)
    assert step.url == "https://data.example/in.csv" and step.target_path == "/scratch/in.csv"
    assert workflow.spec.steps["Job"].needs == ["Data"]
    assert (
        "step 'Data' of kind dag_run runs as a stage_in step on environment 'cluster', "
        "which has no airflow:"
    ) in caplog.text


def test_a_dls_node_without_a_stand_in_is_not_deployed_where_there_is_no_airflow(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, _with_node("SSH2SSH", {"source_path": "/a", "target_path": "/b"}))
    catalog = Catalog.load([path], {"cluster": "C"}, SLURM, HOST, {"cluster": frozenset()})
    assert catalog.workflows == {}
    [problem] = [p for p in catalog.file_problems if "not deployed" in p.message]
    assert "step 'Data' of kind dag_run needs the environment's airflow: setting" in problem.message
    assert "configure airflow: for environment 'cluster'" in (problem.hint or "")
    assert problem.line == 38  # the node's type in the topology file
