"""The plan of a dry run: each step rendered as a run would render it, and nothing run.

Pure: no database, no transport, no file. Slurm steps that a run submits ahead (ahead.py)
are marked ``submitted_ahead``. Each step is shown by its kind's ``plan``, built on
the ``prepare`` a run uses, with the inputs of ``plan_inputs``, where values that must not be
shown are replaced by ``SECRET_PLACEHOLDER``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpcwaas.api.models import DryRunPlan, DryRunStep
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds import kind_of
from hpcwaas.catalog.kinds.base import ClusterDefaults, Preparation
from hpcwaas.engine.ahead import submitted_ahead
from hpcwaas.engine.places import cluster_defaults, cluster_work_dir
from hpcwaas.settings import EnvironmentConfig, SlurmEnvironment

if TYPE_CHECKING:
    from pathlib import Path

    from hpcwaas.catalog.catalog import DeployedWorkflow
    from hpcwaas.catalog.model import WorkflowSpec

# A trigger gets a fresh ID; the plan shows this one wherever the ID appears.
PLAN_EXECUTION_ID = "00000000-0000-0000-0000-000000000000"
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - what is shown instead of a secret
# Input types whose values a plan never shows.
SECRET_TYPES: frozenset[str] = frozenset({"secret"})


def plan_inputs(spec: WorkflowSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as a plan may show them: every secret value replaced by ``[secret]``."""
    shown: dict[str, Any] = {}
    for name, value in inputs.items():
        declared = spec.inputs.get(name)
        secret = declared is not None and str(declared.type) in SECRET_TYPES
        shown[name] = SECRET_PLACEHOLDER if secret and value is not None else value
    return shown


def build_plan(
    workflow: DeployedWorkflow,
    inputs: Mapping[str, Any],
    environment: EnvironmentConfig,
    *,
    local_work_root: Path,
    cluster_login: str | None = None,
    deployment_outputs: Mapping[str, Mapping[str, str]] | None = None,
    others: Mapping[str, EnvironmentConfig] | None = None,
) -> DryRunPlan:
    """The steps of ``workflow`` with ``inputs`` (already validated), rendered in run order,
    each on its environment (``others``: the configuration of those its steps name).

    ``deployment_outputs``: what the application's deployment wrote, when the one a trigger
    would use has succeeded; its other outputs show as placeholders.
    """
    shown = plan_inputs(workflow.spec, inputs)
    execution_id = PLAN_EXECUTION_ID
    home = _where(environment, local_work_root, execution_id)
    where = {name: _where(c, local_work_root, execution_id) for name, c in (others or {}).items()}
    # What steps will write is unknown before they run: the plan shows a placeholder, a word
    # every kind accepts (a pycompss container_image from an image_transfer's image_path).
    step_outputs = {
        name: {output: f"@{name}.outputs.{output}@" for output in spec.outputs}
        for name, spec in workflow.spec.steps.items()
    }
    deployed = _deployment_values(workflow, deployment_outputs or {})
    ahead = submitted_ahead(workflow.spec.steps)
    steps = []
    for name in workflow.step_order():
        named = workflow.spec.steps[name].environment
        on = where.get(named, home) if named is not None else home
        step = _plan_step(workflow, name, shown, step_outputs, deployed, on, execution_id)
        if named is not None and named != workflow.environment:
            step.environment_id = named
        step.submitted_ahead = name in ahead and step.error is None and on[1] is not None
        steps.append(step)
    return DryRunPlan(
        workflow_id=workflow.id,
        environment_id=workflow.environment,
        execution_id=execution_id,
        work_dir=home[0],
        cluster_login=cluster_login,
        inputs=shown,
        steps=steps,
        outputs=list(workflow.spec.outputs),
    )


def _plan_step(
    workflow: DeployedWorkflow,
    name: str,
    inputs: Mapping[str, Any],
    step_outputs: Mapping[str, Mapping[str, str]],
    deployment_outputs: Mapping[str, Mapping[str, str]] | None,
    where: tuple[str, ClusterDefaults | None],
    execution_id: str,
) -> DryRunStep:
    work_dir, cluster = where
    spec = workflow.spec.steps[name]
    kind = kind_of(spec)
    step = DryRunStep(name=name, kind=spec.kind, needs=list(spec.needs), timeout=spec.timeout)
    if kind.needs_cluster and cluster is None:
        step.error = f"a {spec.kind} step needs a Slurm environment"
        return step
    request = Preparation(
        execution_id=execution_id,
        step_name=name,
        inputs=inputs,
        step_outputs=step_outputs,
        # The key store is not read for a plan: its secrets show as placeholders.
        workflow_secrets={secret: SECRET_PLACEHOLDER for secret in workflow.spec.secrets},
        work_dir=work_dir,
        cluster=cluster,
        deployment_outputs=deployment_outputs,
    )
    try:
        planned = kind.plan(spec, request)
    except RenderError as exc:
        step.error = f"its command cannot be rendered: {exc}"
        return step
    step.command, step.script, step.batch_script = (
        planned.command,
        planned.script,
        planned.batch_script,
    )
    step.env = planned.env
    return step


def _where(
    config: EnvironmentConfig, local_work_root: Path, execution_id: str
) -> tuple[str, ClusterDefaults | None]:
    """An environment's working directory for the execution, and its cluster defaults."""
    if isinstance(config, SlurmEnvironment):
        return cluster_work_dir(config, execution_id), cluster_defaults(config)
    return str(local_work_root / execution_id), None


def _deployment_values(
    workflow: DeployedWorkflow, written: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]] | None:
    """The application's deployment outputs: the ``written`` ones, placeholders for the others
    (a word every kind accepts, as for step outputs); None when it has no deployment."""
    deployment = workflow.application.deployment
    if deployment is None:
        return None
    return {
        name: {
            output: written.get(name, {}).get(output, f"@deployment.outputs.{name}.{output}@")
            for output in spec.outputs
        }
        for name, spec in deployment.steps.items()
    }
