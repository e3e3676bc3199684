"""The ``stage_out`` step kind: a file or directory of the place, kept in the result store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import (
    Preparation,
    R,
    StepChecks,
    StepKind,
    StepRuntime,
    StepSettings,
    step_context,
)
from hpcwaas.catalog.kinds.transfers import StageOutPlan, TransferError, effective_limit
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_text
from hpcwaas.catalog.spec import NAME_PATTERN

if TYPE_CHECKING:
    from hpcwaas.catalog.model import WorkflowSpec


class StageOutStep(StepSettings):
    """A file or directory of the execution's place, copied into the service's result store."""

    kind: Literal["stage_out"]
    source_path: str  # template; relative: under the execution's working directory
    output: str | None = Field(default=None, pattern=NAME_PATTERN)  # default: the step's name
    max_bytes: int | None = Field(default=None, ge=1)  # default: limits.max_stage_out_bytes
    metadata: dict[str, Any] = Field(default_factory=dict)


class StageOutKind(StepKind[StageOutStep, StageOutPlan]):
    """Results the service keeps itself, on any environment."""

    name = "stage_out"
    settings = StageOutStep
    # After a restart the step, left RUNNING, is copied again.
    reattaches = True

    def check(self, step: StageOutStep, checks: StepChecks) -> list[Problem]:
        """The source path is rendered by the service; output names are unique in a workflow."""
        service = checks.before_step_outputs()
        problems = service.templates([(("source_path",), step.source_path)])
        return problems + _output_name_problems(step, checks, checks.workflow)

    def prepare(self, step: StageOutStep, request: Preparation) -> StageOutPlan:
        """The rendered copy, its size capped by ``limits.max_stage_out_bytes``."""
        key = "max_stage_out_bytes"
        limit, note = effective_limit(step.max_bytes, request.limits[key], key)
        try:
            plan = prepare_stage_out(
                step,
                step_name=request.step_name,
                execution_id=request.execution_id,
                inputs=request.inputs,
                max_bytes=limit,
            )
        except RenderError as exc:
            raise TransferError(f"its paths cannot be rendered: {exc}") from None
        return replace(plan, note=note)

    def run(self, runtime: StepRuntime[R], name: str, step: StageOutStep, *, resumed: bool) -> R:
        """The service copies into its result store."""
        return runtime.store_result(self, name, step)


def _output_name_problems(
    step: StageOutStep, checks: StepChecks, workflow: WorkflowSpec
) -> list[Problem]:
    """Two stage_out steps of one workflow may not store the same output name."""
    name = checks.name
    output = step.output or name
    for other, spec in workflow.steps.items():
        if other == name:
            break
        if isinstance(spec, StageOutStep) and (spec.output or other) == output:
            return [
                checks.problem(
                    ("output",),
                    f"stores output {output!r}, as step {other!r} does",
                    "give one of them another output name (output: <name>)",
                )
            ]
    return []


def prepare_stage_out(
    spec: StageOutStep,
    *,
    step_name: str,
    execution_id: str,
    inputs: Mapping[str, Any],
    max_bytes: int,
) -> StageOutPlan:
    """Render the source path; the output name defaults to the step's."""
    source = render_text(spec.source_path, step_context(execution_id, inputs)).strip()
    if not source:
        raise TransferError("source_path is empty")
    return StageOutPlan(
        source_path=source,
        output=spec.output or step_name,
        max_bytes=max_bytes,
        metadata=dict(spec.metadata),
        timeout=spec.timeout,
    )
