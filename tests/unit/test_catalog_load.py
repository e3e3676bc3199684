"""Loading workflow files: the shipped demo, and every load problem reported with file and line."""

from __future__ import annotations

import logging
import subprocess
import textwrap
from pathlib import Path

import pytest

import hpcwaas
from hpcwaas.catalog import Catalog, CatalogFileError, render_command, validate_inputs
from hpcwaas.catalog.loader import read_application

EXAMPLES = Path(hpcwaas.__file__).parent / "examples"
LOCAL = {"local": "Local host"}

VALID = """\
application: app
environments: [local]
expose: [w]
workflows:
  w:
    steps:
      s: {kind: shell, run: "true"}
"""


def write(tmp_path: Path, text: str, name: str = "app.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    return info.value.problems


def only_problem(tmp_path: Path, text: str) -> str:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the shipped demo -----------------------------------------------------------------------


def test_demo_loads_without_problems_and_exposes_four_ids():
    catalog = Catalog.load([EXAMPLES], LOCAL)
    assert catalog.problems == []
    assert [w.id for w in catalog.visible("anyone")] == [
        "demo@local@fail",
        "demo@local@hello",
        "demo@local@sleep",
        "demo@local@sweep",
    ]


def test_demo_workflow_public_shape():
    workflow = Catalog.load([EXAMPLES], LOCAL).get("demo@local@hello", "u")
    public = workflow.to_public()
    assert public.model_dump() == {
        "id": "demo@local@hello",
        "name": "hello",
        "application_id": "demo",
        "environment_id": "local",
        "environment_name": "Local host",
        "description": "Say hello.",
    }
    assert workflow.source == EXAMPLES / "demo.yaml"
    assert len(workflow.digest) == 64


def test_demo_sweep_detail_lists_inputs_steps_in_run_order_and_outputs():
    detail = Catalog.load([EXAMPLES], LOCAL).get("demo@local@sweep", "u").to_detail()
    assert [i.name for i in detail.inputs] == ["n", "mode", "label", "verbose", "tags"]
    assert {i.type for i in detail.inputs} == {"integer", "enum", "string", "boolean", "list"}
    assert detail.steps == ["prepare", "left", "right", "gather"]
    assert detail.outputs == ["report"]
    tags = next(i for i in detail.inputs if i.name == "tags")
    assert tags.items == "string" and tags.default == ["a", "b"] and tags.required is False


def run_steps(workflow_id: str, inputs: dict, cwd: Path) -> list[subprocess.CompletedProcess]:
    workflow = Catalog.load([EXAMPLES], LOCAL).get(workflow_id, "u")
    context = {"inputs": validate_inputs(workflow.spec, inputs), "execution": {"id": "e1"}}
    results = []
    for name in workflow.step_order():
        command = render_command(workflow.spec.steps[name].run, context)
        results.append(
            subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True)
        )
    return results


def test_demo_hello_prints_hello_world_without_inputs(tmp_path):
    [greet] = run_steps("demo@local@hello", {}, tmp_path)
    assert greet.returncode == 0
    assert greet.stdout == "Hello, world!\n"


def test_demo_hello_greets_a_name_with_spaces_and_quotes(tmp_path):
    [greet] = run_steps("demo@local@hello", {"name": 'O\'Brien "the" $HOME'}, tmp_path)
    assert greet.stdout == 'Hello, O\'Brien "the" $HOME!\n'


def test_demo_sweep_writes_its_report(tmp_path):
    results = run_steps("demo@local@sweep", {"n": "2", "tags": "x,y z"}, tmp_path)
    assert [r.returncode for r in results] == [0, 0, 0, 0]
    assert "stderr" in results[2].stderr
    report = (tmp_path / "out" / "report.txt").read_text().splitlines()
    assert report == ["report run (execution e1)", "mode fast", "tag x", "tag y z", "1", "2"]


def test_demo_fail_exits_3_with_a_message_on_stderr(tmp_path):
    [explode] = run_steps("demo@local@fail", {}, tmp_path)
    assert explode.returncode == 3
    assert "went wrong" in explode.stderr


def test_demo_sleep_sleeps_the_given_seconds():
    workflow = Catalog.load([EXAMPLES], LOCAL).get("demo@local@sleep", "u")
    context = {"inputs": validate_inputs(workflow.spec, {"seconds": "5"}), "execution": {"id": "e"}}
    assert "sleep 5" in render_command(workflow.spec.steps["wait"].run, context)


# --- catalog loading --------------------------------------------------------------------------


def test_invalid_file_is_skipped_but_others_load_and_problem_is_logged(tmp_path, caplog):
    write(tmp_path, VALID, "good.yaml")
    write(
        tmp_path,
        VALID.replace("application: app", "application: bad").replace("run:", "runn:"),
        "bad.yml",
    )
    with caplog.at_level(logging.ERROR, logger="hpcwaas.catalog.catalog"):
        catalog = Catalog.load([tmp_path], LOCAL)
    assert sorted(catalog.workflows) == ["app@local@w"]
    assert len(catalog.problems) == 2  # unknown key runn, missing key run
    assert all(str(tmp_path / "bad.yml") in p for p in catalog.problems)
    assert "runn" in caplog.text


def test_files_other_than_yaml_and_hidden_files_are_ignored(tmp_path):
    write(tmp_path, VALID, "notes.txt")
    write(tmp_path, VALID, ".app.yaml")
    assert not Catalog.load([tmp_path], LOCAL).workflows


def test_second_file_with_same_application_id_is_refused(tmp_path):
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID.replace("expose: [w]", "expose: []"), "b.yaml")
    catalog = Catalog.load([tmp_path], LOCAL)
    assert [w.source.name for w in catalog.workflows.values()] == ["a.yaml"]
    [problem] = catalog.problems
    assert problem.startswith(f"{tmp_path / 'b.yaml'}:1:")
    assert "already defined by" in problem and "a.yaml" in problem


def test_unconfigured_environment_is_skipped_with_a_warning(tmp_path, caplog):
    write(tmp_path, VALID.replace("[local]", "[local, hpc1]"))
    catalog = Catalog.load([tmp_path], LOCAL)
    assert sorted(catalog.workflows) == ["app@local@w"]
    [problem] = catalog.problems
    assert "warning" in problem and "'hpc1'" in problem and ":2:" in problem


def test_application_deployed_on_several_environments_has_one_id_per_environment(tmp_path):
    write(tmp_path, VALID.replace("[local]", "[local, hpc1]"))
    catalog = Catalog.load([tmp_path], {"local": "Local", "hpc1": "Cluster one"})
    assert [(w.id, w.environment_name) for w in catalog.visible("u")] == [
        ("app@hpc1@w", "Cluster one"),
        ("app@local@w", "Local"),
    ]


def test_missing_catalog_directory_is_a_problem(tmp_path):
    catalog = Catalog.load([tmp_path / "nope"], LOCAL)
    assert not catalog.workflows
    assert "does not exist" in catalog.problems[0]


def test_a_file_path_in_dirs_loads_that_file(tmp_path):
    path = write(tmp_path, VALID, "one.yaml")
    assert sorted(Catalog.load([path], LOCAL).workflows) == ["app@local@w"]


def test_application_exposing_nothing_gets_a_warning(tmp_path):
    write(tmp_path, VALID.replace("expose: [w]", "expose: []"))
    catalog = Catalog.load([tmp_path], LOCAL)
    assert not catalog.workflows
    assert "exposes no workflow" in catalog.problems[0]


def test_step_order_is_topological_with_ties_in_file_order(tmp_path):
    write(
        tmp_path,
        """\
        application: app
        environments: [local]
        expose: [w]
        workflows:
          w:
            steps:
              d: {kind: shell, run: "true", needs: [b, c]}
              c: {kind: shell, run: "true", needs: [a]}
              b: {kind: shell, run: "true", needs: [a]}
              a: {kind: shell, run: "true"}
              e: {kind: shell, run: "true"}
        """,
    )
    workflow = Catalog.load([tmp_path], LOCAL).get("app@local@w", "u")
    assert workflow.step_order() == ["a", "c", "b", "d", "e"]


def test_digest_is_sha256_of_file_bytes(tmp_path):
    import hashlib

    path = write(tmp_path, VALID)
    workflow = Catalog.load([tmp_path], LOCAL).get("app@local@w", "u")
    assert workflow.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_workflow_guide_shows_the_shipped_demo_verbatim():
    guide = (Path(__file__).parents[2] / "docs" / "workflows.md").read_text(encoding="utf-8")
    demo = (EXAMPLES / "demo.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{demo}```\n" in guide
