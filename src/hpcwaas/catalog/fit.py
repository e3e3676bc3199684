"""Whether an application can run on one environment, and the steps it runs there.

Two traits of an environment decide it:

- its kind: steps that need a cluster (batch jobs, DAG runs...) cannot run on ``local``;
- its remote services (``airflow:``...): a step whose kind needs a service the environment
  lacks runs the step its kind offers instead (a ``dag_run``'s ``without_airflow``), or the
  application is not deployed there.

The choice is made once per environment when the catalog loads, and logged: the same file may
run a DLS pipeline on one cluster and the service's own transfer on another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcwaas.catalog.kinds import kind_of
from hpcwaas.catalog.loader import FileProblem, LoadedFile
from hpcwaas.catalog.model import WorkflowSpec

if TYPE_CHECKING:
    from hpcwaas.catalog.kinds.base import StepSettings
    from hpcwaas.catalog.yamlfile import Location

LOCAL_KIND = "local"


@dataclass
class Fitted:
    """An application's workflows as they run on one environment, or why they cannot."""

    workflows: dict[str, WorkflowSpec] = field(default_factory=dict)  # the exposed ones
    deployment: WorkflowSpec | None = None
    problems: list[FileProblem] = field(default_factory=list)  # not empty: not deployed
    choices: list[str] = field(default_factory=list)  # which step runs where, for the log


def fit(
    loaded: LoadedFile,
    environment: str,
    kind: str | None,
    services: frozenset[str] | None,
) -> Fitted:
    """``loaded``'s application on ``environment``, of ``kind`` with ``services``.

    ``kind`` and ``services`` None: unknown (files checked without a configuration), where
    every step may run as written.
    """
    app = loaded.application
    places = _step_places(loaded)
    fitted = Fitted()
    replaced: dict[Location, StepSettings] = {}
    for loc, owner, step in places:
        step_kind = kind_of(step)
        where = f"{owner}: step {loc[-1]!r} of kind {step.kind}"
        if kind == LOCAL_KIND and step_kind.needs_cluster:
            fitted.problems.append(
                FileProblem(
                    loaded.path,
                    loaded.line((*loc, "kind")),
                    f"{where} cannot run on local environment {environment!r}; application "
                    f"{app.application!r} is not deployed there",
                    "deploy it on Slurm environments only (remove "
                    f"{environment!r} from environments), or make the step kind: shell",
                )
            )
            continue
        service = step_kind.service
        if services is None or service is None:
            continue
        instead = step_kind.without_service(step)
        if service in services:
            if instead is not None:
                fitted.choices.append(
                    f"{where} runs as written on environment {environment!r} (its {service}:)"
                )
            continue
        if instead is None:
            fitted.problems.append(
                FileProblem(
                    loaded.path,
                    loaded.line((*loc, "kind")),
                    f"{where} needs the environment's {service}: setting, which environment "
                    f"{environment!r} does not have; application {app.application!r} is not "
                    "deployed there",
                    f"configure {service}: for environment {environment!r}, or remove "
                    f"{environment!r} from the application's environments",
                )
            )
            continue
        replaced[loc] = instead
        fitted.choices.append(
            f"{where} runs as a {instead.kind} step on environment {environment!r}, which has "
            f"no {service}:"
        )
    if fitted.problems:
        return fitted
    fitted.workflows = {
        name: _with_steps(app.workflows[name], ("workflows", name), replaced)
        for name in dict.fromkeys(app.expose)
    }
    if app.deployment is not None:
        fitted.deployment = _with_steps(app.deployment, ("deployment",), replaced)
    return fitted


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
