"""The format's additions: path, ssh_key and secret inputs, step outputs, retries, on_failure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.errors import InputValidationError
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.catalog.kinds.base import Preparation
from hpcwaas.catalog.kinds.shell import ShellKind
from hpcwaas.catalog.loader import read_application
from hpcwaas.engine.secret_inputs import mask, split_secrets
from hpcwaas.engine.step_outputs import parse_step_outputs


def app(workflow_body: str) -> str:
    body = textwrap.indent(textwrap.dedent(workflow_body), "    ")
    return f"application: app\nenvironments: [local]\nexpose: [w]\nworkflows:\n  w:\n{body}"


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "app.yaml"
    path.write_text(text, encoding="utf-8")
    return read_application(path).application


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(CatalogFileError) as info:
        load(tmp_path, text)
    return info.value.problems


def at(tmp_path: Path, line: int) -> str:
    return f"{tmp_path / 'app.yaml'}:{line}: "


# -- inputs ----------------------------------------------------------------------------------


def workflow_with_inputs(tmp_path: Path, inputs: str):  # type: ignore[no-untyped-def]
    text = app(
        "inputs:\n"
        + textwrap.indent(textwrap.dedent(inputs), "  ")
        + "steps:\n  s: {kind: shell, run: 'true'}\n"
    )
    return load(tmp_path, text).workflows["w"]


def test_path_input_refuses_a_line_break_and_a_nul(tmp_path):
    spec = workflow_with_inputs(tmp_path, "where: {type: path}\n")
    assert validate_inputs(spec, {"where": "data/in put.txt"}) == {"where": "data/in put.txt"}
    for bad in ("a\nb", "a\x00b", ""):
        with pytest.raises(InputValidationError) as info:
            validate_inputs(spec, {"where": bad})
        assert "input 'where'" in info.value.problems[0]
    with pytest.raises(InputValidationError) as info:
        validate_inputs(spec, {"where": "a\nb"})
    assert "line break" in info.value.problems[0]


def test_path_input_takes_pattern_and_length_constraints(tmp_path):
    spec = workflow_with_inputs(
        tmp_path, "where: {type: path, pattern: '/scratch/.*', max_length: 20}\n"
    )
    assert validate_inputs(spec, {"where": "/scratch/run1"})["where"] == "/scratch/run1"
    with pytest.raises(InputValidationError) as info:
        validate_inputs(spec, {"where": "/home/me"})
    assert "does not match the pattern" in info.value.problems[0]


def test_secret_value_is_never_echoed_in_a_validation_error(tmp_path):
    spec = workflow_with_inputs(tmp_path, "token: {type: secret, pattern: 'tok-[a-z]+'}\n")
    with pytest.raises(InputValidationError) as info:
        validate_inputs(spec, {"token": "hunter2-SECRET"})
    assert "hunter2" not in str(info.value.problems)
    with pytest.raises(InputValidationError) as info:
        validate_inputs(spec, {"token": 123456789})
    assert "123456789" not in str(info.value.problems)


def test_secret_input_with_a_default_is_refused_at_load(tmp_path):
    text = app(
        "inputs:\n  token: {type: secret, default: abc}\nsteps:\n  s: {kind: shell, run: 'true'}\n"
    )
    (problem,) = problems_of(tmp_path, text)
    assert "secret input 'token' has a default" in problem
    assert "remove the default" in problem


def test_secret_input_in_a_command_is_refused_with_the_env_hint(tmp_path):
    text = app(
        """\
        inputs:
          token: {type: secret}
        steps:
          s: {kind: shell, run: "curl -H {{ inputs.token }} https://example.org"}
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(at(tmp_path, 9))
    assert "secret input 'token'" in problem and "env:" in problem


def test_secret_input_in_env_loads(tmp_path):
    text = app(
        """\
        inputs:
          token: {type: secret}
        steps:
          s:
            kind: shell
            env: {TOKEN: "{{ inputs.token }}"}
            run: test -n "$TOKEN"
        """
    )
    assert load(tmp_path, text).workflows["w"].inputs["token"].type == "secret"


def test_constraint_that_does_not_apply_to_ssh_key_is_refused(tmp_path):
    text = app(
        "inputs:\n  key: {type: ssh_key, minimum: 1}\nsteps:\n  s: {kind: shell, run: 'true'}\n"
    )
    (problem,) = problems_of(tmp_path, text)
    assert "minimum does not apply to type ssh_key" in problem


def test_split_secrets_stores_a_placeholder(tmp_path):
    spec = workflow_with_inputs(tmp_path, "token: {type: secret}\nname: {type: string}\n")
    stored, secrets = split_secrets(spec, {"token": "s3cr3t", "name": "Ada"})
    assert stored == {"token": "[secret]", "name": "Ada"}
    assert secrets == {"token": "s3cr3t"}
    assert mask("echo s3cr3t and s3cr3t", secrets) == "echo [secret] and [secret]"


# -- step outputs ----------------------------------------------------------------------------


def test_step_output_of_an_ancestor_loads_and_renders_quoted(tmp_path):
    text = app(
        """\
        steps:
          a: {kind: shell, outputs: [y], run: echo "y=1" > "$HPCWAAS_OUTPUTS"}
          b: {kind: shell, needs: [a], run: "true"}
          c: {kind: shell, needs: [b], run: "echo {{ steps.a.outputs.y }}"}
        """
    )
    step = load(tmp_path, text).workflows["w"].steps["c"]
    invocation = ShellKind().prepare(
        step,
        Preparation(
            execution_id="e1", step_name="c", inputs={}, step_outputs={"a": {"y": "it's; rm -rf /"}}
        ),
    )
    assert invocation.command == "echo 'it'\"'\"'s; rm -rf /'"


def test_step_output_of_a_step_not_needed_is_refused_with_a_needs_hint(tmp_path):
    text = app(
        """\
        steps:
          a: {kind: shell, outputs: [y], run: "true"}
          c: {kind: shell, run: "echo {{ steps.a.outputs.y }}"}
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(at(tmp_path, 8))
    assert "step 'a' is not among the steps this one needs" in problem
    assert "needs: [a]" in problem


def test_step_output_that_is_not_declared_is_refused(tmp_path):
    text = app(
        """\
        steps:
          a: {kind: shell, outputs: [y], run: "true"}
          c: {kind: shell, needs: [a], run: "echo {{ steps.a.outputs.z }}"}
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert "does not declare output 'z' (declared: y)" in problem


def test_step_output_of_an_unknown_step_is_refused(tmp_path):
    text = app(
        """\
        steps:
          c: {kind: shell, run: "echo {{ steps.nope.outputs.z }}"}
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert "there is no step 'nope'" in problem


def test_invalid_output_name_is_refused(tmp_path):
    text = app("steps:\n  a: {kind: shell, outputs: [1bad], run: 'true'}\n")
    (problem,) = problems_of(tmp_path, text)
    assert "output name '1bad' is not valid" in problem


def test_outputs_file_lines_are_parsed_last_value_wins():
    parsed = parse_step_outputs(b"# note\ny=1\nz=a=b\r\ny=2\nother=3\n", ["y", "z"], 1000)
    assert parsed.error is None
    assert parsed.values == {"y": "2", "z": "a=b"}
    assert parsed.warnings == ["output 'other' is not declared by the step: ignored"]


def test_outputs_file_missing_a_declared_output_fails_the_step():
    assert "did not write its declared outputs z" in str(
        parse_step_outputs(b"y=1\n", ["y", "z"], 1000).error
    )
    assert parse_step_outputs(None, ["y"], 1000).error is not None
    assert "more than 4 bytes" in str(parse_step_outputs(b"y=12345", ["y"], 4).error)
    assert "not name=value" in str(parse_step_outputs(b"y\n", ["y"], 100).error)


# -- retries and on_failure ------------------------------------------------------------------


def test_retries_and_retry_delay_load(tmp_path):
    text = app("steps:\n  a: {kind: shell, retries: 2, retry_delay: 0.5, run: 'true'}\n")
    step = load(tmp_path, text).workflows["w"].steps["a"]
    assert (step.retries, step.retry_delay) == (2, 0.5)


def test_negative_retries_are_refused(tmp_path):
    text = app("steps:\n  a: {kind: shell, retries: -1, run: 'true'}\n")
    (problem,) = problems_of(tmp_path, text)
    assert "retries" in problem


def test_on_failure_steps_load_and_may_need_each_other(tmp_path):
    text = app(
        """\
        inputs:
          tag: {type: string, default: x}
        steps:
          a: {kind: shell, run: "false"}
        on_failure:
          note: {kind: shell, run: "echo failed {{ inputs.tag }}"}
          clean: {kind: shell, needs: [note], run: "rm -rf out"}
        """
    )
    workflow = load(tmp_path, text).workflows["w"]
    assert list(workflow.on_failure) == ["note", "clean"]


def test_on_failure_step_cannot_need_a_workflow_step_or_read_step_outputs(tmp_path):
    text = app(
        """\
        steps:
          a: {kind: shell, outputs: [y], run: "true"}
        on_failure:
          clean: {kind: shell, needs: [a], run: "echo {{ steps.a.outputs.y }}"}
        """
    )
    problems = problems_of(tmp_path, text)
    assert any("needs unknown step 'a'" in p for p in problems), problems
    assert any("step outputs cannot be used here" in p for p in problems), problems


def test_on_failure_step_named_like_a_step_is_refused(tmp_path):
    text = app(
        """\
        steps:
          a: {kind: shell, run: "true"}
        on_failure:
          a: {kind: shell, run: "true"}
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert "has the name of a step of the workflow" in problem


def test_step_output_written_with_brackets_is_checked_too(tmp_path):
    text = app(
        """\
        steps:
          a: {kind: shell, outputs: [y], run: "true"}
          c: {kind: shell, needs: [a], run: "echo {{ steps['a'].outputs['z'] }}"}
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert "does not declare output 'z'" in problem
    assert "hint: steps.<step>.outputs.<name> reads a value written by a step" in problem


def test_secret_input_is_refused_in_a_pycompss_step_env(tmp_path):
    text = (
        "application: app\nenvironments: [cluster]\nexpose: [w]\nworkflows:\n  w:\n"
        "    inputs:\n      token: {type: secret}\n    steps:\n"
        "      p: {kind: pycompss, app: app.py, env: {T: '{{ inputs.token }}'}}\n"
    )
    (problem,) = problems_of(tmp_path, text)
    assert "secret input 'token'" in problem
