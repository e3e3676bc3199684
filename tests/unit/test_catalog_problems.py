"""Every load problem of a workflow file names the file, the line and what to fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.loader import read_application


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(tmp_path: Path, text: str) -> str:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    return problems[0]


def at(tmp_path: Path, line: int) -> str:
    return f"{tmp_path / 'app.yaml'}:{line}: "


def app(workflow_body: str, expose: str = "[w]") -> str:
    """A file with one workflow `w` whose body is indented under it."""
    body = textwrap.indent(textwrap.dedent(workflow_body), "    ")
    return f"application: app\nenvironments: [local]\nexpose: {expose}\nworkflows:\n  w:\n{body}"


def test_unknown_step_in_needs_names_the_step_and_line(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            """\
            steps:
              a: {kind: shell, run: "true"}
              b:
                kind: shell
                needs: [a, prep]
                run: "true"
            """
        ),
    )
    assert problem.startswith(at(tmp_path, 10))
    assert "step 'b' needs unknown step 'prep'" in problem and "hint:" in problem


def test_cycle_names_every_step_in_it(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            """\
            steps:
              a: {kind: shell, run: "true", needs: [c]}
              b: {kind: shell, run: "true", needs: [a]}
              c: {kind: shell, run: "true", needs: [b]}
              d: {kind: shell, run: "true"}
            """
        ),
    )
    assert problem.startswith(at(tmp_path, 7))
    assert "cycle (a -> b -> c -> a)" in problem


def test_step_needing_itself_is_a_cycle(tmp_path):
    problem = only_problem(tmp_path, app('steps:\n  a: {kind: shell, run: "true", needs: [a]}\n'))
    assert "step 'a' needs itself" in problem


def test_output_naming_unknown_step(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            """\
            steps:
              a: {kind: shell, run: "true"}
            outputs:
              report:
                step: gather
                path: out/report.txt
            """
        ),
    )
    assert problem.startswith(at(tmp_path, 10))
    assert "output 'report' names unknown step 'gather'" in problem


@pytest.mark.parametrize("path", ["/etc/passwd", "../up.txt", "out/../../x", ""])
def test_output_path_must_stay_inside_the_working_directory(tmp_path, path):
    problem = only_problem(
        tmp_path,
        app(
            'steps:\n  a: {kind: shell, run: "true"}\n'
            f'outputs:\n  o: {{step: a, path: "{path}"}}\n'
        ),
    )
    assert "must stay inside" in problem


def test_exposed_workflow_that_is_not_defined(tmp_path):
    problem = only_problem(tmp_path, app('steps:\n  a: {kind: shell, run: "true"}\n', "[w, ghost]"))
    assert problem.startswith(at(tmp_path, 3))
    assert "exposed workflow 'ghost' is not defined" in problem and "defined: w" in problem


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ("{type: integer, default: '3'}", "expected an integer"),
        ("{type: integer, default: 9, maximum: 5}", "above the maximum 5"),
        ("{type: number, default: .nan}", "finite number"),
        ("{type: boolean, default: 'yes'}", "expected a boolean"),
        ("{type: string, default: 3}", "expected a string"),
        ("{type: string, default: abc, pattern: '[0-9]+'}", "does not match the pattern"),
        ("{type: string, default: abcdef, max_length: 3}", "too long"),
        ("{type: enum, values: [a, b], default: c}", "not one of the allowed values"),
        ("{type: list, default: 'a,b'}", "expected a list"),
        ("{type: list, items: integer, default: [1, x]}", "item 1: expected an integer"),
        ("{type: list, default: [a, b, c], max_length: 2}", "too many items"),
    ],
)
def test_default_must_fit_its_input(tmp_path, declaration, expected):
    problem = only_problem(
        tmp_path, app(f'inputs:\n  x: {declaration}\nsteps:\n  a: {{kind: shell, run: "true"}}\n')
    )
    assert problem.startswith(at(tmp_path, 7))
    assert "input 'x': the default does not fit" in problem and expected in problem


def test_enum_without_values(tmp_path):
    problem = only_problem(
        tmp_path, app('inputs:\n  mode: {type: enum}\nsteps:\n  a: {kind: shell, run: "true"}\n')
    )
    assert problem.startswith(at(tmp_path, 7)) and "enum input 'mode' has no values" in problem


def test_enum_value_read_as_boolean_by_yaml_suggests_quoting(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            "inputs:\n  ok:\n    type: enum\n    values: [maybe, no]\n"
            'steps:\n  a: {kind: shell, run: "true"}\n'
        ),
    )
    assert problem.startswith(at(tmp_path, 9)) and "quote it" in problem


def test_constraint_that_does_not_apply_to_the_type(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            'inputs:\n  n: {type: integer, pattern: "[0-9]"}\n'
            'steps:\n  a: {kind: shell, run: "true"}\n'
        ),
    )
    assert "pattern does not apply to type integer" in problem


def test_invalid_regular_expression(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            'inputs:\n  s: {type: string, pattern: "(["}\nsteps:\n  a: {kind: shell, run: "true"}\n'
        ),
    )
    assert "invalid pattern" in problem


def test_required_input_with_a_default(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            "inputs:\n  s: {type: string, required: true, default: x}\n"
            'steps:\n  a: {kind: shell, run: "true"}\n'
        ),
    )
    assert "required and has a default" in problem


def test_unknown_key_names_the_key_where_and_the_allowed_keys(tmp_path):
    problem = only_problem(
        tmp_path, app("steps:\n  a:\n    kind: shell\n    run: 'true'\n    need: [b]\n")
    )
    assert problem.startswith(at(tmp_path, 10))
    assert "workflows.w.steps.a.need: unknown key 'need'" in problem
    assert "allowed keys here: kind, run, needs" in problem


def test_unknown_top_level_key(tmp_path):
    text = app('steps:\n  a: {kind: shell, run: "true"}\n') + "exposes: [w]\n"
    problem = only_problem(tmp_path, text)
    assert problem.startswith(at(tmp_path, 8)) and "unknown key 'exposes'" in problem


def test_wrong_step_kind_says_which_kinds_exist(tmp_path):
    problem = only_problem(tmp_path, app("steps:\n  a: {kind: pbs, run: x}\n"))
    assert problem.startswith(at(tmp_path, 7))
    assert "workflows.w.steps.a.kind: unknown step kind" in problem and '"pbs"' in problem
    assert "shell, slurm, pycompss" in problem


def test_step_without_kind_says_which_kinds_exist(tmp_path):
    problem = only_problem(tmp_path, app("steps:\n  a: {run: x}\n"))
    assert "workflows.w.steps.a: missing key 'kind'" in problem
    assert "shell, slurm, pycompss" in problem


def test_missing_key(tmp_path):
    problem = only_problem(tmp_path, app("steps:\n  a: {kind: shell}\n"))
    assert problem.startswith(at(tmp_path, 7)) and "missing key 'run'" in problem


@pytest.mark.parametrize("bad", ["de@mo", "-demo", "de mo", "démo"])
def test_application_id_must_be_a_plain_name(tmp_path, bad):
    text = app('steps:\n  a: {kind: shell, run: "true"}\n').replace(
        "application: app", f'application: "{bad}"'
    )
    problem = only_problem(tmp_path, text)
    assert problem.startswith(at(tmp_path, 1)) and "application id" in problem and "'@'" in problem


def test_workflow_and_step_names_must_be_plain_names(tmp_path):
    text = (
        "application: app\nenvironments: [local]\nexpose: ['w@x']\nworkflows:\n  w@x:\n"
        '    steps:\n      "s 1": {kind: shell, run: "true"}\n'
    )
    problems = problems_of(tmp_path, text)
    assert any(
        "workflow name 'w@x' is not valid" in p and p.startswith(at(tmp_path, 5)) for p in problems
    )
    assert any(
        "step name 's 1' is not valid" in p and p.startswith(at(tmp_path, 7)) for p in problems
    )


def test_duplicate_yaml_key_is_refused_with_both_lines(tmp_path):
    problem = only_problem(
        tmp_path,
        app('steps:\n  a: {kind: shell, run: "true"}\n  a: {kind: shell, run: "false"}\n'),
    )
    assert problem.startswith(at(tmp_path, 8))
    assert "duplicate key 'a' (first given on line 7)" in problem


def test_yaml_syntax_error_has_a_line(tmp_path):
    problem = only_problem(tmp_path, "application: app\nenvironments: [local\nexpose: []\n")
    assert problem.startswith(f"{tmp_path / 'app.yaml'}:") and "YAML" in problem


def test_file_that_is_not_a_mapping(tmp_path):
    problem = only_problem(tmp_path, "- just\n- a list\n")
    assert problem.startswith(at(tmp_path, 1)) and "mapping" in problem


def test_template_using_an_undeclared_input_names_the_step(tmp_path):
    problem = only_problem(
        tmp_path,
        app(
            """\
            inputs:
              name: {type: string}
            steps:
              greet:
                kind: shell
                run: echo {{ inputs.nmae }}
            """
        ),
    )
    assert problem.startswith(at(tmp_path, 11))
    assert "step 'greet' run" in problem and "undefined input 'nmae'" in problem


def test_template_may_use_reserved_inputs_without_declaring_them(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(
        app('steps:\n  a: {kind: shell, run: "ssh {{ inputs.user_id }}@h {{ inputs.vault_id }}"}\n')
    )
    assert read_application(path).application.application == "app"


def test_template_problems_in_env_values_and_env_names(tmp_path):
    problems = problems_of(
        tmp_path,
        app(
            """\
            steps:
              a:
                kind: shell
                run: "true"
                env:
                  GOOD: "{{ inputs.missing }}"
                  1BAD: x
            """
        ),
    )
    assert any("env GOOD" in p and "'missing'" in p for p in problems)
    assert any("'1BAD' is not a valid environment variable name" in p for p in problems)


def test_template_syntax_error_and_unknown_filter(tmp_path):
    problems = problems_of(
        tmp_path,
        app('steps:\n  a: {kind: shell, run: "{{ x"}\n  b: {kind: shell, run: "{{ 1 | nope }}"}\n'),
    )
    assert len(problems) == 2
    assert "syntax error" in problems[0] and "nope" in problems[1]


def test_all_problems_of_a_file_are_reported_at_once(tmp_path):
    problems = problems_of(
        tmp_path,
        app(
            """\
            inputs:
              mode: {type: enum}
            steps:
              a: {kind: shell, run: "{{ inputs.x }}", needs: [zz]}
            outputs:
              o: {step: nope, path: out}
            """,
            "[w, ghost]",
        ),
    )
    assert len(problems) == 5


def test_application_without_environments(tmp_path):
    text = app('steps:\n  a: {kind: shell, run: "true"}\n').replace("[local]", "[]")
    problem = only_problem(tmp_path, text)
    assert problem.startswith(at(tmp_path, 2)) and "no environment listed" in problem


def test_environment_id_must_be_a_plain_name(tmp_path):
    text = app('steps:\n  a: {kind: shell, run: "true"}\n').replace("[local]", "[local, 'a@b']")
    problem = only_problem(tmp_path, text)
    assert problem.startswith(at(tmp_path, 2)) and "environment id 'a@b'" in problem


def test_workflow_without_steps(tmp_path):
    problem = only_problem(tmp_path, app("steps: {}\n"))
    assert "has no step" in problem


def test_wrong_value_type_names_the_key_and_the_value(tmp_path):
    problem = only_problem(tmp_path, app("steps:\n  a: {kind: shell, run: x, needs: a}\n"))
    assert problem.startswith(at(tmp_path, 7))
    assert "workflows.w.steps.a.needs" in problem and 'string "a"' in problem
