"""Step templates: values become quoted shell words, nothing a user types runs as shell code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hpcwaas.catalog import CatalogError, RenderError, check_template, render_command, render_env

HOSTILE = [
    "plain",
    "two words",
    "it's",
    'double "quotes"',
    "$(touch pwned)",
    "`touch pwned`",
    "a; touch pwned",
    "a && touch pwned",
    "a | touch pwned",
    "line1\nline2\ntouch pwned",
    "> pwned",
    "$HOME ${HOME} $((1+1))",
    "*",
    "~root",
    "-n",
    "\\backslash\\",
    "'; touch pwned; echo '",
    "héllo wörld ✓ 日本語",
    "{{ inputs.x }}",
    "",
    " leading and trailing ",
    "\t tab",
]


def context(**inputs) -> dict:
    return {"inputs": inputs, "execution": {"id": "exec-1"}}


def run_bash(command: str, cwd: Path) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_string_is_printed_exactly_and_runs_nothing(tmp_path, value):
    command = render_command("printf '%s' {{ inputs.x }}", context(x=value))
    assert run_bash(command, tmp_path) == value
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_string_inside_double_quotes_of_the_template_stays_one_word(tmp_path, value):
    command = render_command('printf "%s|" "pre-"{{ inputs.x }}"-post"', context(x=value))
    assert run_bash(command, tmp_path) == f"pre-{value}-post|"
    assert list(tmp_path.iterdir()) == []


def test_list_renders_as_one_quoted_word_per_element(tmp_path):
    command = render_command("printf '[%s]' {{ inputs.tags }}", context(tags=HOSTILE[:12]))
    assert run_bash(command, tmp_path) == "".join(f"[{v}]" for v in HOSTILE[:12])
    assert list(tmp_path.iterdir()) == []


def test_loop_over_a_list_quotes_each_element(tmp_path):
    template = "{% for t in inputs.tags %}printf '<%s>' {{ t }}; {% endfor %}"
    assert (
        run_bash(render_command(template, context(tags=["a b", "$(x)"])), tmp_path) == "<a b><$(x)>"
    )


def test_empty_list_renders_nothing():
    assert render_command("cmd {{ inputs.tags }}", context(tags=[])) == "cmd "


def test_booleans_numbers_and_none():
    rendered = render_command(
        "{{ inputs.t }} {{ inputs.f }} {{ inputs.i }} {{ inputs.x }} {{ inputs.n }}",
        context(t=True, f=False, i=-3, x=2.5, n=None),
    )
    assert rendered == "true false -3 2.5 ''"


def test_execution_id_is_available():
    assert render_command("echo {{ execution.id }}", context()) == "echo exec-1"


def test_raw_filter_inserts_the_value_unquoted(tmp_path):
    command = render_command("{{ inputs.code | raw }}", context(code="echo a; echo b"))
    assert command == "echo a; echo b"
    assert run_bash(command, tmp_path) == "a\nb\n"


def test_raw_of_a_list_joins_elements_unquoted():
    assert render_command("x {{ inputs.o | raw }}", context(o=["-a", "-b"])) == "x -a -b"


def test_raw_then_concatenated_is_quoted_again():
    rendered = render_command("{{ inputs.v | raw ~ '; x' }}", context(v="a b"))
    assert rendered == "'a b; x'"


def test_safe_filter_does_not_bypass_quoting():
    assert render_command("{{ inputs.v | safe }}", context(v="a;b")) == "'a;b'"


def test_literal_template_text_is_not_quoted():
    assert render_command("echo 'a b' > out.txt\n", context()) == "echo 'a b' > out.txt\n"


def test_undefined_input_is_an_error_naming_it():
    with pytest.raises(RenderError, match="nmae"):
        render_command("echo {{ inputs.nmae }}", context(name="x"))
    assert issubclass(RenderError, CatalogError)


def test_undefined_variable_is_an_error_naming_it():
    with pytest.raises(RenderError, match="'foo' is undefined"):
        render_command("echo {{ foo }}", context())


@pytest.mark.parametrize(
    "template",
    [
        "{{ inputs.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ inputs.tags.append('x') }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_refuses_unsafe_access(template):
    with pytest.raises(RenderError):
        render_command(template, context(tags=["a"]))


def test_syntax_error_is_a_render_error():
    with pytest.raises(RenderError, match="syntax error"):
        render_command("{% if %}", context())


def test_env_values_are_rendered_without_shell_quoting():
    env = {"NAME": "{{ inputs.name }}", "FLAGS": "{{ inputs.tags }}", "ON": "{{ inputs.on }}"}
    rendered = render_env(env, context(name="a b; $(x)", tags=["x", "y z"], on=True))
    assert rendered == {"NAME": "a b; $(x)", "FLAGS": "x y z", "ON": "true"}


def test_env_render_error_names_the_variable():
    with pytest.raises(RenderError, match="env NAME"):
        render_env({"NAME": "{{ inputs.missing }}"}, context())


def test_check_template_reports_undeclared_inputs_and_unknown_names():
    found = check_template(
        "{{ inputs.a }} {{ inputs['b'] }} {{ foo }} {{ execution.nope }} {{ execution.id }}",
        {"a"},
    )
    assert len(found) == 3
    assert (
        "undefined input 'b'" in found[1] and "'foo'" in found[0] and "execution.nope" in found[2]
    )


def test_check_template_accepts_loop_and_set_variables():
    template = (
        "{% set x = inputs.a %}{% for t in inputs.l %}{{ t }}{{ loop.index }}{% endfor %}{{ x }}"
    )
    assert check_template(template, {"a", "l"}) == []


def test_check_template_reports_syntax_errors_and_unknown_filters():
    assert "syntax error on line 2" in check_template("ok\n{{ x", set())[0]
    assert "nope" in check_template("{{ 1 | nope }}", set())[0]


def test_check_template_allows_reserved_inputs_by_default_only():
    template = "{{ inputs.user_id }} {{ inputs.vault_id }}"
    assert check_template(template, []) == []
    assert len(check_template(template, [], reserved=frozenset())) == 2


def test_check_template_keeps_checking_inputs_after_an_execution_problem():
    found = check_template("{{ execution.x }} {{ inputs.nam }}", ["name"])
    assert len(found) == 2 and "undefined input 'nam'" in found[1]
