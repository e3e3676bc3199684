"""Checks of one step, for every kind: names, needs, templates, and the values of its options."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hpcwaas.catalog.model import (
    OUTPUT_NAME_PATTERN,
    PycompssStep,
    ShellStep,
    SlurmStep,
    StageInStep,
    StageOutStep,
    WorkflowSpec,
)
from hpcwaas.catalog.problem import NAME, NAME_HINT, TEMPLATE_HINT, Problem
from hpcwaas.catalog.render import check_template
from hpcwaas.catalog.shell_quoting import misplaced_expressions
from hpcwaas.catalog.yamlfile import Location
from hpcwaas.schedulers.pycompss import (
    check_compss_option,
    check_compss_word,
    check_module_name,
)
from hpcwaas.schedulers.slurm_options import (
    check_mem,
    check_sbatch_flag,
    check_slurm_name,
    check_time,
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SLURM_NAME_HINT = "write the name as Slurm knows it, e.g. partition: batch"
_WORD_HINT = (
    "enqueue_compss passes values through a shell unquoted, so only plain words are allowed; "
    "constrain inputs used here with a pattern"
)


def ancestors(name: str, steps: Mapping[str, Any]) -> list[str]:
    """The steps ``name`` needs, directly or through others (cycles and unknown names ignored)."""
    found: list[str] = []
    pending = list(steps[name].needs) if name in steps else []
    while pending:
        need = pending.pop()
        if need in found or need == name or need not in steps:
            continue
        found.append(need)
        pending.extend(steps[need].needs)
    return found


def check_step(
    loc: Location,
    name: str,
    step: Any,
    workflow: WorkflowSpec,
    *,
    siblings: Mapping[str, Any] | None = None,
    cleanup: bool = False,
) -> list[Problem]:
    """Every problem of one step of ``workflow``, in key order.

    ``siblings``: the steps ``needs`` may name (the workflow's steps by default);
    ``cleanup``: an ``on_failure`` step, which cannot read step outputs.
    """
    steps = workflow.steps if siblings is None else siblings
    problems: list[Problem] = []
    if not NAME.fullmatch(name):
        problems.append(Problem(loc, f"step name {name!r} is not valid", NAME_HINT))
    for index, output in enumerate(step.outputs):
        if not re.fullmatch(OUTPUT_NAME_PATTERN, output):
            problems.append(
                Problem(
                    (*loc, "outputs", index),
                    f"step {name!r}: output name {output!r} is not valid",
                    "use letters, digits and '_', not starting with a digit, e.g. result_dir",
                )
            )
    if len(set(step.outputs)) != len(step.outputs):
        problems.append(
            Problem((*loc, "outputs"), f"step {name!r} declares an output twice", "remove it")
        )
    upstream: dict[str, list[str]] | None = None
    if not cleanup:
        upstream = {a: list(steps[a].outputs) for a in ancestors(name, steps)}
    context = _TemplateContext(
        workflow=workflow,
        upstream=upstream,
        declared={n: list(s.outputs) for n, s in steps.items()},
    )
    for index, need in enumerate(step.needs):
        if need not in steps:
            others = ", ".join(s for s in steps if s != name) or "none"
            problems.append(
                Problem(
                    (*loc, "needs", index),
                    f"step {name!r} needs unknown step {need!r}",
                    f"needs lists steps of the same workflow (others: {others})",
                )
            )
    if isinstance(step, ShellStep):
        problems += _templates(loc, name, context, [(("run",), step.run)], in_shell=True)
    elif isinstance(step, SlurmStep):
        problems += _templates(loc, name, context, [(("script",), step.script)], in_shell=True)
        problems += _slurm_options(loc, name, step)
    elif isinstance(step, StageInStep | StageOutStep):
        # The service renders these itself, before any step output reaches it.
        transfer = replace(context, upstream=None)
        if isinstance(step, StageInStep):
            paths = [(("url",), step.url), (("target_path",), step.target_path)]
            problems += _templates(loc, name, transfer, paths[:1], key_store_secrets=True)
            problems += _templates(loc, name, transfer, paths[1:])
            problems += _stage_in_url(loc, name, step)
        else:
            paths = [(("source_path",), step.source_path)]
            problems += _templates(loc, name, transfer, paths)
            problems += _stage_out_name(loc, name, step, workflow)
    elif isinstance(step, PycompssStep):
        templates: list[tuple[Location, str]] = [(("app",), step.app)]
        templates += [(("arguments", i), a) for i, a in enumerate(step.arguments)]
        problems += _templates(loc, name, context, templates)
        problems += _templates(loc, name, context, _option_templates(step))
        problems += _pycompss_options(loc, name, step, templates)
    for var, template in step.env.items():
        if not _ENV_NAME.fullmatch(var):
            problems.append(
                Problem(
                    (*loc, "env", var),
                    f"step {name!r}: {var!r} is not a valid environment variable name",
                    "use letters, digits and '_', not starting with a digit",
                )
            )
        problems += _templates(
            loc,
            name,
            context,
            [(("env", var), template)],
            label=f"env {var}",
            # enqueue_compss takes the environment on its command line: no secrets there
            in_env=not isinstance(step, PycompssStep),
        )
    return problems


@dataclass(frozen=True)
class _TemplateContext:
    """What the templates of one step may use."""

    workflow: WorkflowSpec
    upstream: dict[str, list[str]] | None  # outputs of the step's ancestors
    declared: dict[str, list[str]]  # outputs of every step, for hints


def _templates(
    loc: Location,
    name: str,
    context: _TemplateContext,
    templates: Sequence[tuple[Location, str]],
    label: str | None = None,
    in_shell: bool = False,
    in_env: bool = False,
    key_store_secrets: bool = False,
) -> list[Problem]:
    """Problems of templates; those read by a shell (``in_shell``) must place values right.

    ``in_env``: secret inputs and ``secrets.<name>`` may be used; ``key_store_secrets``:
    ``secrets.<name>`` only (a stage_in url, rendered by the service itself).
    """
    problems: list[Problem] = []
    workflow = context.workflow
    lists = [input_name for input_name, spec in workflow.inputs.items() if spec.type == "list"]
    secrets = () if in_env else [n for n, spec in workflow.inputs.items() if spec.type == "secret"]
    for key, template in templates:
        what = label or " ".join(str(part) for part in key)
        messages = check_template(
            template,
            workflow.inputs,
            secrets=secrets,
            key_store_secrets=list(workflow.secrets) if in_env or key_store_secrets else None,
            upstream=context.upstream,
            declared_outputs=context.declared,
        )
        for message in messages:
            problems.append(
                Problem((*loc, *key), f"step {name!r} {what}: {message}", _hint(message))
            )
        if in_shell and not messages:
            for misplaced in misplaced_expressions(template, lists):
                problems.append(
                    Problem(
                        (*loc, *key),
                        f"step {name!r} {what}: {misplaced.message}",
                        misplaced.hint,
                        misplaced.line,
                    )
                )
    return problems


def _hint(message: str) -> str:
    """The fix for one template problem."""
    if "steps." in message:
        return (
            "steps.<step>.outputs.<name> reads a value written by a step this one needs, "
            "which lists <name> in its outputs"
        )
    if "secret input" in message or "secrets may only" in message:
        return "pass secrets through env:, then use the variable in double quotes"
    if "undefined secret" in message:
        return "declare it under the workflow's secrets: {<name>: {path: ..., key: ...}}"
    return TEMPLATE_HINT


def _stage_in_url(loc: Location, name: str, step: StageInStep) -> list[Problem]:
    """A URL known at load time (literal, or with a literal scheme) must be http(s)."""
    head = step.url.split("{", 1)[0].strip()
    scheme, sep, _ = head.partition("://")
    literal = "{" not in step.url
    if (sep and scheme.lower() in ("http", "https")) or (not sep and not literal):
        return []
    return [
        Problem(
            (*loc, "url"),
            f"step {name!r} url: only http:// and https:// URLs can be staged in, "
            f"got {step.url[:80]!r}",
            "e.g. url: https://example.org/data.csv, or url: '{{ inputs.data_url }}'",
        )
    ]


def _stage_out_name(
    loc: Location, name: str, step: StageOutStep, workflow: WorkflowSpec
) -> list[Problem]:
    """Two stage_out steps of one workflow may not store the same output name."""
    output = step.output or name
    for other, spec in workflow.steps.items():
        if other == name:
            break
        if isinstance(spec, StageOutStep) and (spec.output or other) == output:
            return [
                Problem(
                    (*loc, "output"),
                    f"step {name!r} stores output {output!r}, as step {other!r} does",
                    "give one of them another output name (output: <name>)",
                )
            ]
    return []


def _slurm_options(loc: Location, name: str, step: SlurmStep) -> list[Problem]:
    options = step.options
    where = (*loc, "options")
    found: list[tuple[Location, str | None, str]] = []
    for key in ("partition", "qos", "account"):
        value = getattr(options, key)
        if value is not None:
            found.append(((*where, key), check_slurm_name(value), _SLURM_NAME_HINT))
    if options.mem is not None:
        found.append(((*where, "mem"), check_mem(str(options.mem)), "e.g. mem: 4G"))
    if options.time is not None:
        time_hint = "e.g. time: 01:30:00, or time: 90 (minutes)"
        found.append(((*where, "time"), check_time(str(options.time)), time_hint))
    for index, flag in enumerate(options.extra):
        flag_hint = "e.g. extra: [--exclusive, --gres=gpu:2]"
        found.append(((*where, "extra", index), check_sbatch_flag(flag), flag_hint))
    return [
        Problem(key_loc, f"step {name!r} options.{_dotted(key_loc, where)}: {message}", hint)
        for key_loc, message, hint in found
        if message is not None
    ]


def _pycompss_options(
    loc: Location, name: str, step: PycompssStep, templates: Sequence[tuple[Location, str]]
) -> list[Problem]:
    found: list[tuple[Location, str | None, str]] = []
    for key, template in templates:
        if "{" not in template:  # a literal: its value is known now
            found.append((key, check_compss_word(template), _WORD_HINT))
    if step.qos is not None and not _is_template(step.qos):
        found.append((("qos",), check_slurm_name(step.qos), _SLURM_NAME_HINT))
    if isinstance(step.num_nodes, str) and not _is_template(step.num_nodes):
        found.append((("num_nodes",), "must be a number or a template", "e.g. num_nodes: 2"))
    found.append(
        (("python_interpreter",), check_compss_word(step.python_interpreter), "e.g. python3")
    )
    for field in ("container_image", "container_compss_path", "container_opts"):
        value = getattr(step, field)
        if value is not None:
            found.append(((field,), check_compss_word(value), _WORD_HINT))
    for index, option in enumerate(step.extra_options):
        if _is_template(option):  # checked once rendered, at submission
            continue
        option_hint = "e.g. extra_options: [--tracing=true, --log_level=debug]"
        found.append((("extra_options", index), check_compss_option(option), option_hint))
    for index, module in enumerate(step.modules):
        found.append((("modules", index), check_module_name(module), "e.g. modules: [COMPSs/3.3]"))
    return [
        Problem((*loc, *key), f"step {name!r} {_dotted(key, ())}: {message}", hint)
        for key, message, hint in found
        if message is not None
    ]


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _option_templates(step: PycompssStep) -> list[tuple[Location, str]]:
    """The enqueue_compss options given as templates (rendered at submission)."""
    found: list[tuple[Location, str]] = []
    if isinstance(step.num_nodes, str):
        found.append((("num_nodes",), step.num_nodes))
    if step.qos is not None and _is_template(step.qos):
        found.append((("qos",), step.qos))
    found += [
        (("extra_options", i), option)
        for i, option in enumerate(step.extra_options)
        if _is_template(option)
    ]
    return found


def _dotted(key: Location, prefix: Location) -> str:
    parts = key[len(prefix) :]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
