"""Whether an application can run on one environment, and the steps it runs there.

Each step runs on its ``environment:``, else on the environment it is deployed on (the
workflow ID's: its home). Two traits of the step's environment decide whether it can:

- its kind: steps that need a cluster (batch jobs, DAG runs...) cannot run on ``local``;
- its remote services (``airflow:``...): a step whose kind needs a service the environment
  lacks runs the step its kind offers instead (a ``dag_run``'s ``without_airflow``), or the
  application is not deployed there.

The choice is made once per environment when the catalog loads, and logged: the same file may
run a DLS pipeline on one cluster and the service's own transfer on another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcwaas.catalog.kinds import kind_of
from hpcwaas.catalog.loader import FileProblem, LoadedFile
from hpcwaas.catalog.model import WorkflowSpec

if TYPE_CHECKING:
    from hpcwaas.catalog.kinds.base import StepSettings
    from hpcwaas.catalog.yamlfile import Location

LOCAL_KIND = "local"


@dataclass(frozen=True)
class Traits:
    """What of a configured environment decides which steps may run on it."""

    kind: str  # ``local``, ``slurm``
    services: frozenset[str] = frozenset()  # its remote services (``airflow``...)


@dataclass
class Fitted:
    """An application's workflows as they run on one environment, or why they cannot."""

    workflows: dict[str, WorkflowSpec] = field(default_factory=dict)  # the exposed ones
    deployment: WorkflowSpec | None = None
    problems: list[FileProblem] = field(default_factory=list)  # not empty: not deployed
    choices: list[str] = field(default_factory=list)  # which step runs where, for the log


def fit(loaded: LoadedFile, home: str, configured: Mapping[str, Traits] | None) -> Fitted:
    """``loaded``'s application deployed on ``home``, each step fitted to its environment.

    A step runs on its ``environment:``, else on ``home``. ``configured``: the server's
    environments; None when unknown (files checked without a configuration), where every
    step may run as written.
    """
    app = loaded.application
    fitted = Fitted()
    replaced: dict[Location, StepSettings] = {}
    for loc, owner, step in _step_places(loaded):
        environment = step.environment or home
        where = f"{owner}: step {loc[-1]!r} of kind {step.kind}"
        pinned = environment != home
        not_deployed = f"is not deployed on {home!r}" if pinned else "is not deployed there"
        traits = configured.get(environment) if configured is not None else None
        if configured is not None and traits is None:
            fitted.problems.append(
                FileProblem(
                    loaded.path,
                    loaded.line((*loc, "environment")),
                    f"{where} names environment {environment!r}, which is not configured; "
                    f"application {app.application!r} {not_deployed}",
                    f"name a configured environment (configured: {', '.join(configured) or 'none'})"
                    ", or configure it",
                )
            )
            continue
        problem, instead, choice = _fit_step(step, environment, traits, pinned=pinned)
        if problem is not None:
            text, hint = problem
            fitted.problems.append(
                FileProblem(
                    loaded.path,
                    loaded.line((*loc, "kind")),
                    f"{where} {text}; application {app.application!r} {not_deployed}",
                    hint,
                )
            )
            continue
        if instead is not None:
            replaced[loc] = instead
        if choice is not None:
            fitted.choices.append(f"{where} {choice}")
    if fitted.problems:
        return fitted
    fitted.workflows = {
        name: _with_steps(app.workflows[name], ("workflows", name), replaced)
        for name in dict.fromkeys(app.expose)
    }
    if app.deployment is not None:
        fitted.deployment = _with_steps(app.deployment, ("deployment",), replaced)
    return fitted


def _fit_step(
    step: StepSettings, environment: str, traits: Traits | None, *, pinned: bool
) -> tuple[tuple[str, str] | None, StepSettings | None, str | None]:
    """Whether ``step`` runs on ``environment`` (``pinned``: its own, not the home):
    (problem and hint, step instead, choice)."""
    step_kind = kind_of(step)
    if traits is not None and traits.kind == LOCAL_KIND and step_kind.needs_cluster:
        moved = (
            "give the step environment: <a Slurm environment>"
            if pinned
            else f"deploy it on Slurm environments only (remove {environment!r} from environments)"
        )
        return (
            (
                f"cannot run on local environment {environment!r}",
                f"{moved}, or make the step kind: shell",
            ),
            None,
            None,
        )
    service = step_kind.service
    if traits is None or service is None:
        return None, None, None
    instead = step_kind.without_service(step)
    if service in traits.services:
        if instead is None:
            return None, None, None
        return None, None, f"runs as written on environment {environment!r} (its {service}:)"
    if instead is None:
        return (
            (
                f"needs the environment's {service}: setting, which environment "
                f"{environment!r} does not have",
                f"configure {service}: for environment {environment!r}, or "
                + (
                    "run the step on an environment that has it"
                    if pinned
                    else f"remove {environment!r} from the application's environments"
                ),
            ),
            None,
            None,
        )
    return (
        None,
        instead,
        f"runs as a {instead.kind} step on environment {environment!r}, which has no {service}:",
    )


def _step_places(loaded: LoadedFile) -> list[tuple[Location, str, StepSettings]]:
    """Every step the application may run: where it is, whose it is, the step."""
    app = loaded.application
    places: list[tuple[Location, str, StepSettings]] = []
    for workflow_name in dict.fromkeys(app.expose):
        workflow = app.workflows[workflow_name]
        for section, steps in (("steps", workflow.steps), ("on_failure", workflow.on_failure)):
            places += [
                (("workflows", workflow_name, section, n), f"workflow {workflow_name!r}", step)
                for n, step in steps.items()
            ]
    if app.deployment is not None:
        places += [
            (("deployment", "steps", n), "the deployment", step)
            for n, step in app.deployment.steps.items()
        ]
    return places


def _with_steps(
    spec: WorkflowSpec, base: Location, replaced: dict[Location, StepSettings]
) -> WorkflowSpec:
    """``spec`` with the steps of ``replaced`` under ``base`` swapped in (itself if none)."""
    update = {}
    for section in ("steps", "on_failure"):
        steps: dict[str, StepSettings] = getattr(spec, section)
        swapped = {n: replaced.get((*base, section, n), s) for n, s in steps.items()}
        if any(swapped[n] is not s for n, s in steps.items()):
            update[section] = swapped
    return spec.model_copy(update=update) if update else spec
