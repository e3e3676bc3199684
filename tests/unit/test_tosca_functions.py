"""TOSCA functions in imported topologies: what each becomes, and every error."""

from __future__ import annotations

import pytest
from tests.unit.tosca_topologies import (
    convert,
    line_of,
    problems,
    set_command,
    topology,
    write,
)

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.loader import read_application


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
