"""Importing eFlows4HPC TOSCA topologies: the mapping, node types, environments and tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.tosca_topologies import (
    WORDCOUNT,
    convert,
    line_of,
    problems,
    run_steps,
    topology,
    write,
)

from hpcwaas.catalog import Catalog, CatalogFileError
from hpcwaas.catalog.kinds.pycompss import PycompssStep
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.tosca import convert_topology
from hpcwaas.catalog.yamlfile import load_yaml


@pytest.fixture
def wordcount() -> dict[str, Any]:
    data, lines = load_yaml(WORDCOUNT.read_text())
    return convert_topology(data, lines, WORDCOUNT).document


def test_application_name_tags_and_environment_come_from_the_topology(wordcount):
    assert wordcount["application"] == "wordcount"
    assert wordcount["expose"] == ["exec_job"]
    assert wordcount["access"] == {"users": ["alice-sub", "bob-sub"]}
    assert wordcount["environments"] == ["127.0.0.1"]  # the cluster_login_host, matched later


def test_stage_in_node_becomes_a_dls_run_of_its_dag_or_a_stage_in_without_airflow(wordcount):
    step = wordcount["workflows"]["exec_job"]["steps"]["StageIn"]
    assert step == {
        "kind": "dag_run",
        "dag_id": "plainhttp2ssh",
        "conf": {
            "url": "{{ inputs.data_url }}",
            "target": "{{ inputs.input_path }}",  # input_name_for_target_path wins
            "force": True,
        },
        "without_airflow": {
            "kind": "stage_in",
            "url": "{{ inputs.data_url }}",
            "target_path": "{{ inputs.input_path }}",
            "force": True,
        },
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
    assert step["num_nodes"] == (
        "{% if inputs.num_nodes %}{{ inputs.num_nodes }}{% else %}1{% endif %}"
    )
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
    assert steps["StageOutCounts"]["conf"]["source"] == "{{ inputs.counts_path }}"
    assert steps["StageOutLog"]["conf"]["source"] == "{{ inputs.result_dir }}/run.log"
    without_airflow = steps["StageOutLog"]["without_airflow"]
    assert without_airflow["source_path"] == "{{ inputs.result_dir }}/run.log"


def test_stage_out_gives_the_data_catalogue_properties_to_the_dag_or_keeps_them_as_metadata(
    wordcount,
):
    step = wordcount["workflows"]["exec_job"]["steps"]["StageOutCounts"]
    assert step["dag_id"] == "upload_example"
    assert step["conf"] == {
        "source": "{{ inputs.counts_path }}",
        "mid": "{{ inputs.mid }}",
        "register": False,
    }
    assert step["without_airflow"]["metadata"] == {
        "mid": {"get_input": "mid"},
        "register": False,
        "data_catalogue": "not configured",
    }


def test_stage_out_says_in_the_log_that_no_data_catalogue_is_configured(caplog):
    data, lines = load_yaml(WORDCOUNT.read_text())
    with caplog.at_level("INFO"):
        convert_topology(data, lines, WORDCOUNT)
    assert (
        "StageOutCounts: where the environment has no Airflow, mid and register are kept as "
        "metadata only"
    ) in caplog.text


def test_topology_and_workflow_inputs_are_merged_with_types(wordcount):
    inputs = wordcount["workflows"]["exec_job"]["inputs"]
    assert inputs["debug"] == {"type": "boolean", "default": False, "required": False}
    assert inputs["data_url"] == {
        "type": "string",
        "required": True,
        "description": "Where the text is",
    }
    assert inputs["num_nodes"] == {"type": "integer", "required": False}


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
        },
    }
    steps = run_steps("Job", "Stage")
    steps["Job_submit"]["operation_host"] = "ORCHESTRATOR"
    document["topology_template"]["workflows"]["run"]["steps"] = steps
    document["description"] = "demo"
    converted = convert(tmp_path, document)
    assert converted["workflows"]["run"]["steps"]["Stage"] == {
        "kind": "dag_run",
        "dag_id": "upload",
        "conf": {"source": "out"},
        "without_airflow": {"kind": "stage_out", "source_path": "out"},
        "needs": ["Job"],
    }


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
    del document["topology_template"]["node_templates"]["Env"]["properties"]["pycompss_modules"]
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
        "properties": {"target_path": "in.txt"},
    }
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Fetch", "Job")
    [problem] = problems(tmp_path, document)
    assert "node 'Fetch' (dls.ansible.nodes.HTTP2SSH) has no url" in problem
    assert "input_name_for_url" in problem


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
    assert steps["Fetch"]["conf"] == {
        "url": "https://data.example/x.txt",
        "target": "in.txt",
        "force": False,
    }
    assert steps["Fetch"]["without_airflow"] == {
        "kind": "stage_in",
        "url": "https://data.example/x.txt",
        "target_path": "in.txt",
        "force": False,
    }
    assert steps["Job"]["needs"] == ["Fetch"]


def test_topology_whose_environment_nothing_decides_validates_but_is_not_deployed(tmp_path):
    document = topology()
    del document["topology_template"]["node_templates"]["Env"]["properties"]
    path = write(tmp_path, document)
    alone = Catalog.load([path], None)
    assert alone.refused == {} and alone.by_id("demo@Env@run") is not None
    catalog = Catalog.load([path], {"c": "C"}, {"c": "slurm"}, {"c": "login.hpc.example"})
    assert catalog.workflows == {}
    [problem] = [p for p in catalog.file_problems if "not deployed" in p.message]
    assert "nothing decides where it runs (Env: no cluster_login_host" in problem.message
    assert "hpcwaas-environments" in (problem.hint or "")


def test_the_guides_tosca_example_imports_as_the_guide_shows(tmp_path):
    guide = (Path(__file__).parents[2] / "docs" / "tosca-import.md").read_text(encoding="utf-8")
    example = guide[guide.index("## Example") :]
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
    assert steps["PyCOMPSJob"]["num_nodes"] == (
        "{% if inputs.num_nodes %}{{ inputs.num_nodes }}{% else %}1{% endif %}"
    )
    assert steps["StageOutCounts"]["conf"]["mid"] == "wordcount-metadata"
    assert steps["StageOutCounts"]["without_airflow"]["metadata"]["mid"] == "wordcount-metadata"
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


def test_other_tosca_versions_are_refused_with_the_supported_one(tmp_path):
    document = topology(tosca_definitions_version="tosca_simple_yaml_1_3")
    [problem] = problems(tmp_path, document)
    assert "unsupported tosca_definitions_version 'tosca_simple_yaml_1_3'" in problem
    assert "alien_dsl_3_0_0" in problem
    assert ":1: TOSCA:" in problem
