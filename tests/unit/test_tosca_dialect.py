"""The PyCOMPSs plugin's dialect: words as a shell splits them, $name inside its word only."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.pycompss_plugin import options_and_words, plugin_words
from tests.unit.test_render import HOSTILE
from tests.unit.tosca_topologies import DATA, problems, topology, with_inputs

from hpcwaas.catalog import Catalog
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import ClusterDefaults, Preparation
from hpcwaas.catalog.kinds.pycompss import PycompssStep, prepare_pycompss_step
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.tosca.dialect import DialectError, Variable, split_words
from hpcwaas.schedulers.slurm import SlurmDefaults

REGISTRY = DATA / "registry"
TWIN_INPUTS = {
    "user_id": "alice",
    "vault_id": "alice",
    "num_nodes": 2,
    "project_name": "bsc19",
    "app_path": "/apps/twin",
    "queue": "gp_debug",
    "exec_time": 30,
}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("--hpc mn4", [("--hpc",), ("mn4",)]),
        ('"\\"-e\\""', [('"-e"',)]),
        ('"-e"', [("-e",)]),
        ("'-e'", [("-e",)]),
        ("--label 'twin run'", [("--label",), ("twin run",)]),
        ("  a\tb\n c ", [("a",), ("b",), ("c",)]),
        ("$x/in.txt", [(Variable("x"), "/in.txt")]),
        ("--p=${x}y", [("--p=", Variable("x"), "y")]),
        ('"$x and $y"', [(Variable("x"), " and ", Variable("y"))]),
        ("'$x'", [("$x",)]),
        ("a\\ b", [("a b",)]),
        ("cost$ 5", [("cost$",), ("5",)]),
        ('""', [()]),
        ("", []),
    ],
)
def test_text_splits_into_words_as_a_posix_shell_would(text, words):
    assert split_words(text) == words


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a $(id)", "$(...)"),
        ("a `id`", "backticks"),
        ("a; rm -rf /", "';'"),
        ("a | b", "'|'"),
        ("a > f", "'>'"),
        ("${x:-y}", "only ${name} and $name"),
        ("'open", "unclosed ' quote"),
        ("a #comment", "comment"),
    ],
)
def test_shell_syntax_that_would_run_something_is_refused(text, message):
    with pytest.raises(DialectError, match=None) as info:
        split_words(text)
    assert message in str(info.value)


def registry_step(name: str, workflow: str, node: str) -> PycompssStep:
    loaded = read_application(REGISTRY / name)
    step = loaded.application.workflows[workflow].steps[node]
    assert isinstance(step, PycompssStep)
    return step


def submit(step: PycompssStep, inputs: dict[str, Any], work_dir: str = "/work/e1") -> str:
    """Our submit command for these inputs, on an environment without defaults."""
    request = Preparation(
        execution_id="e1", step_name="PyCOMPSJob", inputs=inputs, work_dir=work_dir
    )
    return prepare_pycompss_step(step, request, ClusterDefaults(SlurmDefaults())).command


def our_words(step: PycompssStep, inputs: dict[str, Any]) -> list[str]:
    """The words our command gives enqueue_compss."""
    words = shlex.split(submit(step, inputs).split(" && ")[-1])
    return words[words.index("enqueue_compss") + 1 :]


def test_dialect_topology_gives_enqueue_compss_the_plugins_options_and_words():
    path = REGISTRY / "cmcc_features.yaml"
    node = yaml.safe_load(path.read_text())["topology_template"]["node_templates"]["PyCOMPSJob"]
    theirs = plugin_words("PyCOMPSJob", node["properties"], TWIN_INPUTS)
    ours = our_words(registry_step("cmcc_features.yaml", "twin", "PyCOMPSJob"), TWIN_INPUTS)
    their_options, their_words = options_and_words(theirs)
    our_options, words = options_and_words(ours)
    assert (
        words
        == their_words
        == ["/apps/twin/src/features.py", "/apps/twin/input/", "--label", "twin"]
    )
    assert our_options.pop("--lang") == "python"
    assert our_options.pop("--python_interpreter") == "python3"  # enqueue_compss's default
    assert our_options == their_options
    assert their_options["--exec_time"] == "30" and their_options["--container_opts"] == "-e"


def test_plugin_input_overrides_apply_in_the_plugins_order(tmp_path):
    document = with_inputs(
        qos={"type": "string", "required": False},
        Job_qos={"type": "string", "required": False},
        PyCOMPSs_data_path={"type": "string", "required": False},
        Job_PyCOMPSs_data_path={"type": "string", "required": False},
    )
    job = document["topology_template"]["node_templates"]["Job"]
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(document))
    loaded = read_application(path)
    step = loaded.application.workflows["run"].steps["Job"]
    assert isinstance(step, PycompssStep)
    cases = [
        {"data_path": "/d"},
        {"data_path": "/d", "PyCOMPSs_data_path": "/p", "qos": "normal"},
        {"data_path": "/d", "PyCOMPSs_data_path": "/p", "Job_PyCOMPSs_data_path": "/n"},
        {"data_path": "/d", "qos": "normal", "Job_qos": "premium"},
    ]
    for given in cases:
        inputs = {"qos": None, "Job_qos": None, "PyCOMPSs_data_path": None} | given
        inputs.setdefault("Job_PyCOMPSs_data_path", None)
        theirs = options_and_words(plugin_words("Job", job["properties"], given))
        ours = options_and_words(our_words(step, inputs))
        assert ours[1] == theirs[1], given
        assert ours[0]["--qos"] == theirs[0]["--qos"], given


@pytest.mark.parametrize(
    "value",
    ["x --queue=other", "x;id", "$(id)", "`id`", "a'b", 'a"b', "x\n--qos=high", "*"],
)
def test_input_value_inside_a_word_is_never_split_or_read_as_shell(value):
    step = registry_step("cmcc_features.yaml", "twin", "PyCOMPSJob")
    for name in ("project_name", "app_path", "queue"):
        with pytest.raises(RenderError) as info:
            our_words(step, TWIN_INPUTS | {name: value})
        assert "cannot pass safely" in str(info.value) or "not an enqueue_compss option" in str(
            info.value
        )


def test_input_value_with_blanks_reaches_the_job_environment_as_one_value():
    step = registry_step("cmcc_features.yaml", "twin", "PyCOMPSJob")
    words = shlex.split(submit(step, TWIN_INPUTS | {"user_id": "a b; id"}).split(" && ")[-1])
    assert "user_id=a b; id" in words


def test_unknown_variable_keeps_the_workflow_off_naming_it_the_node_and_the_property(tmp_path):
    # the plugin's bash made it an empty word; the operator declares it (test_tosca_gaps.py)
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"]["extra_compss_opts"] = "--pythonpath=$nowhere/src"
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(document))
    catalog = Catalog.load([path], None)
    assert catalog.refused == {} and not catalog.workflows
    [warning] = [p.message for p in catalog.file_problems if "uses $nowhere" in p.message]
    assert "node 'Job' property submission_params.extra_compss_opts uses $nowhere" in warning
    assert "workflow 'run' is not offered" in warning


def test_every_problem_of_the_dialect_is_reported_in_one_pass_with_its_line(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"]["extra_compss_opts"] = "--x=$(id)"
    job["submission_params"]["qos"] = "a b"
    job["application"]["arguments"] = ["--x=$(id)", "ok"]
    found = problems(tmp_path, document)
    assert len(found) == 3
    path = tmp_path / "demo.yaml"
    text = path.read_text().splitlines()
    lines = {int(p.split(":")[1]) for p in found}
    assert {i + 1 for i, line in enumerate(text) if "$(id)" in line} <= lines
    assert {i + 1 for i, line in enumerate(text) if "qos: a b" in line} <= lines


def test_options_of_our_keys_in_extra_compss_opts_set_them_once(tmp_path):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"]["extra_compss_opts"] = "--exec_time=20 --lang=python --qos=long"
    job["application"]["container_opts"] = {"container_opts": "'-e'"}
    job["submission_params"]["extra_compss_opts"] += " --container_opts='--nv'"
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(document))
    step = read_application(path).application.workflows["run"].steps["Job"]
    assert isinstance(step, PycompssStep)
    words = our_words(step, {"data_path": "/d"})
    options = [w.split("=")[0] for w in words if w.startswith("--")]
    assert len(options) == len(set(options))
    theirs = options_and_words(plugin_words("Job", job, {"data_path": "/d"}))[0]
    ours = options_and_words(words)[0]
    for name in ("--exec_time", "--qos", "--container_opts"):
        assert ours[name] == theirs[name]


def test_quoted_literal_with_a_blank_is_refused_at_load_as_enqueue_compss_would_split_it(
    tmp_path,
):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["application"]["arguments"] = ["--label 'twin run'"]
    [problem] = problems(tmp_path, document)
    assert "property application.arguments[0] word 'twin run'" in problem


def test_old_pycompss_job_arguments_holding_several_words_become_several_arguments(
    tmp_path: Path,
):
    step = registry_step("esm.yaml", "exec_job", "ESM_Workflow")
    assert step.arguments == ["--hpc", "mn4", "--start_dates", "1948", "--cores", "144"]


def test_problems_found_after_import_name_the_tosca_node_and_property_on_the_values_line(
    tmp_path,
):
    document = topology()
    job = document["topology_template"]["node_templates"]["Job"]["properties"]
    job["submission_params"]["compss_modules"] = ["bad module!"]
    job["submission_params"]["qos"] = "bad*qos"
    del document["topology_template"]["node_templates"]["Env"]["properties"]["pycompss_modules"]
    found = problems(tmp_path, document)
    text = (tmp_path / "demo.yaml").read_text().splitlines()
    module_line = next(i + 1 for i, line in enumerate(text) if "compss_modules:" in line)
    qos_line = next(i + 1 for i, line in enumerate(text) if "bad*qos" in line)
    [qos] = [p for p in found if "submission_params.qos" in p]
    assert f":{qos_line}:" in qos and "node 'Job' property submission_params.qos" in qos
    if len(found) == 1:  # the TOSCA side first; then our format's checks, in its terms
        job["submission_params"]["qos"] = "debug"
        found = problems(tmp_path, document)
    [modules] = found
    assert "node 'Job' property submission_params.compss_modules:" in modules
    assert "step 'Job'" not in modules and f":{module_line}:" in modules


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_every_dialect_place_runs_nothing_and_stays_in_its_word(tmp_path, value):
    """The plugin's places: options from inputs, $name in the command and the arguments."""
    step = registry_step("cmcc_features.yaml", "twin", "PyCOMPSJob")
    for name in ("project_name", "queue", "app_path"):
        inputs = TWIN_INPUTS | {name: value}
        try:
            command = submit(step, inputs, str(tmp_path))
        except RenderError:
            continue  # refused before anything runs: the value could not stay one word
        script = "enqueue_compss() { printf '%s\\0' \"$@\" > words; }; " + command
        subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["words"], value
        words = (tmp_path / "words").read_bytes().decode().split("\0")[:-1]
        expected = {
            "project_name": f"--project_name={value}",
            "queue": f"--queue={value}",
            "app_path": f"{value}/src/features.py",
        }[name]
        assert expected in words, (value, words)
        (tmp_path / "words").unlink()
