"""The ``stage_in`` step kind: an HTTP(S) download streamed into the execution's place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit

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
from hpcwaas.catalog.kinds.transfers import (
    StageInPlan,
    TransferError,
    effective_limit,
    public_url,
)
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_text

SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"


class StageInStep(StepSettings):
    """An HTTP(S) download, streamed by the service into the execution's place (the cluster)."""

    kind: Literal["stage_in"]
    url: str  # template
    target_path: str  # template; relative: under the execution's working directory
    force: bool = False  # download again even if the target exists
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    max_bytes: int | None = Field(default=None, ge=1)  # default: limits.max_stage_in_bytes


class StageInKind(StepKind[StageInStep, StageInPlan]):
    """Downloads the service makes itself, on any environment."""

    name = "stage_in"
    settings = StageInStep
    # After a restart the step, left RUNNING, is downloaded again.
    reattaches = True

    def check(self, step: StageInStep, checks: StepChecks) -> list[Problem]:
        """The URL may use the workflow's secrets; a URL known at load time must be http(s)."""
        # The service renders these itself, before any step output reaches it.
        service = checks.before_step_outputs()
        problems = service.templates([(("url",), step.url)], workflow_secrets=True)
        problems += service.templates([(("target_path",), step.target_path)])
        return problems + _url_problems(step, checks)

    def prepare(self, step: StageInStep, request: Preparation) -> StageInPlan:
        """The rendered download, its size capped by ``limits.max_stage_in_bytes``."""
        key = "max_stage_in_bytes"
        limit, note = effective_limit(step.max_bytes, request.limits[key], key)
        try:
            plan = prepare_stage_in(
                step,
                execution_id=request.execution_id,
                inputs=request.inputs,
                max_bytes=limit,
                workflow_secrets=request.workflow_secrets,
            )
        except RenderError as exc:
            raise TransferError(f"its paths cannot be rendered: {exc}") from None
        return replace(plan, note=note)

    def run(self, runtime: StepRuntime[R], name: str, step: StageInStep, *, resumed: bool) -> R:
        """The service downloads into the place."""
        return runtime.download(self, name, step)


def _url_problems(step: StageInStep, checks: StepChecks) -> list[Problem]:
    """A URL known at load time (literal, or with a literal scheme) must be http(s)."""
    head = step.url.split("{", 1)[0].strip()
    scheme, sep, _ = head.partition("://")
    literal = "{" not in step.url
    if (sep and scheme.lower() in ("http", "https")) or (not sep and not literal):
        return []
    return [
        checks.problem(
            ("url",),
            f"url: only http:// and https:// URLs can be staged in, got {step.url[:80]!r}",
            "e.g. url: https://example.org/data.csv, or url: '{{ inputs.data_url }}'",
        )
    ]


def prepare_stage_in(
    spec: StageInStep,
    *,
    execution_id: str,
    inputs: Mapping[str, Any],
    max_bytes: int,
    workflow_secrets: Mapping[str, str] | None = None,
) -> StageInPlan:
    """Render the URL and target path; TransferError for a URL that is not http(s).

    ``workflow_secrets``: the workflow's ``secrets:``, which the URL may use in its user info
    or query string only (the parts logs never show).
    """
    context = step_context(execution_id, inputs)
    secrets = dict(workflow_secrets or {})
    url = render_text(spec.url, {**context, "secrets": secrets}).strip()
    target = render_text(spec.target_path, context).strip()
    shown = public_url(url)
    if any(value and value.lower() in shown.lower() for value in secrets.values()):
        raise TransferError(
            "url uses a secret outside its user info and query string, where logs would show "
            "it; write e.g. https://{{ secrets.token }}@host/path or https://host/path?key=..."
        )
    try:
        scheme = urlsplit(url).scheme.lower()
        host = urlsplit(url).hostname
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise TransferError(
            f"url {public_url(url)!r} is not an http:// or https:// URL; only those can be "
            "staged in"
        )
    if not target:
        raise TransferError("target_path is empty")
    return StageInPlan(
        url=url,
        target_path=target,
        force=spec.force,
        sha256=spec.sha256.lower() if spec.sha256 else None,
        max_bytes=max_bytes,
        timeout=spec.timeout,
    )
