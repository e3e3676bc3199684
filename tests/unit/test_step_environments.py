"""A step's ``environment:``: checked in the file, fitted to its own environment at load."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hpcwaas.catalog import Catalog, CatalogFileError
from hpcwaas.catalog.loader import read_application

ENVIRONMENTS = {"local": "Local host", "hpc1": "HPC 1", "hpc2": "HPC 2"}
KINDS = {"local": "local", "hpc1": "slurm", "hpc2": "slurm"}


def write(tmp_path: Path, steps: str, environments: str = "[hpc1]", extra: str = "") -> None:
    body = textwrap.indent(textwrap.dedent(steps), "      ")
    text = (
        f"application: app\nenvironments: {environments}\nexpose: [w]\nworkflows:\n"
        f"  w:\n    steps:\n{body}{extra}"
    )
    (tmp_path / "app.yaml").write_text(text, encoding="utf-8")


def load(tmp_path: Path, services: dict[str, frozenset[str]] | None = None) -> Catalog:
    return Catalog.load([tmp_path], ENVIRONMENTS, KINDS, None, services)


def test_a_step_on_another_environment_keeps_one_workflow_id_on_the_home(tmp_path):
    write(
        tmp_path,
        "a: {kind: slurm, script: 'true'}\nb: {kind: slurm, script: 'true', environment: hpc2}\n",
    )
    catalog = load(tmp_path)
    assert list(catalog.workflows) == ["app@hpc1@w"]
    steps = catalog.by_id("app@hpc1@w").spec.steps
    assert steps["a"].environment is None
    assert steps["b"].environment == "hpc2"
    assert catalog.problems == []


def test_a_step_naming_an_unconfigured_environment_keeps_the_application_off_its_home(tmp_path):
    write(tmp_path, "a: {kind: shell, run: 'true', environment: gpu9}\n")
    catalog = load(tmp_path)
    assert catalog.workflows == {}
    (problem,) = catalog.problems
    assert "app.yaml:7" in problem
    assert "step 'a' of kind shell names environment 'gpu9', which is not configured" in problem
    assert "application 'app' is not deployed on 'hpc1'" in problem
    assert "configured: local, hpc1, hpc2" in problem


def test_a_cluster_step_sent_to_a_local_environment_is_refused_naming_it(tmp_path):
    write(
        tmp_path,
        "a: {kind: slurm, script: 'true', environment: local}\n",
        environments="[hpc1, hpc2]",
    )
    catalog = load(tmp_path)
    assert catalog.workflows == {}
    assert len(catalog.problems) == 2  # once per home
    assert "step 'a' of kind slurm cannot run on local environment 'local'" in catalog.problems[0]
    assert "is not deployed on 'hpc1'" in catalog.problems[0]
    assert "give the step environment: <a Slurm environment>" in catalog.problems[0]


def test_a_local_home_may_send_its_cluster_steps_to_a_cluster(tmp_path):
    write(
        tmp_path,
        "prep: {kind: shell, run: 'true'}\n"
        "solve: {kind: slurm, script: 'true', environment: hpc1, needs: [prep]}\n",
        environments="[local]",
    )
    catalog = load(tmp_path)
    assert list(catalog.workflows) == ["app@local@w"]


def test_a_dag_run_follows_the_services_of_its_own_environment(tmp_path):
    dag_run = (
        "d: {kind: dag_run, dag_id: plainhttp2ssh, environment: hpc2,\n"
        "    without_airflow: {kind: stage_in, url: 'https://x.example/a', target_path: a}}\n"
    )
    write(tmp_path, dag_run)
    # hpc1 (the home) has an Airflow, hpc2 (the step's) has none: the step's decides.
    catalog = load(tmp_path, {"hpc1": frozenset({"airflow"})})
    assert catalog.by_id("app@hpc1@w").spec.steps["d"].kind == "stage_in"
    assert catalog.by_id("app@hpc1@w").spec.steps["d"].environment == "hpc2"
    catalog = load(tmp_path, {"hpc2": frozenset({"airflow"})})
    assert catalog.by_id("app@hpc1@w").spec.steps["d"].kind == "dag_run"


def test_a_dag_run_without_a_stand_in_is_refused_on_an_environment_without_airflow(tmp_path):
    write(tmp_path, "d: {kind: dag_run, dag_id: plainhttp2ssh, environment: hpc2}\n")
    catalog = load(tmp_path, {"hpc1": frozenset({"airflow"})})
    assert catalog.workflows == {}
    (problem,) = catalog.problems
    assert "needs the environment's airflow: setting, which environment 'hpc2'" in problem
    assert "run the step on an environment that has it" in problem


def test_without_a_configuration_any_environment_is_taken_as_written(tmp_path):
    write(tmp_path, "a: {kind: slurm, script: 'true', environment: anywhere}\n")
    catalog = Catalog.load([tmp_path], None)
    assert list(catalog.workflows) == ["app@hpc1@w"]


def test_an_environment_id_with_a_bad_character_is_refused_in_the_file(tmp_path):
    write(tmp_path, "a: {kind: shell, run: 'true', environment: 'hpc 1'}\n")
    with pytest.raises(CatalogFileError) as info:
        read_application(tmp_path / "app.yaml")
    (problem,) = info.value.problems
    assert "workflows.w.steps.a.environment: String should match pattern" in problem


def _with_deployment(tmp_path: Path, deployment_steps: str) -> None:
    body = textwrap.indent(textwrap.dedent(deployment_steps), "    ")
    write(tmp_path, "a: {kind: shell, run: 'true'}\n", extra=f"deployment:\n  steps:\n{body}")


def test_a_deployment_step_may_run_on_another_environment_of_the_one_deployment(tmp_path):
    _with_deployment(
        tmp_path,
        "here: {kind: shell, run: 'true'}\n"
        "there: {kind: slurm, script: 'true', environment: hpc2}\n",
    )
    catalog = load(tmp_path)
    assert catalog.problems == []
    assert list(catalog.deployments) == [("app", "hpc1")]  # one deployment, on the home
    deployment = catalog.deployment("app", "hpc1")
    assert deployment.spec.steps["here"].environment is None
    assert deployment.spec.steps["there"].environment == "hpc2"
    assert deployment.other_environments() == ["hpc2"]


def test_a_deployment_step_naming_an_unconfigured_environment_keeps_the_application_off(tmp_path):
    _with_deployment(tmp_path, "d: {kind: shell, run: 'true', environment: gpu9}\n")
    catalog = load(tmp_path)
    assert catalog.workflows == {} and catalog.deployments == {}
    (problem,) = catalog.problems
    assert "the deployment: step 'd' of kind shell names environment 'gpu9'" in problem
    assert "which is not configured; application 'app' is not deployed on 'hpc1'" in problem


def test_a_deployment_cluster_step_sent_to_a_local_environment_is_refused(tmp_path):
    _with_deployment(tmp_path, "d: {kind: slurm, script: 'true', environment: local}\n")
    catalog = load(tmp_path)
    assert catalog.workflows == {}
    (problem,) = catalog.problems
    assert "the deployment: step 'd' of kind slurm cannot run on local environment" in problem
