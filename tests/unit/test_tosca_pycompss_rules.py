"""The PyCOMPSs Yorc plugin's resolution rules, as imported topologies apply them."""

from __future__ import annotations

from tests.unit.tosca_topologies import (
    convert,
    rendered_command,
    topology,
    with_inputs,
    write,
)

from hpcwaas.catalog import Catalog


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


def test_property_from_an_input_still_comes_after_the_plugins_inputs(tmp_path):
    document = with_inputs(
        qos={"type": "string", "required": False},
        default_qos={"type": "string", "default": "bronze"},
    )
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"]["qos"] = {"get_input": "default_qos"}
    step = convert(tmp_path, document)["workflows"]["run"]["steps"]["Job"]
    assert step["qos"] == (
        "{% if inputs.qos %}{{ inputs.qos }}{% else %}{{ inputs.default_qos }}{% endif %}"
    )
    assert "--qos=bronze" in rendered_command(tmp_path, document)
    assert "--qos=gold" in rendered_command(tmp_path, document, qos="gold")
