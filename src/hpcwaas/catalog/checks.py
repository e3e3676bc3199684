"""Checks of a workflow file that span several keys, each problem with its place and a fix."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from hpcwaas.catalog.dag import cycles
from hpcwaas.catalog.model import (
    KEY_STORE_PATH_PATTERN,
    RESERVED_KEY_STORE_PREFIXES,
    ApplicationSpec,
    InputSpec,
    KeyStoreSecretSpec,
    WorkflowSpec,
)
from hpcwaas.catalog.problem import NAME as _NAME
from hpcwaas.catalog.problem import NAME_HINT as _NAME_HINT
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.spec import OUTPUT_NAME_PATTERN
from hpcwaas.catalog.step_checks import check_step
from hpcwaas.catalog.values import ValueProblem, check_value, describe
from hpcwaas.catalog.yamlfile import Location

__all__ = ["MAX_STEPS", "Problem", "check_application"]

MAX_STEPS = 500
# Which constraints make sense for which input type.
_APPLIES = {
    "values": {"enum"},
    "minimum": {"integer", "number", "list"},
    "maximum": {"integer", "number", "list"},
    "pattern": {"string", "list", "path", "secret"},
    "min_length": {"string", "list", "path", "secret"},
    "max_length": {"string", "list", "path", "secret"},
    "items": {"list"},
}


def check_application(app: ApplicationSpec) -> list[Problem]:
    """Every cross-key problem of an application, in file order."""
    problems: list[Problem] = []
    if not _NAME.fullmatch(app.application):
        problems.append(
            Problem(
                ("application",), f"application id {app.application!r} is not valid", _NAME_HINT
            )
        )
    if not app.environments:
        problems.append(
            Problem(("environments",), "no environment listed", "list where it runs, e.g. [local]")
        )
    for index, environment in enumerate(app.environments):
        if not _NAME.fullmatch(environment):
            problems.append(
                Problem(
                    ("environments", index),
                    f"environment id {environment!r} is not valid",
                    _NAME_HINT,
                )
            )
    for index, name in enumerate(app.expose):
        if name not in app.workflows:
            defined = ", ".join(app.workflows) or "none"
            problems.append(
                Problem(
                    ("expose", index),
                    f"exposed workflow {name!r} is not defined",
                    f"expose names of the workflows section (defined: {defined})",
                )
            )
    deployment: dict[str, list[str]] | None = None
    if app.deployment is not None:
        problems.extend(_check_deployment(app.deployment))
        deployment = {n: list(s.outputs) for n, s in app.deployment.steps.items()}
    for name, workflow in app.workflows.items():
        problems.extend(_check_workflow(("workflows", name), name, workflow, deployment))
    return problems


def _check_deployment(spec: WorkflowSpec) -> list[Problem]:
    """The deployment is a workflow nobody triggers: no inputs, no output files."""
    problems = _check_workflow(("deployment",), "deployment", spec, None)
    for key, what in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        if what:
            problems.append(
                Problem(
                    ("deployment", key),
                    f"the deployment has {key}, but nobody triggers or downloads it",
                    "remove them; give values in its steps and pass results on as step "
                    "outputs (read as deployment.outputs.<step>.<name>)",
                )
            )
    return problems


def _check_workflow(
    loc: Location,
    name: str,
    workflow: WorkflowSpec,
    deployment: dict[str, list[str]] | None,
) -> list[Problem]:
    problems: list[Problem] = []
    if not _NAME.fullmatch(name):
        problems.append(Problem(loc, f"workflow name {name!r} is not valid", _NAME_HINT))
    for input_name, spec in workflow.inputs.items():
        problems.extend(_check_input((*loc, "inputs", input_name), input_name, spec))
    for secret_name, secret in workflow.secrets.items():
        problems.extend(_check_secret((*loc, "secrets", secret_name), secret_name, secret))
    if not workflow.steps:
        problems.append(Problem((*loc, "steps"), "the workflow has no step", "add a step"))
    if len(workflow.steps) > MAX_STEPS:
        problems.append(
            Problem((*loc, "steps"), f"more than {MAX_STEPS} steps", "split the workflow")
        )
        return problems
    for step_name, step in workflow.steps.items():
        problems.extend(
            check_step((*loc, "steps", step_name), step_name, step, workflow, deployment=deployment)
        )
    needs = {step_name: step.needs for step_name, step in workflow.steps.items()}
    for cycle in cycles(needs):
        if len(cycle) == 1:
            message = f"step {cycle[0]!r} needs itself"
        else:
            shown = " -> ".join([*cycle, cycle[0]])
            message = f"steps {', '.join(cycle)} need each other in a cycle ({shown})"
        problems.append(
            Problem(
                (*loc, "steps", cycle[0], "needs"),
                message,
                "remove one of these needs so that the steps can run in some order",
            )
        )
    for step_name, step in workflow.on_failure.items():
        step_loc = (*loc, "on_failure", step_name)
        if step_name in workflow.steps:
            problems.append(
                Problem(
                    step_loc,
                    f"on_failure step {step_name!r} has the name of a step of the workflow",
                    "give cleanup steps names of their own, e.g. cleanup",
                )
            )
        problems.extend(
            check_step(
                step_loc,
                step_name,
                step,
                workflow,
                siblings=workflow.on_failure,
                cleanup=True,
                deployment=deployment,
            )
        )
    cleanup_needs = {step_name: step.needs for step_name, step in workflow.on_failure.items()}
    for cycle in cycles(cleanup_needs):
        problems.append(
            Problem(
                (*loc, "on_failure", cycle[0], "needs"),
                f"on_failure steps {', '.join(cycle)} need each other in a cycle",
                "remove one of these needs so that the steps can run in some order",
            )
        )
    for output_name, output in workflow.outputs.items():
        out_loc = (*loc, "outputs", output_name)
        if not _NAME.fullmatch(output_name):
            problems.append(
                Problem(out_loc, f"output name {output_name!r} is not valid", _NAME_HINT)
            )
        if output.step not in workflow.steps:
            problems.append(
                Problem(
                    (*out_loc, "step"),
                    f"output {output_name!r} names unknown step {output.step!r}",
                    f"use one of the workflow's steps: {', '.join(workflow.steps)}",
                )
            )
        path = PurePosixPath(output.path)
        if not output.path or path.is_absolute() or ".." in path.parts or "\\" in output.path:
            problems.append(
                Problem(
                    (*out_loc, "path"),
                    f"output path {output.path!r} must stay inside the execution's directory",
                    "give a relative path without '..', e.g. out/report.txt",
                )
            )
    return problems


def _check_input(loc: Location, name: str, spec: InputSpec) -> list[Problem]:
    problems: list[Problem] = []
    if not _NAME.fullmatch(name):
        problems.append(Problem(loc, f"input name {name!r} is not valid", _NAME_HINT))
    for key, types in _APPLIES.items():
        if key in spec.model_fields_set and spec.type not in types:
            problems.append(
                Problem(
                    (*loc, key),
                    f"input {name!r}: {key} does not apply to type {spec.type}",
                    f"{key} applies to {', '.join(sorted(types))} inputs; remove it",
                )
            )
    if spec.type == "enum":
        problems.extend(_check_enum_values(loc, name, spec))
    if spec.pattern is not None:
        try:
            re.compile(spec.pattern)
        except re.error as exc:
            problems.append(
                Problem((*loc, "pattern"), f"input {name!r}: invalid pattern: {exc}", _RE_HINT)
            )
            return problems
    for low, high in (("minimum", "maximum"), ("min_length", "max_length")):
        low_value, high_value = getattr(spec, low), getattr(spec, high)
        if low_value is not None and high_value is not None and low_value > high_value:
            problems.append(
                Problem((*loc, low), f"input {name!r}: {low} is above {high}", "swap them")
            )
    if spec.type == "secret" and spec.has_default:
        problems.append(
            Problem(
                (*loc, "default"),
                f"secret input {name!r} has a default, which would be kept in clear in the file",
                "remove the default: a secret is given at each trigger",
            )
        )
        return problems
    if spec.has_default and spec.required and "required" in spec.model_fields_set:
        problems.append(
            Problem(
                (*loc, "required"),
                f"input {name!r} is required and has a default, which would never be used",
                "remove `required: true` (an input with a default is optional) or the default",
            )
        )
    if spec.has_default and spec.default is not None and not problems:
        try:
            check_value(spec, spec.default, strict=True)
        except ValueProblem as exc:
            problems.append(
                Problem(
                    (*loc, "default"),
                    f"input {name!r}: the default does not fit: {exc}",
                    f"give a default of type {spec.type} that meets the input's constraints",
                )
            )
    return problems


def _check_secret(loc: Location, name: str, spec: KeyStoreSecretSpec) -> list[Problem]:
    """A key store secret: a template name, and a path the workflow may read."""
    problems: list[Problem] = []
    if not re.fullmatch(OUTPUT_NAME_PATTERN, name):
        problems.append(
            Problem(
                loc,
                f"secret name {name!r} is not valid",
                "use letters, digits and '_', not starting with a digit, e.g. db_password",
            )
        )
    path_problem = key_store_path_problem(spec.path)
    if path_problem is not None:
        problems.append(
            Problem(
                (*loc, "path"),
                f"secret {name!r}: {path_problem}",
                "store the value under another path, e.g. apps/<application>/<name>",
            )
        )
    return problems


def key_store_path_problem(path: str) -> str | None:
    """Why a workflow may not read the key store at ``path`` (None if it may)."""
    if not re.fullmatch(KEY_STORE_PATH_PATTERN, path):
        return (
            f"path {path!r} is not valid: write segments of letters, digits, '_', '.' and '-' "
            "separated by '/', from the key store's root"
        )
    if any(part in (".", "..") for part in path.split("/")):
        return f"path {path!r} has a '.' or '..' segment"
    if path.startswith(RESERVED_KEY_STORE_PREFIXES):
        return (
            f"path {path!r} is kept by the service for itself "
            "(users' SSH keys, executions' secret inputs)"
        )
    return None


_RE_HINT = "write a Python regular expression; the whole value must match it"


def _check_enum_values(loc: Location, name: str, spec: InputSpec) -> list[Problem]:
    if not spec.values:
        return [
            Problem(
                (*loc, "values"),
                f"enum input {name!r} has no values",
                "list the allowed values, e.g. values: [fast, accurate]",
            )
        ]
    problems: list[Problem] = []
    for index, value in enumerate(spec.values):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append(
                Problem(
                    (*loc, "values", index),
                    f"enum input {name!r}: value {describe(value)} is not a string or a number",
                    "quote it: YAML reads yes/no/on/off as booleans and ~ as null, e.g. 'yes'",
                )
            )
    return problems
