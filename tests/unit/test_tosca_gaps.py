"""What a topology leaves out and the original ran as nothing: an input no declaration gives
(`$name` in the PyCOMPSs dialect, a data node's `input_name_for_*`), a job with no
application. The file validates, as Alien4Cloud took it; its workflow is not offered, and a
warning on the line says what is missing, until the operator declares the inputs in the tags
file (`hpcwaas-inputs`) or gives the properties there (`hpcwaas-properties`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.tosca_topologies import (
    line_of,
    rendered_command,
    run_steps,
    set_command,
    topology,
    write,
)

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.errors import WorkflowNotFound
from hpcwaas.catalog.loader import FileProblem


def _with_argument(argument: str) -> dict[str, Any]:
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["application"]["arguments"] = [argument]
    return document


def _with_data_node(node_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The small topology with a data node ``Fetch`` run before its job."""
    document = topology()
    document["topology_template"]["node_templates"]["Fetch"] = {
        "type": node_type,
        "properties": properties,
    }
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Fetch", "Job")
    return document


def _load(tmp_path: Path, document: dict[str, Any], tags: dict[str, Any] | None = None):
    path = write(tmp_path, document)
    if tags is not None:
        path.with_suffix(".tags").write_text(yaml.safe_dump(tags))
    return path, Catalog.load([path], None)


def _not_offered(catalog: Catalog) -> list[FileProblem]:
    assert catalog.refused == {}, [p.message for p in catalog.file_problems]
    assert not catalog.workflows
    return [p for p in catalog.file_problems if "workflow 'run' is not offered" in p.message]


def test_a_variable_no_input_declares_keeps_the_workflow_off_with_a_warning_on_its_line(
    tmp_path,
):
    path, catalog = _load(tmp_path, _with_argument("--case=${Case_type}"))
    [warning] = _not_offered(catalog)
    assert warning.warning
    assert warning.line == line_of(path, "--case=${Case_type}")
    assert "node 'Job' property application.arguments[0] uses $Case_type" in warning.message
    assert "hpcwaas-inputs: {Case_type: string}" in str(warning.hint)


def test_asking_for_that_workflow_says_what_is_missing(tmp_path):
    document = _with_argument("$Case_type")
    path = write(tmp_path, document)
    catalog = Catalog.load([path], {"hpc": "HPC"}, {"hpc": "slurm"}, {"hpc": "login.hpc.example"})
    with pytest.raises(WorkflowNotFound) as info:
        catalog.get("demo@hpc@run", "alice")
    assert "workflow 'run' is not offered by this server" in str(info.value)
    assert "uses $Case_type" in str(info.value)


def test_the_operator_declares_it_in_the_tags_and_the_job_gets_the_value_in_its_word(tmp_path):
    document = _with_argument("--case=${Case_type}")
    _, catalog = _load(tmp_path, document, {"hpcwaas-inputs": {"Case_type": "string"}})
    [workflow] = catalog.workflows.values()
    spec = workflow.spec.inputs["Case_type"]
    assert (spec.type, spec.required) == ("string", True)
    words = rendered_command(tmp_path, document, Case_type="cavity-2d")
    assert words[-1] == "--case=cavity-2d"


def test_a_declaration_in_the_tags_may_give_a_default_and_a_description(tmp_path):
    document = _with_argument("$Reduction_method")
    given = {"type": "string", "default": "pod", "description": "how to reduce"}
    _, catalog = _load(tmp_path, document, {"hpcwaas-inputs": {"Reduction_method": given}})
    [workflow] = catalog.workflows.values()
    spec = workflow.spec.inputs["Reduction_method"]
    assert (spec.required, spec.default, spec.description) == (False, "pod", "how to reduce")
    assert rendered_command(tmp_path, document)[-1] == "pod"


def test_a_data_node_naming_an_input_no_one_declares_keeps_the_workflow_off(tmp_path):
    document = _with_data_node(
        "dls.ansible.nodes.HTTP2SSH", {"target_path": "in.txt", "input_name_for_url": "source"}
    )
    path, catalog = _load(tmp_path, document)
    [warning] = _not_offered(catalog)
    assert warning.line == line_of(path, "input_name_for_url")
    assert "node 'Fetch' (dls.ansible.nodes.HTTP2SSH) has no url" in warning.message
    assert "it names the input 'source'" in warning.message
    assert "hpcwaas-inputs: {source: string}" in str(warning.hint)
    _, catalog = _load(tmp_path, document, {"hpcwaas-inputs": {"source": "string"}})
    [workflow] = catalog.workflows.values()
    assert workflow.spec.steps["Fetch"].conf["url"] == "{{ inputs.source }}"


def test_a_dag_run_whose_conf_names_an_input_no_one_declares_keeps_the_workflow_off(tmp_path):
    document = _with_data_node(
        "dls.ansible.nodes.DLSDAGWebdavStageInData",
        {"input_name_for_oid": "oid", "target_path": "/scratch/in"},
    )
    _, catalog = _load(tmp_path, document)
    [warning] = _not_offered(catalog)
    assert "node 'Fetch' (dls.ansible.nodes.DLSDAGWebdavStageInData) has no oid" in warning.message
    _, catalog = _load(tmp_path, document, {"hpcwaas-inputs": {"oid": "string"}})
    [workflow] = catalog.workflows.values()
    assert workflow.spec.steps["Fetch"].conf["oid"] == "{{ inputs.oid }}"


def test_a_job_with_no_application_validates_and_is_not_offered(tmp_path):
    _, catalog = _load(tmp_path, set_command(topology(), ""))
    [warning] = _not_offered(catalog)
    assert "node 'Job' property application.command is empty" in warning.message
    assert "no application to run" in warning.message


def test_the_operator_gives_the_missing_application_in_the_tags_and_the_job_runs_it(tmp_path):
    document = set_command(topology(), "")
    application = {"command": "/apps/mlesmap/model_selection.py", "arguments": ["--top 3"]}
    tags = {"hpcwaas-properties": {"Job": {"application": application}}}
    _, catalog = _load(tmp_path, document, tags)
    assert len(catalog.workflows) == 1, [p.message for p in catalog.file_problems]
    words = rendered_command(tmp_path, document)
    assert words[-3:] == ["/apps/mlesmap/model_selection.py", "--top", "3"]


def test_the_tags_give_a_data_node_its_properties_and_a_typo_is_refused_by_name(tmp_path):
    document = _with_data_node("dls.ansible.nodes.HTTP2SSH", {"target_path": "in.txt"})
    path, _ = _load(tmp_path, document)
    assert any("has no url" in problem for problem in problems_of(path))
    tags = {
        "hpcwaas-properties": {"Fetch": {"input_name_for_url": "source"}},
        "hpcwaas-inputs": {"source": "string"},
    }
    _, catalog = _load(tmp_path, document, tags)
    [workflow] = catalog.workflows.values()
    assert workflow.spec.steps["Fetch"].conf["url"] == "{{ inputs.source }}"
    tags["hpcwaas-properties"] = {"Fetch": {"ulr": "https://data.example.org/a"}}
    path, _ = _load(tmp_path, document, tags)
    assert any("'ulr'" in problem for problem in problems_of(path)), problems_of(path)


def test_properties_in_the_tags_must_name_a_node_of_the_topology(tmp_path):
    path = write(tmp_path, topology())
    tags = {"hpcwaas-properties": {"Jbo": {"application": {"command": "a.py"}}}}
    path.with_suffix(".tags").write_text(yaml.safe_dump(tags))
    [problem] = problems_of(path)
    assert "hpcwaas-properties: the topology has no node 'Jbo'" in problem
    assert "name one of its nodes: Env, Job" in problem


@pytest.mark.parametrize("value", [["Job"], {"Job": "a.py"}, {"Job": {}}])
def test_properties_in_the_tags_are_a_mapping_of_nodes_to_properties(tmp_path, value):
    path = write(tmp_path, topology())
    path.with_suffix(".tags").write_text(yaml.safe_dump({"hpcwaas-properties": value}))
    [problem] = problems_of(path)
    assert problem.startswith("TOSCA: hpcwaas-properties")
    assert "{PyCOMPSJob: {application: {command: /apps/app.py}}}" in problem


def test_the_tags_may_not_declare_an_input_the_topology_declares(tmp_path):
    path = write(tmp_path, topology())
    path.with_suffix(".tags").write_text(
        yaml.safe_dump({"hpcwaas-inputs": {"data_path": "string"}})
    )
    [problem] = problems_of(path)
    assert "hpcwaas-inputs: the topology declares the input 'data_path' itself" in problem


def test_input_declarations_in_the_tags_must_be_a_mapping(tmp_path):
    path = write(tmp_path, topology())
    path.with_suffix(".tags").write_text(yaml.safe_dump({"hpcwaas-inputs": ["Case_type"]}))
    [problem] = problems_of(path)
    assert "hpcwaas-inputs must be a mapping of input names to types" in problem
    assert "Case_type: string" in problem


def test_an_unsupported_type_in_the_tags_is_an_error(tmp_path):
    document = _with_argument("$Case_type")
    path = write(tmp_path, document)
    path.with_suffix(".tags").write_text(yaml.safe_dump({"hpcwaas-inputs": {"Case_type": "map"}}))
    [problem] = problems_of(path)
    assert "input 'Case_type': unsupported type 'map'" in problem


def problems_of(path: Path) -> list[str]:
    """The file's errors (not its warnings), as messages with their hints."""
    catalog = Catalog.load([path], None)
    return [f"{p.message} (hint: {p.hint})" for p in catalog.file_problems if not p.warning]
