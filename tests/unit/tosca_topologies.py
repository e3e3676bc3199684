"""Small TOSCA topologies for the importer's tests, and helpers to convert and load them."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.kinds.base import ClusterDefaults, Preparation
from hpcwaas.catalog.kinds.pycompss import PycompssStep, prepare_pycompss_step
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.tosca import convert_topology
from hpcwaas.catalog.yamlfile import load_yaml
from hpcwaas.schedulers.slurm import SlurmDefaults

DATA = Path(__file__).parent / "data" / "tosca"
WORDCOUNT = DATA / "wordcount.yaml"

ENVIRONMENT = {
    "type": "eflows4hpc.env.nodes.AbstractEnvironment",
    "properties": {"cluster_login_host": "login.hpc.example", "pycompss_modules": ["COMPSs/3.3"]},
}
REQUIRES_ENV = [
    {
        "dependsOnAbstractEnvironmentExec_env": {
            "type_requirement": "environment",
            "node": "Env",
            "capability": "eflows4hpc.env.capabilities.ExecutionEnvironment",
            "relationship": "tosca.relationships.DependsOn",
        }
    }
]
JOB = {
    "type": "org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob",
    "properties": {
        "submission_params": {"qos": "debug", "num_nodes": 2},
        "application": {"command": "/app/main.py", "arguments": ["${data_path}/in.txt", 7]},
    },
    "requirements": REQUIRES_ENV,
}
RUNNABLE = "tosca.interfaces.node.lifecycle.Runnable"


def run_steps(*nodes: str) -> dict[str, Any]:
    """A chain of submit/run steps, one node after the other."""
    steps: dict[str, Any] = {}
    for index, node in enumerate(nodes):
        nxt = [f"{nodes[index + 1]}_submit"] if index + 1 < len(nodes) else []
        steps[f"{node}_submit"] = {
            "target": node,
            "activities": [{"call_operation": f"{RUNNABLE}.submit"}],
            "on_success": [f"{node}_run"],
        }
        steps[f"{node}_run"] = {
            "target": node,
            "activities": [{"call_operation": f"{RUNNABLE}.run"}],
            **({"on_success": nxt} if nxt else {}),
        }
    return steps


def topology(**changes: Any) -> dict[str, Any]:
    """A small topology: one PyCOMPSs job on one environment, workflow ``run`` exposed."""
    document: dict[str, Any] = {
        "tosca_definitions_version": "alien_dsl_3_0_0",
        "metadata": {"template_name": "demo", "hpcwaas-workflows": "run"},
        "imports": ["yorc-types:1.1.0", "org.eflows4hpc.pycompss.plugin:1.0.0-SNAPSHOT"],
        "topology_template": {
            "inputs": {"data_path": {"type": "string", "default": "/scratch/d"}},
            "node_templates": {"Env": copy.deepcopy(ENVIRONMENT), "Job": copy.deepcopy(JOB)},
            "workflows": {"run": {"steps": run_steps("Job")}},
        },
    }
    for path, value in changes.items():
        target = document
        keys = path.split("__")
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return document


def write(tmp_path: Path, document: dict[str, Any], name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def convert(tmp_path: Path, document: dict[str, Any]) -> dict[str, Any]:
    path = write(tmp_path, document)
    data, lines = load_yaml(path.read_text())
    return convert_topology(data, lines, path).document


def problems(tmp_path: Path, document: dict[str, Any]) -> list[str]:
    path = write(tmp_path, document)
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    return info.value.problems


def line_of(path: Path, text: str) -> int:
    """The 1-based line where ``text`` first appears in the file."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def set_command(document: dict[str, Any], value: Any) -> dict[str, Any]:
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["application"]["command"] = value
    return document


def with_inputs(**inputs: dict[str, Any]) -> dict[str, Any]:
    document = topology()
    document["topology_template"]["workflows"]["run"]["inputs"] = inputs
    return document


def rendered_command(tmp_path: Path, document: dict[str, Any], **values: Any) -> list[str]:
    loaded = read_application(write(tmp_path, document))
    workflow = loaded.application.workflows["run"]
    step = workflow.steps["Job"]
    assert isinstance(step, PycompssStep)
    inputs = {name: spec.default for name, spec in workflow.inputs.items()} | values
    request = Preparation(execution_id="e1", step_name="Job", inputs=inputs, work_dir="/work/e1")
    submission = prepare_pycompss_step(step, request, ClusterDefaults(SlurmDefaults()))
    return shlex.split(submission.command.split(" && ")[-1])
