"""A shell template may use a value only as a word of a command; anywhere else, a load problem.

Every value is rendered as one shell-quoted word, which holds only outside the template's own
quotes, at the top level of the script. Each refused place below is shown to run a user's code
when rendered; each accepted template is shown to run none, whatever the value.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

import pytest

import hpcwaas
from hpcwaas.catalog import Catalog, CatalogFileError, render_command
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.shell_quoting import misplaced_expressions

EXAMPLES = Path(hpcwaas.__file__).parent / "examples"
GUIDE = Path(__file__).parents[2] / "docs" / "workflows.md"

HOSTILE = [
    "plain",
    "two words",
    "it's",
    'double "quotes"',
    "$(touch pwned)",
    "`touch pwned`",
    "`;touch pwned;`",
    "a; touch pwned",
    "a;touch pwned;#",
    "'; touch pwned; echo '",
    '"; touch pwned; echo "',
    "x\ntouch pwned\n",
    "EOF\ntouch pwned\nEOF",
    "> pwned",
    "\\",
    "$HOME ${HOME} $((1+1))",
    "",
]

# (template, what the problem says, line of the expression in the template)
REFUSED = [
    ('echo "{{ inputs.x }}" > result.txt', "is inside double quotes, where the shell", 1),
    ('echo "pre {{ inputs.x }} post"', "inside double quotes", 1),
    ('echo "$HOME/{{ inputs.x }}"', "inside double quotes", 1),
    ('echo \\\\"{{ inputs.x }}\\\\"', "inside double quotes", 1),  # \\ is a backslash: " opens
    ('echo "one\ntwo {{ inputs.x }}"', "inside double quotes", 2),
    ('{% for t in inputs.tags %}echo "{{ t }}"\n{% endfor %}', "inside double quotes", 1),
    ('{% raw %}"{% endraw %}{{ inputs.x }}"', "inside double quotes", 1),  # raw text counts
    ('echo "{{ inputs.x | raw ~ "-" }}"', "inside double quotes", 1),  # quoted again: not raw
    ("echo '{{ inputs.x }}'", "is inside single quotes, which the quotes around its value", 1),
    ("echo $'{{ inputs.x }}'", "is inside $'...' quotes", 1),
    ("cat <<EOF\n{{ inputs.x }}\nEOF\n", "is inside a here-document, where the shell", 2),
    ("cat <<EOF\nEOFX\n{{ inputs.x }}\nEOF\n", "inside a here-document, where", 3),
    ("cat <<'EOF'\n{{ inputs.x }}\nEOF\n", "here-document with a quoted delimiter", 2),
    ('cat <<-"EOF"\n\tok\n\t{{ inputs.x }}\n\tEOF\n', "here-document with a quoted delimiter", 3),
    ("cat <<\\EOF\n{{ inputs.x }}\nEOF\n", "here-document with a quoted delimiter", 2),
    ("cat <<A <<B\na\nA\n{{ inputs.x }}\nB\n", "inside a here-document", 4),
    ("x=$(cat <<EOF\nhi {{ inputs.x }}\nEOF\n)\n", "inside a here-document", 2),
    ("n=$(grep -c {{ inputs.x }} f)", "is inside a command substitution", 1),
    ('echo "$(echo {{ inputs.x }})"', "inside a command substitution", 1),
    ("diff <(sort {{ inputs.x }}) b", "inside a command substitution", 1),
    ("echo `echo {{ inputs.x }}`", "is inside backticks", 1),
    ("echo $(( {{ inputs.x }} + 1 ))", "is inside an arithmetic expression", 1),
    ("(( {{ inputs.x }} > 1 ))", "inside an arithmetic expression", 1),
    ("echo ${v:-{{ inputs.x }}}", "is inside a parameter expansion", 1),
    ("# writes {{ inputs.x }}\ntrue", "is inside a shell comment", 1),
    ("true\ntrue # {{ inputs.x }}", "inside a shell comment", 2),
    ("echo \\{{ inputs.x }}", "comes right after a backslash", 1),
    ("echo ${{ inputs.x }}", "comes right after a $", 1),
]

ACCEPTED = [
    "echo {{ inputs.x }}",
    'echo "pre "{{ inputs.x }}" post"',
    "echo 'pre '{{ inputs.x }}' post'",
    'x={{ inputs.x }}; echo "$x"',
    'echo \\"{{ inputs.x }}\\"',  # escaped quotes are plain characters around the word
    "echo \\'{{ inputs.x }}\\'",
    "echo \\${{ inputs.x }}",  # a literal $, then the word
    "cat <<< {{ inputs.x }}",  # a here-string takes a word
    "echo a#{{ inputs.x }}",  # a # inside a word starts no comment
    'echo "it\'s" \'say "hi"\' {{ inputs.x }}',
    "echo 'a\\' {{ inputs.x }}",  # no escape in single quotes: the quotes are closed
    "echo \"a\\\"b\" $'c\\'d' {{ inputs.x }}",
    'echo "$(ls "a b" | wc -l)" `true` $((1 + (2))) "${HOME:-x}" {{ inputs.x }}',
    "cat <<EOF\n$(true) \"it's\n'EOF\n EOF\nEOF\necho {{ inputs.x }}",
    "cat <<-EOF\n\tbody\n\tEOF\necho {{ inputs.x }}",
    "cat <<EOF; echo {{ inputs.x }}\nbody\nEOF\n",  # the body starts on the next line
    "echo a \\\n  {{ inputs.x }}",
    "# it's a comment\necho {{ inputs.x }}",
    '{# "it\'s" #}echo {{ inputs.x }}',
    '{% if inputs.x %}echo "yes"{% endif %} {{ inputs.x }}',
    "f() { printf '<%s>' {{ inputs.x }}; }; f",
    "( echo {{ inputs.x }} ) && { echo {{ inputs.x }}; }",
    "printf '[%s]' {{ inputs.x }}{{ inputs.x }} {{ inputs.x ~ '-' ~ inputs.x }}",
    "{% for t in inputs.tags %}printf '<%s>' {{ t }}\n{% endfor %}",
]

RAW_ANYWHERE = [
    'echo "{{ inputs.x | raw }}"',
    "echo '{{ inputs.x|raw }}'",
    "cat <<EOF\n{{ inputs.x | raw }}\nEOF\n",
    "# {{ inputs.x | raw }}",
    "echo $(( {{ inputs.x | raw }} )) `{{ inputs.x | raw }}` \\{{ inputs.x | raw }}",
]


def context(x: str = "v", tags: list[str] | None = None) -> dict:
    return {"inputs": {"x": x, "tags": tags or [x]}, "execution": {"id": "exec-1"}}


def run_bash(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True)


# --- the state machine ----------------------------------------------------------------------------


@pytest.mark.parametrize(("template", "message", "line"), REFUSED)
def test_expression_outside_a_top_level_word_is_refused(template, message, line):
    [found] = misplaced_expressions(template)
    assert message in found.message
    assert found.line == line
    assert found.message.startswith(found.expression + " ")


@pytest.mark.parametrize("template", ACCEPTED)
def test_expression_as_a_word_of_a_command_is_accepted(template):
    assert misplaced_expressions(template) == []


@pytest.mark.parametrize("template", RAW_ANYWHERE)
def test_raw_expression_is_accepted_anywhere(template):
    assert misplaced_expressions(template) == []


def test_every_misplaced_expression_is_reported_with_its_line():
    template = (
        'echo "{{ inputs.x }}"\necho {{ inputs.x }}\necho \'{{ inputs.y }}\' "{{ inputs.z }}"'
    )
    found = misplaced_expressions(template)
    assert [(f.line, f.expression) for f in found] == [
        (1, "{{ inputs.x }}"),
        (3, "{{ inputs.y }}"),
        (3, "{{ inputs.z }}"),
    ]


def test_the_line_counts_statements_comments_and_multi_line_expressions():
    template = (
        '{# a\ncomment #}{% if true %}\n{%- set a = 1 -%}\n{{ inputs.x\n }} "{{ inputs.x }}"'
        "{% endif %}"
    )
    [found] = misplaced_expressions(template)
    assert found.line == 5
    assert found.expression == "{{ inputs.x }}"


def test_hints_say_what_to_write_instead():
    [quoted] = misplaced_expressions('echo "{{ inputs.message }}"')
    assert quoted.hint == (
        "remove the quotes around it: every value is already passed as one quoted word "
        '(write "text "{{ inputs.message }}" more" to join it to text)'
    )
    [nested] = misplaced_expressions("n=$(grep -c {{ inputs.message }} f)")
    assert "(message={{ inputs.message }})" in nested.hint and '"$message"' in nested.hint
    [heredoc] = misplaced_expressions("cat <<EOF\n{{ inputs.message }}\nEOF\n")
    assert "then write $message there" in heredoc.hint
    [listed] = misplaced_expressions("echo `ls {{ inputs.tags }}`", list_inputs=["tags"])
    assert "tags=({{ inputs.tags }})" in listed.hint and '"${tags[@]}"' in listed.hint
    [comment] = misplaced_expressions("# {{ inputs.x }}")
    assert "{# ... #}" in comment.hint


def test_template_jinja_cannot_read_gives_no_quoting_problem():
    assert misplaced_expressions('echo "{{ inputs.x') == []


# --- why: what the shell does with the rendered text --------------------------------------------


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ('echo "{{ inputs.x }}"', "$(touch pwned)"),
        ("echo '{{ inputs.x }}'", "$(touch pwned)"),
        ("echo $'{{ inputs.x }}'", "$(touch pwned)"),
        ("cat <<EOF\n{{ inputs.x }}\nEOF\n", "$(touch pwned)"),
        ("echo `echo {{ inputs.x }}`", "`;touch pwned;`"),
        ("echo $(( {{ inputs.x }} ))", "$(touch pwned)"),
        ('echo "${v:-{{ inputs.x }}}"', "$(touch pwned)"),
        ("# {{ inputs.x }}", "x\ntouch pwned\n"),
        ("echo \\{{ inputs.x }}", "a;touch pwned;#"),
    ],
)
def test_refused_places_would_run_the_value(tmp_path, template, value):
    assert misplaced_expressions(template)
    run_bash(render_command(template, context(value)), tmp_path)
    assert (tmp_path / "pwned").exists()


@pytest.mark.parametrize("template", ACCEPTED)
def test_accepted_templates_run_no_value(tmp_path, template):
    for value in HOSTILE:
        run_bash(render_command(template, context(value, ["a b", value])), tmp_path)
        assert list(tmp_path.iterdir()) == [], value


def test_escaped_quotes_print_the_value_between_quotes(tmp_path):
    command = render_command('printf %s \\"{{ inputs.x }}\\"', context('a "b" $(c)'))
    assert run_bash(command, tmp_path).stdout == '"a "b" $(c)"'


# --- at load time: the file's line, the message and the hint -------------------------------------


def app(steps: str, inputs: str = "{message: {type: string}, tags: {type: list}}") -> str:
    body = textwrap.indent(textwrap.dedent(steps), "      ")
    return (
        f"application: app\nenvironments: [local]\nexpose: [w]\nworkflows:\n"
        f"  w:\n    inputs: {inputs}\n    steps:\n{body}"
    )


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "app.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogFileError) as info:
        read_application(path)
    return info.value.problems


def at(tmp_path: Path, line: int) -> str:
    return f"{tmp_path / 'app.yaml'}:{line}: "


def test_slurm_script_with_a_value_in_double_quotes_is_refused_at_its_line(tmp_path):
    text = app(
        """\
        report:
          kind: slurm
          options: {ntasks: 1}
          script: |
            set -e

            echo "{{ inputs.message }}" > result.txt
        """
    )
    assert text.splitlines()[13].strip() == 'echo "{{ inputs.message }}" > result.txt'
    [problem] = problems_of(tmp_path, text)
    assert problem == (
        f"{at(tmp_path, 14)}workflow 'w': step 'report' script: {{{{ inputs.message }}}} is "
        "inside double quotes, where the shell would still expand $(...) and backticks in its "
        "value (hint: remove the quotes around it: every value is already passed as one quoted "
        'word (write "text "{{ inputs.message }}" more" to join it to text))'
    )


def test_each_misplaced_expression_of_a_file_is_reported(tmp_path):
    text = app(
        """\
        a: {kind: shell, run: "echo '{{ inputs.message }}'"}
        b:
          kind: shell
          run: |
            cat <<EOF
            {{ inputs.tags }}
            EOF
            echo {{ inputs.message }} "{{ inputs.message }}"
        """
    )
    problems = problems_of(tmp_path, text)
    assert len(problems) == 3
    assert problems[0].startswith(at(tmp_path, 8)) and "step 'a' run:" in problems[0]
    assert "inside single quotes" in problems[0]
    assert problems[1].startswith(at(tmp_path, 13)) and "here-document" in problems[1]
    assert "tags=({{ inputs.tags }})" in problems[1]
    assert problems[2].startswith(at(tmp_path, 15)) and "double quotes" in problems[2]


def test_folded_or_quoted_multi_line_text_reports_the_line_where_it_starts(tmp_path):
    text = app(
        """\
        a:
          kind: shell
          run: >
            echo
            "{{ inputs.message }}"
        """
    )
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(at(tmp_path, 11)) and "double quotes" in problem


def test_env_values_and_pycompss_arguments_are_not_shell_templates(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(
        app(
            """\
            a:
              kind: shell
              env: {A: "'{{ inputs.message }}'", B: "\\"{{ inputs.message }}\\""}
              run: echo "$A"
            b:
              kind: pycompss
              app: main.py
              arguments: ["--m={{ inputs.message }}", "\\"{{ inputs.message }}\\""]
            """
        ),
        encoding="utf-8",
    )
    steps = read_application(path).application.workflows["w"].steps
    assert steps["a"].env["B"] == '"{{ inputs.message }}"'
    assert steps["b"].kind == "pycompss"


def test_template_with_a_syntax_error_gets_only_that_problem(tmp_path):
    [problem] = problems_of(tmp_path, app("""a: {kind: shell, run: "echo '{{ inputs.message'"}"""))
    assert "syntax error" in problem


def test_shipped_demo_and_guide_examples_load_without_problem(tmp_path):
    assert Catalog.load([EXAMPLES], {"local": "Local host"}).problems == []
    guide = GUIDE.read_text(encoding="utf-8")
    for title in ("## The demo application, in full", "## A Slurm application, in full"):
        example = re.search(r"```yaml\n(.*?)```\n", guide.split(title, 1)[1], re.S)
        assert example is not None
        (tmp_path / "app.yaml").write_text(example.group(1), encoding="utf-8")
        read_application(tmp_path / "app.yaml")


def test_guide_variable_example_is_accepted_and_runs_no_value(tmp_path):
    section = GUIDE.read_text(encoding="utf-8").split("### Where a placeholder may stand", 1)[1]
    example = re.search(r"```yaml\nrun: \|\n(.*?)```\n", section, re.S)
    assert example is not None
    template = textwrap.dedent(example.group(1))
    assert misplaced_expressions(template) == []
    for value in HOSTILE:
        rendered = render_command(template, {"inputs": {"message": value}})
        run_bash(rendered, tmp_path)
        assert (tmp_path / "result.txt").read_text() == f"message: {value}\n"
        report = (tmp_path / "report.txt").read_text()
        assert report.startswith(value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt", "result.txt"]
