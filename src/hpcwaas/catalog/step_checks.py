"""Checks of one step: names, needs, outputs and env for every kind, then its kind's own."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hpcwaas.catalog.kinds import kind_of
from hpcwaas.catalog.kinds.base import StepChecks, StepSettings
from hpcwaas.catalog.model import WorkflowSpec
from hpcwaas.catalog.problem import NAME, NAME_HINT, Problem
from hpcwaas.catalog.spec import OUTPUT_NAME_PATTERN
from hpcwaas.catalog.yamlfile import Location

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    step: StepSettings,
    workflow: WorkflowSpec,
    *,
    siblings: Mapping[str, Any] | None = None,
    cleanup: bool = False,
    deployment: dict[str, list[str]] | None = None,
) -> list[Problem]:
    """Every problem of one step of ``workflow``, in key order.

    ``siblings``: the steps ``needs`` may name (the workflow's steps by default);
    ``cleanup``: an ``on_failure`` step, which cannot read step outputs;
    ``deployment``: the outputs of the application's deployment steps, if it has one.
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
    kind = kind_of(step)
    checks = StepChecks(
        loc=loc,
        name=name,
        workflow=workflow,
        upstream=upstream,
        declared={n: list(s.outputs) for n, s in steps.items()},
        deployment=deployment,
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
    problems += kind.check(step, checks)
    for var, template in step.env.items():
        if not _ENV_NAME.fullmatch(var):
            problems.append(
                Problem(
                    (*loc, "env", var),
                    f"step {name!r}: {var!r} is not a valid environment variable name",
                    "use letters, digits and '_', not starting with a digit",
                )
            )
        problems += checks.templates(
            [(("env", var), template)], label=f"env {var}", in_env=kind.secrets_in_env
        )
    return problems
