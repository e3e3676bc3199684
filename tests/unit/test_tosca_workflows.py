"""Imperative workflows of TOSCA topologies: the DAG they become, inputs, and every error."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.tosca_topologies import (
    JOB,
    RUNNABLE,
    convert,
    line_of,
    problems,
    run_steps,
    topology,
    write,
)

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.loader import read_application


def test_set_state_steps_only_carry_the_order(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Second"] = copy.deepcopy(JOB)
    steps = run_steps("Job")
    steps["Job_run"]["on_success"] = ["Job_executed"]
    steps["Job_executed"] = {
        "target": "Job",
        "activities": [{"set_state": "executed"}],
        "on_success": ["Second_submitting"],
    }
    steps["Second_submitting"] = {
        "target": "Second",
        "activities": [{"set_state": "submitting"}],
        "on_success": ["Second_run"],
    }
    steps["Second_run"] = {
        "target": "Second",
        "activities": [{"call_operation": "Runnable.run"}],
    }
    document["topology_template"]["workflows"]["run"]["steps"] = steps
    converted = convert(tmp_path, document)["workflows"]["run"]["steps"]
    assert list(converted) == ["Job", "Second"]
    assert "needs" not in converted["Job"]
    assert converted["Second"]["needs"] == ["Job"]


def test_roots_run_in_parallel_and_a_join_waits_for_all(tmp_path):
    document = topology()
    nodes = document["topology_template"]["node_templates"]
    nodes["Left"] = copy.deepcopy(JOB)
    nodes["Right"] = copy.deepcopy(JOB)
    steps: dict[str, Any] = {}
    for node in ("Left", "Right"):
        steps[f"{node}_run"] = {
            "target": node,
            "activities": [{"call_operation": f"{RUNNABLE}.run"}],
            "on_success": ["Job_run"],
        }
    steps["Job_run"] = {"target": "Job", "activities": [{"call_operation": f"{RUNNABLE}.run"}]}
    document["topology_template"]["workflows"]["run"]["steps"] = steps
    converted = convert(tmp_path, document)["workflows"]["run"]["steps"]
    assert "needs" not in converted["Left"]
    assert "needs" not in converted["Right"]
    assert converted["Job"]["needs"] == ["Left", "Right"]
    loaded = read_application(write(tmp_path, document))
    assert loaded.application.workflows["run"].steps["Job"].needs == ["Left", "Right"]


def test_unknown_activity_is_an_error_with_its_line(tmp_path):
    document = topology()
    steps = document["topology_template"]["workflows"]["run"]["steps"]
    steps["Job_run"]["activities"] = [{"delegate": "install"}]
    path = write(tmp_path, document)
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    [problem] = info.value.problems
    assert "unsupported activity 'delegate'" in problem
    assert "set_state, call_operation" in problem
    assert f"{path}:{line_of(path, 'delegate: install')}:" in problem


def test_unknown_operation_is_an_error_listing_the_supported_ones(tmp_path):
    document = topology()
    steps = document["topology_template"]["workflows"]["run"]["steps"]
    steps["Job_run"]["activities"] = [
        {"call_operation": "tosca.interfaces.node.lifecycle.Standard.create"}
    ]
    [problem] = problems(tmp_path, document)
    assert "unsupported operation 'tosca.interfaces.node.lifecycle.Standard.create'" in problem
    assert f"{RUNNABLE}.submit, {RUNNABLE}.run" in problem


def test_step_with_two_activities_is_an_error(tmp_path):
    document = topology()
    steps = document["topology_template"]["workflows"]["run"]["steps"]
    steps["Job_run"]["activities"].append({"set_state": "executed"})
    [problem] = problems(tmp_path, document)
    assert "step 'Job_run' must have exactly one activity" in problem


def test_step_without_target_is_an_error(tmp_path):
    document = topology()
    del document["topology_template"]["workflows"]["run"]["steps"]["Job_run"]["target"]
    [problem] = problems(tmp_path, document)
    assert "step 'Job_run' has no target" in problem


def test_on_success_to_an_unknown_step_is_an_error(tmp_path):
    document = topology()
    document["topology_template"]["workflows"]["run"]["steps"]["Job_run"]["on_success"] = ["X"]
    [problem] = problems(tmp_path, document)
    assert "on_success names unknown step 'X'" in problem


def test_operation_called_on_the_environment_node_is_an_error(tmp_path):
    document = topology()
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Env")
    [problem] = problems(tmp_path, document)
    assert "unsupported node type 'eflows4hpc.env.nodes.AbstractEnvironment'" in problem


def test_unsupported_input_type_is_an_error(tmp_path):
    document = topology()
    document["topology_template"]["inputs"]["files"] = {"type": "list"}
    [problem] = problems(tmp_path, document)
    assert "input 'files': unsupported type 'list'" in problem
    assert "string, integer, boolean" in problem


def test_workflows_inputs_override_the_topology_inputs(tmp_path):
    document = topology()
    document["topology_template"]["workflows"]["run"]["inputs"] = {
        "data_path": {"type": "string", "required": True, "description": "Where"}
    }
    inputs = convert(tmp_path, document)["workflows"]["run"]["inputs"]
    assert inputs["data_path"] == {"type": "string", "required": True, "description": "Where"}


def test_only_the_exposed_workflows_are_imported(tmp_path):
    document = topology()
    document["topology_template"]["workflows"]["install"] = {
        "steps": {"a": {"target": "Env", "activities": [{"delegate": "install"}]}}
    }
    # Alien4Cloud's own workflows delegate to its orchestrator: unexposed, they block nothing
    assert list(convert(tmp_path, document)["workflows"]) == ["run"]
