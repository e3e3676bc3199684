"""Workflow files with ``slurm`` and ``pycompss`` steps: their keys, their checks, and where
they may be deployed."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from hpcwaas.catalog import Catalog, CatalogFileError
from hpcwaas.catalog.kinds.pycompss import PycompssStep
from hpcwaas.catalog.kinds.shell import ShellStep
from hpcwaas.catalog.kinds.slurm import SlurmStep
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.yamlfile import load_yaml

GUIDE = Path(__file__).parents[2] / "docs" / "workflows.md"
ENVIRONMENTS = {"local": "Local host", "hpc1": "HPC 1", "hpc2": "HPC 2"}
KINDS = {"local": "local", "hpc1": "slurm", "hpc2": "slurm"}


def app(steps: str, environments: str = "[hpc1]", inputs: str = "{}") -> str:
    body = textwrap.indent(textwrap.dedent(steps), "      ")
    return (
        f"application: app\nenvironments: {environments}\nexpose: [w]\nworkflows:\n"
        f"  w:\n    inputs: {inputs}\n    steps:\n{body}"
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(CatalogFileError) as info:
        read_application(write(tmp_path, text))
    return info.value.problems


def at(tmp_path: Path, line: int) -> str:
    return f"{tmp_path / 'app.yaml'}:{line}: "


# --- the format --------------------------------------------------------------------------------


def test_slurm_step_with_every_option_loads(tmp_path):
    text = app(
        """\
        solve:
          kind: slurm
          needs: []
          description: Solve.
          env: {A: "{{ inputs.n }}"}
          timeout: 3600
          options:
            nodes: 2
            ntasks: 8
            cpus_per_task: 4
            mem: 16G
            time: 1:30:00
            partition: batch,debug
            qos: normal
            account: proj-1
            extra: [--exclusive, "--gres=gpu:2"]
          script: |
            srun solver {{ inputs.n }}
        """,
        inputs="{n: {type: integer, default: 1}}",
    )
    step = read_application(write(tmp_path, text)).application.workflows["w"].steps["solve"]
    assert isinstance(step, SlurmStep)
    assert step.options.time == "1:30:00"  # text, not YAML 1.1's base-60 number 5400
    assert step.options.extra == ["--exclusive", "--gres=gpu:2"]
    assert step.timeout == 3600 and step.env == {"A": "{{ inputs.n }}"}


def test_slurm_step_options_are_all_optional(tmp_path):
    text = app("s: {kind: slurm, script: hostname}\n")
    step = read_application(write(tmp_path, text)).application.workflows["w"].steps["s"]
    assert isinstance(step, SlurmStep) and step.options.nodes is None and step.options.extra == []


def test_pycompss_step_loads_with_its_defaults(tmp_path):
    text = app(
        """\
        analyse:
          kind: pycompss
          app: main.py
          arguments: ["--event={{ inputs.e }}", out/report.txt]
          num_nodes: 2
          qos: debug
          exec_time: 30
          container_image: /images/app.sif
          extra_options: [--tracing=true]
          modules: [COMPSs/3.3, python/3.10]
        """,
        inputs="{e: {type: string, pattern: '[a-z]+'}}",
    )
    step = read_application(write(tmp_path, text)).application.workflows["w"].steps["analyse"]
    assert isinstance(step, PycompssStep)
    assert step.python_interpreter == "python3"
    assert step.arguments == ["--event={{ inputs.e }}", "out/report.txt"]


def test_shell_steps_are_unchanged(tmp_path):
    text = app('s: {kind: shell, run: "echo hi", timeout: 5}\n', environments="[local]")
    step = read_application(write(tmp_path, text)).application.workflows["w"].steps["s"]
    assert isinstance(step, ShellStep) and step.run == "echo hi"


def test_yaml_numbers_with_colons_stay_text():
    data, _ = load_yaml("a: 1:30:00\nb: 10:00\nc: 3\nd: 2.5\ne: 0x10\n")
    assert data == {"a": "1:30:00", "b": "10:00", "c": 3, "d": 2.5, "e": 16}


# --- problems ------------------------------------------------------------------------------------


def test_unknown_key_of_a_slurm_step_lists_its_own_keys(tmp_path):
    (problem,) = problems_of(tmp_path, app("s: {kind: slurm, script: x, run: y}\n"))
    assert "unknown key 'run'" in problem
    assert "allowed keys here: kind, script, options, needs, description, env, timeout" in problem


def test_unknown_option_lists_the_options(tmp_path):
    (problem,) = problems_of(tmp_path, app("s: {kind: slurm, script: x, options: {node: 2}}\n"))
    assert problem.startswith(at(tmp_path, 8)) and "unknown key 'node'" in problem
    assert "nodes, ntasks, cpus_per_task, mem, time, partition, qos, account, extra" in problem


def test_bad_option_values_are_each_reported_with_their_line(tmp_path):
    problems = problems_of(
        tmp_path,
        app(
            """\
            s:
              kind: slurm
              script: x
              options:
                nodes: 2
                mem: 4 GB
                time: soon
                partition: a b
                extra: [--exclusive, --output=x.log, "-N 2"]
            """
        ),
    )
    assert len(problems) == 5, problems
    joined = "\n".join(problems)
    assert any(p.startswith(at(tmp_path, 13)) and "options.mem" in p for p in problems)
    assert any(p.startswith(at(tmp_path, 14)) and "options.time" in p for p in problems)
    assert "options.partition: 'a b' is not a Slurm name" in joined
    assert "options.extra[1]: '--output=x.log' is not allowed" in joined
    assert "options.extra[2]: '-N 2' is not a long sbatch flag" in joined


def test_option_of_the_wrong_type_is_a_structure_problem(tmp_path):
    (problem,) = problems_of(tmp_path, app("s: {kind: slurm, script: x, options: {nodes: 0}}\n"))
    assert (
        "workflows.w.steps.s.options.nodes" in problem and "greater than or equal to 1" in problem
    )


def test_templates_of_slurm_and_pycompss_steps_are_checked(tmp_path):
    problems = problems_of(
        tmp_path,
        app(
            """\
            s: {kind: slurm, script: "echo {{ inputs.nope }}"}
            p: {kind: pycompss, app: "{{ inputs.app }}", arguments: [ok, "{{ inputs.x }}"]}
            """
        ),
    )
    assert len(problems) == 3
    assert "step 's' script: the template uses undefined input 'nope'" in problems[0]
    assert "step 'p' app:" in problems[1] and "step 'p' arguments 1:" in problems[2]


def test_pycompss_literals_and_options_that_cannot_pass_are_refused(tmp_path):
    problems = problems_of(
        tmp_path,
        app(
            """\
            p:
              kind: pycompss
              app: my app.py
              arguments: [ok, "two words", "{{ inputs.user_id }}"]
              qos: "no good"
              python_interpreter: python3 -u
              extra_options: [--tracing=true, --num_nodes=3, --x=$(id)]
              modules: ["a;b"]
            """
        ),
    )
    joined = "\n".join(problems)
    assert len(problems) == 7, problems
    assert "step 'p' app: 'my app.py' holds characters" in joined
    assert "step 'p' arguments[1]: 'two words' holds characters" in joined
    assert "qos: 'no good' is not a Slurm name" in joined
    assert "python_interpreter" in joined
    assert "extra_options[1]: '--num_nodes=3' is not allowed (use the num_nodes key)" in joined
    assert "extra_options[2]" in joined and "modules[0]" in joined


def test_missing_script_of_a_slurm_step(tmp_path):
    (problem,) = problems_of(tmp_path, app("s: {kind: slurm}\n"))
    assert "workflows.w.steps.s.script: missing key 'script'" in problem


# --- where they may be deployed -----------------------------------------------------------------


def catalog(tmp_path: Path, text: str, kinds: dict[str, str] | None = KINDS) -> Catalog:
    write(tmp_path, text)
    return Catalog.load([tmp_path], ENVIRONMENTS, kinds)


def test_slurm_step_cannot_run_on_a_local_environment_but_deploys_on_the_others(tmp_path):
    text = app(
        "prep: {kind: shell, run: 'true'}\nsolve: {kind: slurm, script: 'true'}\n",
        environments="[local, hpc1, hpc2]",
    )
    loaded = catalog(tmp_path, text)
    assert sorted(loaded.workflows) == ["app@hpc1@w", "app@hpc2@w"]
    (problem,) = loaded.problems
    assert problem.startswith(at(tmp_path, 9))
    assert "step 'solve' of kind slurm cannot run on local environment 'local'" in problem
    assert "application 'app' is not deployed there" in problem


def test_every_cluster_step_on_a_local_environment_is_reported(tmp_path):
    text = app(
        "a: {kind: slurm, script: 'true'}\nb: {kind: pycompss, app: main.py}\n",
        environments="[local]",
    )
    loaded = catalog(tmp_path, text)
    assert loaded.workflows == {}
    assert len(loaded.problems) == 2
    assert "step 'b' of kind pycompss cannot run on local environment" in loaded.problems[1]


def test_without_environment_kinds_every_environment_is_local(tmp_path):
    loaded = catalog(tmp_path, app("a: {kind: slurm, script: 'true'}\n"), kinds=None)
    assert loaded.workflows == {} and "local environment 'hpc1'" in loaded.problems[0]


def test_shell_only_application_deploys_everywhere(tmp_path):
    loaded = catalog(tmp_path, app("a: {kind: shell, run: 'true'}\n", "[local, hpc1]"))
    assert sorted(loaded.workflows) == ["app@hpc1@w", "app@local@w"] and loaded.problems == []


def test_unexposed_workflow_with_slurm_steps_does_not_block_a_local_deployment(tmp_path):
    text = (
        "application: app\nenvironments: [local]\nexpose: [w]\nworkflows:\n"
        "  w: {steps: {a: {kind: shell, run: 'true'}}}\n"
        "  draft: {steps: {b: {kind: slurm, script: 'true'}}}\n"
    )
    loaded = catalog(tmp_path, text)
    assert list(loaded.workflows) == ["app@local@w"] and loaded.problems == []


# --- the guide's example --------------------------------------------------------------------------


def test_guide_slurm_example_loads_and_deploys_on_a_slurm_environment(tmp_path):
    guide = GUIDE.read_text(encoding="utf-8")
    section = guide.split("## A Slurm application, in full", 1)[1]
    example = re.search(r"```yaml\n(.*?)```\n", section, re.S)
    assert example is not None
    write(tmp_path, example.group(1))
    loaded = Catalog.load([tmp_path], {"cluster": "Cluster"}, {"cluster": "slurm"})
    assert loaded.problems == []
    workflow = loaded.get("seismic@cluster@simulate", "anyone")
    kinds = [step.kind for step in workflow.spec.steps.values()]
    assert kinds == ["shell", "slurm", "pycompss"]
    assert workflow.step_order() == ["prepare", "solve", "analyse"]
