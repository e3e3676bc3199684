"""Rendering of step templates in a Jinja2 sandbox, every value shell-quoted unless marked raw.

In a command (``render_command``) each ``{{ expression }}`` becomes one shell word per value:
strings through ``shlex.quote``, lists as their quoted elements joined by spaces, booleans as
``true``/``false``, numbers as written, null as ``''``. ``{{ x | raw }}`` inserts the text as is,
for the rare template that builds shell syntax from a value the workflow developer controls.
Environment values (``render_env``) are never quoted: they do not pass through a shell.
The quoting holds only where an expression stands as a word of a command: ``shell_quoting``
checks that at load time.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.spec import RESERVED_INPUTS

# What a template may read under ``execution``; the engine provides them.
EXECUTION_FIELDS: frozenset[str] = frozenset({"id"})
CONTEXT_NAMES: frozenset[str] = frozenset({"inputs", "execution", "steps", "deployment"})


class Raw(str):
    """Text a template marked with ``| raw``: inserted without shell quoting."""

    __slots__ = ()


def _raw(value: Any) -> Raw:
    return Raw(_text(value))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return " ".join(_text(item) for item in value)
    return str(value)


def _shell_word(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, list | tuple):
        return " ".join(_shell_word(item) for item in value)
    return shlex.quote(_text(value))


def _make_environment(finalize: Any) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["raw"] = _raw
    return env


_COMMAND_ENV = _make_environment(_shell_word)
_PLAIN_ENV = _make_environment(_text)


@functools.lru_cache(maxsize=512)
def _compile(shell: bool, template: str) -> Template:
    return (_COMMAND_ENV if shell else _PLAIN_ENV).from_string(template)


def _render(shell: bool, template: str, context: dict[str, Any]) -> str:
    try:
        return _compile(shell, template).render(context)
    except UndefinedError as exc:
        raise RenderError(f"the template uses an undefined value: {exc.message}") from None
    except SecurityError as exc:
        raise RenderError(f"the template did something the sandbox forbids: {exc}") from None
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except TemplateError as exc:
        raise RenderError(f"the template cannot be rendered: {exc}") from None


def render_command(template: str, context: dict[str, Any]) -> str:
    """Render a step's command; every value is quoted as shell words unless marked ``| raw``."""
    return _render(True, template, context)


def render_text(template: str, context: dict[str, Any]) -> str:
    """Render a template as plain text (no shell quoting): paths, URLs, values checked after."""
    return _render(False, template, context)


def render_env(env: dict[str, str], context: dict[str, Any]) -> dict[str, str]:
    """Render a step's environment values as plain text (no shell quoting)."""
    rendered: dict[str, str] = {}
    for name, template in env.items():
        try:
            rendered[name] = _render(False, template, context)
        except RenderError as exc:
            raise RenderError(f"env {name}: {exc}") from None
    return rendered


def uses_step_outputs(template: str) -> bool:
    """Whether ``template`` reads ``steps.*`` (values earlier steps wrote); True if unparsable."""
    try:
        tree = _PLAIN_ENV.parse(template)
    except TemplateSyntaxError:
        return True
    return "steps" in meta.find_undeclared_variables(tree)


def check_template(
    template: str,
    input_names: Iterable[str],
    *,
    reserved: frozenset[str] = RESERVED_INPUTS,
    secrets: Collection[str] = (),
    workflow_secrets: Collection[str] | None = None,
    upstream: Mapping[str, Collection[str]] | None = None,
    declared_outputs: Mapping[str, Collection[str]] | None = None,
    deployment: Mapping[str, Collection[str]] | None = None,
) -> list[str]:
    """Problems of a template at load time: syntax, unknown filters, undefined inputs.

    ``secrets``: secret inputs, which this template may not use (only ``env:`` values may).
    ``workflow_secrets``: the workflow's ``secrets:`` names where this template may use
    ``secrets.<name>``; None where it may not.
    ``upstream``: the outputs each ancestor step declares (what ``steps.s.outputs.y`` may
    name); None where no step output may be used. ``declared_outputs``: every step's, for hints.
    ``deployment``: the outputs each step of the application's deployment declares (what
    ``deployment.outputs.s.y`` may name); None where there is no deployment to read.
    """
    declared_names = set(input_names)
    known = declared_names | reserved
    try:
        tree = _COMMAND_ENV.parse(template)
        _COMMAND_ENV.compile(tree)  # reports unknown filters and tests
    except TemplateSyntaxError as exc:
        return [f"template syntax error on line {exc.lineno}: {exc.message}"]
    problems: list[str] = []
    undeclared = meta.find_undeclared_variables(tree) - CONTEXT_NAMES
    if "secrets" in undeclared:
        undeclared.discard("secrets")
        if workflow_secrets is None:
            used = [attr for base, attr in _attributes(tree) if base == "secrets"]
            name = used[0] if used else "<name>"
            problems.append(
                f"the template uses secrets.{name}, but secrets may only reach a step through "
                f'env: (e.g. env: {{TOKEN: "{{{{ secrets.{name} }}}}"}}, then $TOKEN) or a '
                "stage_in url"
            )
    for name in sorted(undeclared):
        problems.append(
            f"the template uses {name!r}, which is not defined "
            "(values come from inputs.<name>, execution.id and steps.<step>.outputs.<name>)"
        )
    problems += _step_output_problems(tree, upstream, declared_outputs or {})
    problems += _deployment_output_problems(tree, deployment)
    for base, attr in _attributes(tree):
        if base == "inputs" and attr in secrets:
            problems.append(
                f"the template uses secret input {attr!r}, which may only reach a step "
                f'through env: (e.g. env: {{TOKEN: "{{{{ inputs.{attr} }}}}"}}, then $TOKEN)'
            )
        elif base == "secrets" and workflow_secrets is not None:
            if attr not in workflow_secrets:
                declared = ", ".join(sorted(workflow_secrets)) or "none"
                problems.append(
                    f"the template uses undefined secret {attr!r} (declared: {declared})"
                )
        elif base == "inputs" and attr not in known:
            declared = ", ".join(sorted(declared_names)) or "none"
            problems.append(f"the template uses undefined input {attr!r} (declared: {declared})")
        elif base == "execution" and attr not in EXECUTION_FIELDS:
            fields = ", ".join(sorted(EXECUTION_FIELDS))
            problems.append(f"the template uses execution.{attr}, unknown (available: {fields})")
    return problems


def template_tokens(template: str) -> Iterator[tuple[int, str, str]]:
    """The template's tokens as Jinja reads them: (line, type, source text), comments included.

    Text outside ``{{ }}``, ``{% %}`` and ``{# #}`` comes as ``data`` tokens (whitespace control
    applied); the text of an expression comes between ``variable_begin`` and ``variable_end``.
    Raises ``TemplateSyntaxError`` for a template Jinja cannot parse.
    """
    _COMMAND_ENV.parse(template)
    return _COMMAND_ENV.lex(template)


def is_raw(expression: str) -> bool:
    """Whether the source of one ``{{ }}`` expression renders unquoted: its last step is ``raw``.

    ``x | raw`` is raw; ``x | raw ~ "y"`` and ``x | raw | upper`` are not (they are quoted again).
    """
    try:
        tree = _COMMAND_ENV.parse("{{ " + expression + " }}")
    except TemplateSyntaxError:
        return False
    output = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(output, nodes.Output) or len(output.nodes) != 1:
        return False
    node = output.nodes[0]
    return isinstance(node, nodes.Filter) and node.name == "raw"


def _attributes(tree: nodes.Template) -> list[tuple[str, str]]:
    """``inputs.x`` and ``inputs["x"]`` uses, in template order, each once."""
    found: list[tuple[str, str]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not isinstance(base, nodes.Name) or base.name not in (*CONTEXT_NAMES, "secrets"):
            continue
        if isinstance(node, nodes.Getattr):
            attr: Any = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attr = node.arg.value
        else:
            continue  # inputs[expression]: only known at render time
        pair = (base.name, str(attr))
        if pair not in found:
            found.append(pair)
    return found


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    """``steps.a.outputs.b`` (or with ``["a"]``) as its names, base first; None if not a chain."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            parts.append(str(node.arg.value))
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return tuple(reversed(parts))
        else:
            return None


def _deployment_output_problems(
    tree: nodes.Template, deployment: Mapping[str, Collection[str]] | None
) -> list[str]:
    """Uses of ``deployment.outputs.s.y`` that name no output of a deployment step."""
    chains = {
        chain
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name))
        if (chain := _chain(node)) is not None and chain[0] == "deployment"
    }
    longest = [c for c in chains if not any(o != c and o[: len(c)] == c for o in chains)]
    problems: list[str] = []
    for chain in sorted(longest):
        shown = ".".join(chain)
        if deployment is None:
            problems.append(
                f"the template uses {shown}, but deployment outputs cannot be used here "
                "(they reach the commands, scripts and env of the steps of an application that "
                "has a deployment)"
            )
        elif len(chain) != 4 or chain[1] != "outputs":
            problems.append(
                f"the template uses {shown}; a deployment output is written "
                "deployment.outputs.<step>.<name>"
            )
        elif chain[2] not in deployment:
            have = ", ".join(deployment) or "none"
            problems.append(
                f"the template uses {shown}, but the deployment has no step {chain[2]!r} "
                f"(its steps: {have})"
            )
        elif chain[3] not in deployment[chain[2]]:
            have = ", ".join(deployment[chain[2]]) or "none"
            problems.append(
                f"the template uses {shown}, but deployment step {chain[2]!r} does not declare "
                f"output {chain[3]!r} (declared: {have}); add it to that step's outputs"
            )
    return problems


def _step_output_problems(
    tree: nodes.Template,
    upstream: Mapping[str, Collection[str]] | None,
    declared: Mapping[str, Collection[str]],
) -> list[str]:
    """Uses of ``steps.s.outputs.y`` that name no output of an ancestor step."""
    chains = {
        chain
        for node in tree.find_all((nodes.Getattr, nodes.Getitem))
        if (chain := _chain(node)) is not None and chain[0] == "steps"
    }
    longest = [c for c in chains if not any(o != c and o[: len(c)] == c for o in chains)]
    problems: list[str] = []
    for chain in sorted(longest):
        shown = ".".join(chain)
        if len(chain) != 4 or chain[2] != "outputs":
            problems.append(
                f"the template uses {shown}; a step output is written steps.<step>.outputs.<name>"
            )
            continue
        step, name = chain[1], chain[3]
        if upstream is None:
            problems.append(f"the template uses {shown}, but step outputs cannot be used here")
        elif step not in upstream:
            problems.append(
                f"the template uses {shown}, but step {step!r} is not among the steps this one "
                f"needs (directly or through others); add it to needs: [{step}]"
                if step in declared
                else f"the template uses {shown}, but there is no step {step!r}"
            )
        elif name not in upstream[step]:
            have = ", ".join(upstream[step]) or "none"
            problems.append(
                f"the template uses {shown}, but step {step!r} does not declare output "
                f"{name!r} (declared: {have}); add it to that step's outputs: [{name}]"
            )
    return problems
