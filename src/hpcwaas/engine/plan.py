"""The plan of a dry run: each step rendered as a run would render it, and nothing run.

Pure: no database, no transport, no file. Steps are built by the same functions the runner
uses (``prepare_shell_step``, ``prepare_job_step``), with the inputs of ``plan_inputs``, where
values that must not be shown are replaced by ``SECRET_PLACEHOLDER``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpcwaas.api.models import DryRunPlan, DryRunStep
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.model import CLUSTER_KINDS, ShellStep
from hpcwaas.engine.jobsteps import prepare_job_step
from hpcwaas.engine.places import cluster_work_dir
from hpcwaas.settings import EnvironmentConfig, SlurmEnvironment
from hpcwaas.steps.pycompss import PycompssSubmission
from hpcwaas.steps.shell import prepare_shell_step
from hpcwaas.steps.slurm import step_file

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
) -> DryRunPlan:
    """The steps of ``workflow`` with ``inputs`` (already validated), rendered in run order."""
    shown = plan_inputs(workflow.spec, inputs)
    execution_id = PLAN_EXECUTION_ID
    if isinstance(environment, SlurmEnvironment):
        work_dir = cluster_work_dir(environment, execution_id)
    else:
        work_dir = str(local_work_root / execution_id)
    # What steps will write is unknown before they run: the plan shows a placeholder.
    step_outputs = {
        name: {output: f"<{name}.outputs.{output}>" for output in spec.outputs}
        for name, spec in workflow.spec.steps.items()
    }
    steps = [
        _plan_step(workflow, name, shown, step_outputs, environment, execution_id, work_dir)
        for name in workflow.step_order()
    ]
    return DryRunPlan(
        workflow_id=workflow.id,
        environment_id=workflow.environment,
        execution_id=execution_id,
        work_dir=work_dir,
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
    environment: EnvironmentConfig,
    execution_id: str,
    work_dir: str,
) -> DryRunStep:
    spec = workflow.spec.steps[name]
    # The key store is not read for a plan: its secrets show as placeholders.
    key_store_secrets = {secret: SECRET_PLACEHOLDER for secret in workflow.spec.secrets}
    step = DryRunStep(name=name, kind=spec.kind, needs=list(spec.needs), timeout=spec.timeout)
    try:
        if isinstance(spec, ShellStep):
            invocation = prepare_shell_step(
                spec,
                execution_id=execution_id,
                step_name=name,
                inputs=inputs,
                step_outputs=step_outputs,
                key_store_secrets=key_store_secrets,
            )
            step.command, step.env = invocation.command, invocation.env
        elif spec.kind not in CLUSTER_KINDS:
            # A kind with nothing to render as a command: the plan shows its name, kind, needs.
            pass
        elif isinstance(environment, SlurmEnvironment):
            submission = prepare_job_step(
                spec,
                environment=environment,
                execution_id=execution_id,
                step_name=name,
                inputs=inputs,
                remote_dir=work_dir,
                step_outputs=step_outputs,
                key_store_secrets=key_store_secrets,
            )
            step.command = submission.submit_command
            if not isinstance(submission, PycompssSubmission):
                files = {path.rsplit("/", 1)[-1]: data for path, data in submission.files.items()}
                step.script = files[step_file(name, "sh")].decode("utf-8")
                step.batch_script = files[step_file(name, "sbatch")].decode("utf-8")
        else:
            step.error = f"a {spec.kind} step needs a Slurm environment"
    except RenderError as exc:
        step.error = f"its command cannot be rendered: {exc}"
    return step
