"""Importing eFlows4HPC TOSCA topologies: node types, functions, workflows, rules and errors."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpcwaas.catalog import Catalog, CatalogFileError
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.model import STEP_KINDS, PycompssStep
from hpcwaas.catalog.tosca import ToscaImportError, convert_topology
from hpcwaas.catalog.yamlfile import load_yaml
from hpcwaas.schedulers.slurm import SlurmDefaults
from hpcwaas.steps.pycompss import prepare_pycompss_step

DATA = Path(__file__).parent / "data" / "tosca"
WORDCOUNT = DATA / "wordcount.yaml"
STAGING = "stage_in" in STEP_KINDS and "stage_out" in STEP_KINDS
needs_staging = pytest.mark.skipif(not STAGING, reason="stage_in/stage_out step kinds missing")

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


# --- the eFlows4HPC-style topology -----------------------------------------------------------


@pytest.fixture
def wordcount() -> dict[str, Any]:
    data, lines = load_yaml(WORDCOUNT.read_text())
    return convert_topology(data, lines, WORDCOUNT).document


def test_application_name_tags_and_environment_come_from_the_topology(wordcount):
    assert wordcount["application"] == "wordcount"
    assert wordcount["expose"] == ["exec_job"]
    assert wordcount["access"] == {"users": ["alice-sub", "bob-sub"]}
    assert wordcount["environments"] == ["127.0.0.1"]  # the cluster_login_host, matched later


def test_stage_in_node_becomes_a_stage_in_step_reading_its_inputs(wordcount):
    step = wordcount["workflows"]["exec_job"]["steps"]["StageIn"]
    assert step == {
        "kind": "stage_in",
        "url": "{{ inputs.data_url }}",
        "target_path": "{{ inputs.input_path }}",  # input_name_for_target_path wins
        "force": True,
    }


def test_pycompss_job_becomes_a_pycompss_step_after_the_stage_in(wordcount):
    step = wordcount["workflows"]["exec_job"]["steps"]["PyCOMPSJob"]
    assert step["kind"] == "pycompss"
    assert step["app"] == "/opt/wordcount/wordcount.py"
    assert step["arguments"] == [
        "{{ inputs.input_path }}",
        "{{ inputs.result_dir }}/counts.txt",
        "3",
    ]
    assert step["needs"] == ["StageIn"]
    assert step["modules"] == ["COMPSs/3.3"]  # from the AbstractEnvironment's pycompss_modules
    assert step["qos"] == "debug"
    assert step["num_nodes"] == "{{ inputs.num_nodes or 1 }}"
    assert step["extra_options"] == ["--log_level=off"]
    assert step["container_compss_path"] == "/opt/view/compss"


def test_every_workflow_input_is_exported_to_the_job(wordcount):
    workflow = wordcount["workflows"]["exec_job"]
    env = workflow["steps"]["PyCOMPSJob"]["env"]
    assert set(env) == set(workflow["inputs"])
    assert env["result_dir"] == "{{ inputs.result_dir }}"


def test_two_stage_outs_run_in_parallel_after_the_job(wordcount):
    steps = wordcount["workflows"]["exec_job"]["steps"]
    assert steps["StageOutCounts"]["needs"] == ["PyCOMPSJob"]
    assert steps["StageOutLog"]["needs"] == ["PyCOMPSJob"]
    assert steps["StageOutCounts"]["source_path"] == "{{ inputs.counts_path }}"
    assert steps["StageOutLog"]["source_path"] == "{{ inputs.result_dir }}/run.log"


def test_stage_out_keeps_data_catalogue_properties_as_metadata(wordcount, caplog):
    step = wordcount["workflows"]["exec_job"]["steps"]["StageOutCounts"]
    assert step["metadata"] == {
        "mid": {"get_input": "mid"},
        "register": False,
        "data_catalogue": "not configured",
    }
    assert "no data catalogue is configured" in step["description"]


def test_stage_out_says_in_the_log_that_no_data_catalogue_is_configured(caplog):
    data, lines = load_yaml(WORDCOUNT.read_text())
    with caplog.at_level("INFO"):
        convert_topology(data, lines, WORDCOUNT)
    assert "StageOutCounts: no data catalogue is configured" in caplog.text


def test_topology_and_workflow_inputs_are_merged_with_types(wordcount):
    inputs = wordcount["workflows"]["exec_job"]["inputs"]
    assert inputs["debug"] == {"type": "boolean", "default": False, "required": False}
    assert inputs["data_url"] == {
        "type": "string",
        "required": True,
        "description": "Where the text is",
    }
    assert inputs["num_nodes"] == {"type": "integer", "required": False}


@needs_staging
def test_wordcount_topology_loads_from_the_catalog_directory_on_the_matching_host(tmp_path):
    (tmp_path / "wordcount.yaml").write_text(WORDCOUNT.read_text())
    catalog = Catalog.load(
        [tmp_path],
        {"hpc": "HPC", "other": "Other"},
        {"hpc": "slurm", "other": "slurm"},
        {"hpc": "127.0.0.1", "other": "login.other.example"},
    )
    assert catalog.problems == []
    assert list(catalog.workflows) == ["wordcount@hpc@exec_job"]


# --- loading through the catalog ------------------------------------------------------------


def test_pycompss_topology_loads_through_the_normal_validation(tmp_path):
    loaded = read_application(write(tmp_path, topology()))
    workflow = loaded.application.workflows["run"]
    step = workflow.steps["Job"]
    assert isinstance(step, PycompssStep)
    assert step.arguments == ["{{ inputs.data_path }}/in.txt", "7"]
    assert loaded.environment_hosts == ("login.hpc.example",)


def test_abstract_environment_is_matched_by_login_host_when_deployed(tmp_path):
    write(tmp_path, topology())
    catalog = Catalog.load(
        [tmp_path],
        {"cluster": "Cluster", "local": "Local"},
        {"cluster": "slurm", "local": "local"},
        {"cluster": "login.hpc.example"},
    )
    assert list(catalog.workflows) == ["demo@cluster@run"]
    assert catalog.by_id("demo@cluster@run").environment_name == "Cluster"


def test_topology_on_no_configured_host_is_not_deployed_and_says_why(tmp_path):
    write(tmp_path, topology())
    catalog = Catalog.load([tmp_path], {"c": "C"}, {"c": "slurm"}, {"c": "elsewhere.example"})
    assert catalog.workflows == {}
    assert any("login.hpc.example" in p and "hpcwaas-environments" in p for p in catalog.problems)


def test_environments_tag_names_configured_environments_explicitly(tmp_path):
    document = topology()
    document["metadata"]["hpcwaas-environments"] = "c1, c2"
    write(tmp_path, document)
    catalog = Catalog.load([tmp_path], {"c1": "1", "c2": "2"}, {"c1": "slurm", "c2": "slurm"})
    assert sorted(catalog.workflows) == ["demo@c1@run", "demo@c2@run"]


def test_tags_file_beside_the_topology_exposes_and_authorizes(tmp_path):
    document = topology()
    del document["metadata"]["hpcwaas-workflows"]
    write(tmp_path, document)
    (tmp_path / "demo.tags").write_text(
        "hpcwaas-workflows: run\nhpcwaas-authorized-users: u1,u2\n", encoding="utf-8"
    )
    catalog = Catalog.load([tmp_path], {"c": "C"}, {"c": "slurm"}, {"c": "login.hpc.example"})
    workflow = catalog.by_id("demo@c@run")
    assert workflow is not None
    assert workflow.application.access.users == ["u1", "u2"]
    assert catalog.visible("u3") == []


def test_application_name_defaults_to_the_file_name(tmp_path):
    document = topology()
    del document["metadata"]["template_name"]
    assert convert(tmp_path, document)["application"] == "demo"


def test_keys_that_need_no_action_are_accepted(tmp_path):
    document = topology()
    nodes = document["topology_template"]["node_templates"]
    nodes["Job"]["metadata"] = {"a4c_edit_x": 10, "a4c_edit_y": "-3"}
    nodes["Job"]["properties"]["keep_environment"] = True
    nodes["Stage"] = {
        "type": "dls.ansible.nodes.DLSDAGStageOutData",
        "properties": {
            "source_path": "out",
            "dag_id": "upload",
            "debug": True,
            "run_in_standard_mode": False,
            "dls_api_username": {"get_secret": ["/secret/data/dls", "data=username"]},
            "input_name_for_mid": "mid",
        },
    }
    steps = run_steps("Job", "Stage")
    steps["Job_submit"]["operation_host"] = "ORCHESTRATOR"
    document["topology_template"]["workflows"]["run"]["steps"] = steps
    document["description"] = "demo"
    converted = convert(tmp_path, document)
    assert converted["workflows"]["run"]["steps"]["Stage"] == {
        "kind": "stage_out",
        "source_path": "out",
        "needs": ["Job"],
    }


# --- node types -----------------------------------------------------------------------------


def test_older_pycompss_job_type_is_converted(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Job"] = {
        "type": "pycomps.ansible.nodes.PyCOMPSJob",
        "properties": {
            "pycomps_endpoint": "login.hpc.example",
            "compss_module_version": "3.2",
            "num_nodes": 1,
            "qos": "debug",
            "command": "/app/old.py",
            "arguments": ["a"],
            "container_image": "img.sif",
            "container_opts": "-e",
            "python_interpreter": "python3",
            "extra_compss_opts": "--tracing=false",
        },
    }
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["app"] == "/app/old.py"
    assert step["modules"] == ["COMPSs/3.2"]
    assert step["container_image"] == "img.sif"
    assert step["container_opts"] == "-e"
    assert step["extra_options"] == ["--tracing=false"]


def test_pycompss_submission_and_container_properties_are_mapped(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"] = {
        "compss_modules": ["compss/3.0", "singularity"],
        "num_nodes": 3,
        "qos": "long",
        "python_interpreter": "python3.11",
        "extra_compss_opts": "--pythonpath=/w/src --log_level=debug",
    }
    job["application"]["container_opts"] = {
        "container_image": "/images/w.sif",
        "container_compss_path": "/opt/view/compss",
        "container_opts": "-e",
    }
    job["environment"] = {"endpoint": "login.hpc.example", "user_name": "alice"}
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["modules"] == ["compss/3.0", "singularity"]
    assert step["num_nodes"] == 3
    assert step["qos"] == "long"
    assert step["python_interpreter"] == "python3.11"
    assert step["extra_options"] == ["--pythonpath=/w/src", "--log_level=debug"]
    assert step["container_image"] == "/images/w.sif"
    assert step["container_compss_path"] == "/opt/view/compss"
    assert step["container_opts"] == "-e"


def test_unsupported_node_type_is_an_error_listing_the_supported_ones(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Job"]["type"] = "my.nodes.Custom"
    path = write(tmp_path, document)
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    [problem] = info.value.problems
    assert f"{path}:{line_of(path, 'my.nodes.Custom')}:" in problem
    assert "unsupported node type 'my.nodes.Custom'" in problem
    assert "org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob" in problem
    assert "dls.ansible.nodes.HTTP2SSH" in problem


def test_unknown_property_of_a_supported_node_is_an_error(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Job"]["properties"]["num_node"] = 2
    [problem] = problems(tmp_path, document)
    assert "unknown property 'num_node'" in problem
    assert "submission_params" in problem


def test_stage_in_without_url_is_an_error_naming_the_property(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Fetch"] = {
        "type": "dls.ansible.nodes.HTTP2SSH",
        "properties": {"target_path": "in.txt", "input_name_for_url": "source"},
    }
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Fetch", "Job")
    [problem] = problems(tmp_path, document)
    assert "node 'Fetch' (dls.ansible.nodes.HTTP2SSH) has no url" in problem
    assert "'source'" in problem


def test_stage_in_force_and_literal_url_are_kept(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Fetch"] = {
        "type": "dls.ansible.nodes.HTTP2SSH",
        "properties": {
            "url": "https://data.example/x.txt",
            "target_path": "in.txt",
            "force": False,
        },
    }
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Fetch", "Job")
    steps = convert(tmp_path, document)["workflows"]["run"]["steps"]
    assert steps["Fetch"] == {
        "kind": "stage_in",
        "url": "https://data.example/x.txt",
        "target_path": "in.txt",
        "force": False,
    }
    assert steps["Job"]["needs"] == ["Fetch"]


# --- functions ------------------------------------------------------------------------------


def set_command(document: dict[str, Any], value: Any) -> dict[str, Any]:
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["application"]["command"] = value
    return document


def test_get_input_becomes_an_input_template(tmp_path):
    document = set_command(topology(), {"get_input": "data_path"})
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["app"] == "{{ inputs.data_path }}"


def test_get_input_of_an_undeclared_input_is_an_error(tmp_path):
    path = write(tmp_path, set_command(topology(), {"get_input": "nope"}))
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    [problem] = info.value.problems
    assert "get_input: input 'nope' is not declared" in problem
    assert "declared: data_path" in problem
    assert f"{path}:{line_of(path, 'command:')}:" in problem


def test_concat_joins_literals_and_inputs(tmp_path):
    document = set_command(topology(), {"concat": [{"get_input": "data_path"}, "/main.py"]})
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["app"] == "{{ inputs.data_path }}/main.py"


def test_concat_of_literals_stays_a_literal(tmp_path):
    document = set_command(topology(), {"concat": ["/app/", "main.py"]})
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["app"] == "/app/main.py"


def test_get_property_reads_self_and_other_nodes(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["application"]["command"] = {"get_property": ["SELF", "submission_params", "qos"]}
    job["application"]["arguments"] = [{"get_property": ["Env", "cluster_login_host"]}]
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["app"] == "debug"
    assert step["arguments"] == ["login.hpc.example"]


def test_get_attribute_reads_the_property_of_the_same_name(tmp_path):
    document = set_command(topology(), {"get_attribute": ["Env", "cluster_login_host"]})
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["app"] == "login.hpc.example"


def test_get_property_of_a_missing_property_is_an_error(tmp_path):
    [problem] = problems(tmp_path, set_command(topology(), {"get_property": ["Env", "nope"]}))
    assert "node 'Env' has no property 'nope'" in problem


def test_get_secret_in_a_used_property_says_it_is_not_supported_yet(tmp_path):
    document = set_command(topology(), {"get_secret": ["/secret/data/x", "data=y"]})
    [problem] = problems(tmp_path, document)
    assert "get_secret is not supported yet" in problem


def test_unknown_function_is_an_error_listing_the_supported_ones(tmp_path):
    [problem] = problems(tmp_path, set_command(topology(), {"get_operation_output": ["a"]}))
    assert "unsupported function 'get_operation_output'" in problem
    assert "get_input, get_secret, concat, get_property, get_attribute" in problem


def test_argument_naming_a_variable_that_is_no_input_is_an_error(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["application"]["arguments"] = ["$HOME/x"]
    [problem] = problems(tmp_path, document)
    assert "uses ${HOME}, which is not a workflow input" in problem


def test_literal_braces_are_not_read_as_templates(tmp_path):
    document = set_command(topology(), "/app/{{x}}.py")
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["app"] == "{{ '/app/{{x}}.py' | raw }}"


# --- workflows and activities ---------------------------------------------------------------


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


# --- the PyCOMPSs plugin's resolution rules -------------------------------------------------


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
    submission = prepare_pycompss_step(
        step,
        execution_id="e1",
        step_name="Job",
        inputs=inputs,
        modules=[],
        defaults=SlurmDefaults(),
        remote_dir="/work/e1",
    )
    return shlex.split(submission.command.split(" && ")[-1])


def test_qos_input_named_after_the_node_wins_over_the_plain_one_and_the_property(tmp_path):
    document = with_inputs(
        Job_qos={"type": "string", "required": False}, qos={"type": "string", "required": False}
    )
    words = rendered_command(tmp_path, document, Job_qos="premium", qos="normal")
    assert "--qos=premium" in words
    words = rendered_command(tmp_path, document, qos="normal")
    assert "--qos=normal" in words
    assert "--qos=debug" in rendered_command(tmp_path, document)


def test_num_nodes_and_extra_options_come_from_inputs_when_given(tmp_path):
    document = with_inputs(
        num_nodes={"type": "integer", "required": False},
        extra_compss_opts={"type": "string", "required": False},
    )
    words = rendered_command(
        tmp_path, document, num_nodes=4, extra_compss_opts="--tracing=true --log_level=debug"
    )
    assert "--num_nodes=4" in words
    assert "--tracing=true" in words and "--log_level=debug" in words
    assert "--num_nodes=2" in rendered_command(tmp_path, document)


def test_arguments_expand_workflow_inputs_and_inputs_reach_the_job_environment(tmp_path):
    words = rendered_command(tmp_path, topology(), data_path="/scratch/alice")
    assert words[-2:] == ["/scratch/alice/in.txt", "7"]
    assert "data_path=/scratch/alice" in words


def test_cluster_login_inputs_follow_the_plugin_order(tmp_path):
    document = with_inputs(
        user={"type": "string", "required": False},
        Job_user={"type": "string", "required": False},
        Job_user_id={"type": "string", "required": False},
    )
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["environment"] = {"endpoint": "login.hpc.example", "user_name": "shared"}
    write(tmp_path, document)
    catalog = Catalog.load([tmp_path], {"c": "C"}, {"c": "slurm"}, {"c": "login.hpc.example"})
    workflow = catalog.by_id("demo@c@run")
    assert workflow is not None
    assert workflow.login_inputs == ("Job_user", "user", "Job_user_id", "user_id")
    assert workflow.default_login == "shared"


def test_our_own_workflow_files_keep_user_id_as_the_login_input(tmp_path):
    (tmp_path / "app.yaml").write_text(
        "application: app\nenvironments: [c]\nexpose: [w]\n"
        "workflows:\n  w:\n    steps:\n      s: {kind: shell, run: 'true'}\n"
    )
    catalog = Catalog.load([tmp_path], {"c": "C"}, {"c": "slurm"})
    workflow = catalog.by_id("app@c@w")
    assert workflow is not None
    assert workflow.login_inputs == ("user_id",)
    assert workflow.default_login is None


def test_topology_without_any_environment_is_an_error_saying_how_to_name_one(tmp_path):
    document = topology()
    del document["topology_template"]["node_templates"]["Env"]["properties"]
    with pytest.raises(ToscaImportError) as info:
        convert(tmp_path, document)
    [problem] = info.value.problems
    assert "no environment" in problem.message
    assert "hpcwaas-environments" in problem.hint


def test_container_options_reach_enqueue_compss(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["application"]["container_opts"] = {
        "container_image": "/images/w.sif",
        "container_compss_path": "/opt/view/compss",
        "container_opts": "-e",
    }
    words = rendered_command(tmp_path, document)
    assert "--container_image=/images/w.sif" in words
    assert "--container_compss_path=/opt/view/compss" in words
    assert "--container_opts=-e" in words


def test_the_guides_tosca_example_imports_as_the_guide_shows(tmp_path):
    guide = (Path(__file__).parents[2] / "docs" / "workflows.md").read_text(encoding="utf-8")
    section = guide[guide.index("## TOSCA topologies") :]
    example = section[section.index("### Example") :]
    text = example.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "wordcount.yaml"
    path.write_text(text, encoding="utf-8")
    data, lines = load_yaml(text)
    converted = convert_topology(data, lines, path)
    assert converted.environment_hosts == ["login.hpc.example"]
    steps = converted.document["workflows"]["exec_job"]["steps"]
    assert {name: step.get("needs", []) for name, step in steps.items()} == {
        "StageIn": [],
        "PyCOMPSJob": ["StageIn"],
        "StageOutCounts": ["PyCOMPSJob"],
        "StageOutLog": ["PyCOMPSJob"],
    }
    assert steps["PyCOMPSJob"]["num_nodes"] == "{{ inputs.num_nodes or 1 }}"
    assert steps["StageOutCounts"]["metadata"]["mid"] == "wordcount-metadata"
    if STAGING:
        catalog = Catalog.load(
            [path], {"cluster": "C"}, {"cluster": "slurm"}, {"cluster": "login.hpc.example"}
        )
        assert catalog.problems == []
        assert list(catalog.workflows) == ["wordcount@cluster@exec_job"]


def test_login_host_that_is_no_environment_id_still_validates_alone(tmp_path):
    document = topology()
    document["topology_template"]["node_templates"]["Env"]["properties"] = {
        "cluster_login_host": "[::1]:2222"
    }
    loaded = read_application(write(tmp_path, document))
    assert loaded.environment_hosts == ("[::1]:2222",)


def test_property_from_an_input_still_comes_after_the_plugins_inputs(tmp_path):
    document = with_inputs(
        qos={"type": "string", "required": False},
        default_qos={"type": "string", "default": "bronze"},
    )
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"]["qos"] = {"get_input": "default_qos"}
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["qos"] == "{{ inputs.qos or (inputs.default_qos) }}"
    assert "--qos=bronze" in rendered_command(tmp_path, document)
    assert "--qos=gold" in rendered_command(tmp_path, document, qos="gold")


def test_other_tosca_versions_are_refused_with_the_supported_one(tmp_path):
    document = topology(tosca_definitions_version="tosca_simple_yaml_1_3")
    [problem] = problems(tmp_path, document)
    assert "unsupported tosca_definitions_version 'tosca_simple_yaml_1_3'" in problem
    assert "alien_dsl_3_0_0" in problem
    assert ":1: TOSCA:" in problem
