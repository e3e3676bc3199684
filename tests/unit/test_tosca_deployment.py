"""A topology's deployment phase: its standard-mode nodes become our `deployment:` when we
run their types, with the operator's input values; else they are reported as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from tests.unit.tosca_topologies import convert, topology, write

from hpcwaas.catalog.loader import read_application


def _with_deployment_nodes() -> dict[str, Any]:
    document = topology()
    document["topology_template"].setdefault("inputs", {}).update(
        {
            "reference_url": {"type": "string"},
            "reference_dir": {"type": "string", "default": "reference"},
        }
    )
    nodes = document["topology_template"]["node_templates"]
    nodes["Reference_Deployment"] = {
        "type": "dls.ansible.nodes.HTTP2SSH",
        "properties": {
            "run_in_standard_mode": True,
            "url": {"get_input": "reference_url"},
            "target_path": {"get_input": "reference_dir"},
        },
    }
    nodes["Mesh_Deployment"] = {
        "type": "dls.ansible.nodes.HTTP2SSH",
        "properties": {
            "run_in_standard_mode": True,
            "url": "https://data.example/mesh.tar",
            "target_path": "mesh.tar",
        },
        "requirements": [
            {
                "dependency": {
                    "node": "Reference_Deployment",
                    "capability": "tosca.capabilities.Node",
                }
            }
        ],
    }
    return document


def test_standard_mode_nodes_we_run_become_the_deployment_with_the_operators_inputs(
    tmp_path: Path,
) -> None:
    (tmp_path / "demo.tags").write_text(
        yaml.safe_dump(
            {
                "hpcwaas-workflows": "run",
                "hpcwaas-deployment-inputs": {"reference_url": "https://data.example/ref.nc"},
            }
        )
    )
    document = convert(tmp_path, _with_deployment_nodes())
    steps = document["deployment"]["steps"]
    assert list(steps) == ["Reference_Deployment", "Mesh_Deployment"]
    assert steps["Reference_Deployment"] == {
        "kind": "dag_run",
        "dag_id": "plainhttp2ssh",
        "conf": {"url": "https://data.example/ref.nc", "target": "reference"},
        "without_airflow": {
            "kind": "stage_in",
            "url": "https://data.example/ref.nc",  # the operator's value
            "target_path": "reference",  # the input's default
        },
    }
    assert steps["Mesh_Deployment"]["needs"] == ["Reference_Deployment"]
    assert steps["Mesh_Deployment"]["without_airflow"] == {
        "kind": "stage_in",
        "url": "https://data.example/mesh.tar",
        "target_path": "mesh.tar",
    }
    loaded = read_application(tmp_path / "demo.yaml")
    assert loaded.application.deployment is not None
    assert not [w for w in loaded.warnings if "deployment phase" in str(w)]


def test_a_deployment_input_without_a_value_leaves_the_file_valid_and_says_what_to_give(
    tmp_path: Path,
) -> None:
    # The operator gives deployment inputs (tags): the file alone stays valid.
    loaded = read_application(write(tmp_path, _with_deployment_nodes()))
    assert loaded.application.deployment is None
    [warning] = [str(w) for w in loaded.warnings if "has no value" in str(w)]
    assert "node 'Reference_Deployment' (deployment phase) property url uses input " in warning
    assert "'reference_url', which has no value" in warning
    assert "the deployment phase is not made" in warning
    assert "hpcwaas-deployment-inputs: {reference_url: <value>}" in warning


def test_a_deployment_with_a_node_of_a_type_we_do_not_run_is_reported_not_built(
    tmp_path: Path,
) -> None:
    document = _with_deployment_nodes()
    document["topology_template"]["node_templates"]["Probe"] = {
        "type": "org.example.nodes.Probe",
        "properties": {"run_in_standard_mode": True},
    }
    path = write(tmp_path, document)
    loaded = read_application(path)
    assert loaded.application.deployment is None
    reported = [str(w) for w in loaded.warnings if "deployment phase" in str(w)]
    assert any("node 'Probe'" in text and "supported node type" in text for text in reported)
    assert any("node 'Reference_Deployment'" in text for text in reported)


def test_a_model_upload_at_deployment_becomes_a_run_of_the_dls_model_dag(tmp_path: Path) -> None:
    document = _with_deployment_nodes()
    document["topology_template"]["node_templates"]["Upload"] = {
        "type": "dls.ansible.nodes.DLSDAGModelUpload",
        "properties": {"run_in_standard_mode": True, "location": "/models/m1", "subfolder": "r"},
    }
    (tmp_path / "demo.tags").write_text(
        yaml.safe_dump({"hpcwaas-deployment-inputs": {"reference_url": "https://d.example/r"}})
    )
    document = convert(tmp_path, document)
    assert document["deployment"]["steps"]["Upload"] == {
        "kind": "dag_run",
        "dag_id": "mlflow_upload_model",
        "conf": {"location": "/models/m1", "subfolder": "r"},
    }


def test_the_account_properties_of_a_deployment_node_need_no_operator_value(
    tmp_path: Path,
) -> None:
    # The deployment runs as the environment's deployment identity: user_id and vault_id,
    # which the DLS components also take as properties, are never read.
    document = _with_deployment_nodes()
    document["topology_template"]["inputs"].update(
        {"user_id": {"type": "string"}, "vault_id": {"type": "string"}}
    )
    mesh = document["topology_template"]["node_templates"]["Mesh_Deployment"]["properties"]
    mesh.update({"user_id": {"get_input": "user_id"}, "vault_id": {"get_input": "vault_id"}})
    (tmp_path / "demo.tags").write_text(
        yaml.safe_dump({"hpcwaas-deployment-inputs": {"reference_url": "https://d.example/r"}})
    )
    document = convert(tmp_path, document)
    assert list(document["deployment"]["steps"]) == ["Reference_Deployment", "Mesh_Deployment"]
