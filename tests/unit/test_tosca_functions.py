"""TOSCA functions in imported topologies: what each becomes, and every error."""

from __future__ import annotations

import pytest
from tests.unit.tosca_topologies import (
    convert,
    line_of,
    problems,
    run_steps,
    set_command,
    topology,
    write,
)

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.tosca.functions import key_store_path


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


def test_get_secret_in_a_pycompss_command_is_an_error_saying_where_it_may_be_used(tmp_path):
    document = set_command(topology(), {"get_secret": ["/secret/data/x", "data=y"]})
    path = write(tmp_path, document)
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    [problem] = info.value.problems
    assert "get_secret cannot be used in this property" in problem
    assert "the url of a dls.ansible.nodes.HTTP2SSH node" in problem
    assert f"{path}:{line_of(path, 'command:')}:" in problem


def _stage_in_with_url(url: object) -> dict[str, object]:
    document = topology()
    document["topology_template"]["node_templates"]["Fetch"] = {
        "type": "dls.ansible.nodes.HTTP2SSH",
        "properties": {"url": url, "target_path": "in.txt"},
    }
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Fetch", "Job")
    return document


def test_get_secret_in_a_stage_in_url_becomes_a_key_store_secret_of_the_workflow(tmp_path):
    url = {
        "concat": [
            "https://data.example/x.txt?token=",
            {"get_secret": ["/secret/data/dls/api", "data=token"]},
        ]
    }
    workflow = convert(tmp_path, _stage_in_with_url(url))["workflows"]["run"]
    assert workflow["secrets"] == {"dls_api_token": {"path": "dls/api", "key": "token"}}
    fetch = workflow["steps"]["Fetch"]
    url = "https://data.example/x.txt?token={{ secrets.dls_api_token }}"
    assert fetch["conf"]["url"] == url  # the DAG's conf, never logged as it holds a secret
    assert fetch["without_airflow"]["url"] == url
    # and the converted file loads: the url may use it
    read_application(write(tmp_path, _stage_in_with_url(url)))


def test_get_secret_without_a_data_option_is_an_error_showing_the_syntax(tmp_path):
    [problem] = problems(tmp_path, _stage_in_with_url({"get_secret": "/secret/data/dls/api"}))
    assert "get_secret needs exactly one option data=<key>" in problem
    assert '{get_secret: [/secret/data/<path>, "data=<key>"]}' in problem


def test_get_secret_in_an_ignored_property_stays_ignored(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["dls_api_password"] = {"get_secret": ["/secret/data/dls", "data=password"]}
    workflow = convert(tmp_path, document)["workflows"]["run"]
    assert "secrets" not in workflow


def test_unknown_function_is_an_error_listing_the_supported_ones(tmp_path):
    [problem] = problems(tmp_path, set_command(topology(), {"get_operation_output": ["a"]}))
    assert "unsupported function 'get_operation_output'" in problem
    assert "get_input, get_secret, concat, get_property, get_attribute" in problem


def test_literal_braces_are_not_read_as_templates(tmp_path):
    document = topology()
    stage_in = {"type": "dls.ansible.nodes.HTTP2SSH", "properties": {"url": "https://x/{{a}}"}}
    stage_in["properties"]["target_path"] = "in.txt"
    document["topology_template"]["node_templates"]["Fetch"] = stage_in
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Fetch", "Job")
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Fetch"]
    assert step["conf"]["url"] == "{{ 'https://x/{{a}}' | raw }}"
    assert step["without_airflow"]["url"] == "{{ 'https://x/{{a}}' | raw }}"


def test_literal_braces_in_a_command_are_refused_as_enqueue_compss_cannot_pass_them(tmp_path):
    [problem] = problems(tmp_path, set_command(topology(), "/app/{{x}}.py"))
    assert "property application.command word '/app/{{x}}.py'" in problem


@pytest.mark.parametrize(
    ("vault_path", "ours"),
    [("/secret/data/dls/api", "dls/api"), ("/secret/yorc/x", "yorc/x"), ("apps/x", "apps/x")],
)
def test_get_secret_vault_paths_map_to_key_store_paths(vault_path, ours):
    assert key_store_path(vault_path) == ours
