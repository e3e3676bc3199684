"""The `deployment:` section of a workflow file: checked at load, by name and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.loader import read_application

HEAD = """\
application: app
environments: [local]
expose: [w]
deployment:
  steps:
    install:
      kind: shell
      outputs: [tool_dir]
      run: echo "tool_dir=/opt/tool" >> "$HPCWAAS_OUTPUTS"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(CatalogFileError) as info:
        read_application(_write(tmp_path, text))
    return info.value.problems


def _workflow(run: str) -> str:
    return f"workflows:\n  w:\n    steps:\n      use: {{kind: shell, run: {run!r}}}\n"


def test_a_step_reads_a_declared_deployment_output(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + _workflow("ls {{ deployment.outputs.install.tool_dir }}"))
    loaded = read_application(path)
    assert loaded.application.deployment is not None
    assert list(loaded.application.deployment.steps) == ["install"]


def test_an_undeclared_deployment_output_is_named_with_what_is_declared(tmp_path: Path) -> None:
    text = HEAD + _workflow("ls {{ deployment.outputs.install.tool_path }}")
    [problem] = _problems(tmp_path, text)
    assert f"{tmp_path / 'app.yaml'}:13:" in problem
    assert "hint: deployment.outputs.<step>.<name> reads a value" in problem
    assert (
        "the template uses deployment.outputs.install.tool_path, but deployment step "
        "'install' does not declare output 'tool_path' (declared: tool_dir)"
    ) in problem


def test_an_unknown_deployment_step_is_named(tmp_path: Path) -> None:
    [problem] = _problems(tmp_path, HEAD + _workflow("ls {{ deployment.outputs.setup.x }}"))
    assert "the deployment has no step 'setup' (its steps: install)" in problem


def test_deployment_outputs_in_an_application_without_deployment_are_refused(
    tmp_path: Path,
) -> None:
    text = "application: app\nenvironments: [local]\nexpose: [w]\n" + _workflow(
        "ls {{ deployment.outputs.install.tool_dir }}"
    )
    [problem] = _problems(tmp_path, text)
    assert "but deployment outputs cannot be used here" in problem


def test_a_deployment_may_not_declare_inputs(tmp_path: Path) -> None:
    text = HEAD + "  inputs: {x: {type: string}}\n" + _workflow("true")
    [problem] = _problems(tmp_path, text)
    assert "the deployment has inputs, but nobody triggers or downloads it" in problem


def test_the_deployment_is_kept_apart_from_the_exposed_workflows(tmp_path: Path) -> None:
    catalog = Catalog.load([_write(tmp_path, HEAD + _workflow("true"))], {"local": "Local"})
    assert list(catalog.workflows) == ["app@local@w"]
    deployment = catalog.deployment("app", "local")
    assert deployment is not None and deployment.id == "app@local@.deployment"
    assert catalog.runnable("app@local@.deployment") is deployment
    assert catalog.by_id("app@local@.deployment") is None
