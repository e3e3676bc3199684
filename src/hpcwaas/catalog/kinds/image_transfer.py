"""The ``image_transfer`` step kind: a built container image moved onto the cluster.

The service streams the image from its download URL (an ``image_build`` step's
``download_url``) into a directory of the cluster account over SFTP, as ``stage_in`` does:
chunk by chunk, never whole in memory or on the server's disk, written under a temporary
name and renamed at the end, so that a cut download or a size that differs from the
announced Content-Length leaves nothing at the image's path. An image already there (the
same file name: the same workflow, step, machine and version) is not moved again unless
``force``. The step's output ``image_path`` is where the image is, for a ``pycompss`` step's
``container_image``.
"""

from __future__ import annotations

import posixpath
import re
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import (
    PlannedStep,
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

TRANSFER_OUTPUTS = ("image_path",)
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


class ImageTransferStep(StepSettings):
    """A container image streamed from its download URL into a directory of the cluster."""

    kind: Literal["image_transfer"]
    url: str
    """The image's download URL (template), e.g. '{{ steps.build.outputs.download_url }}'."""
    target_path: str
    """The directory the image goes to (template; relative: under the execution's working
    directory); the image keeps the file name of its URL."""
    force: bool = False
    """Move the image again even when a file of its name is there."""
    max_bytes: int | None = Field(default=None, ge=1)
    """The largest image accepted (default and ceiling: limits.max_stage_in_bytes)."""
    outputs: list[str] = Field(default_factory=lambda: list(TRANSFER_OUTPUTS))
    """What the transfer gives later steps: image_path, the image's path on the cluster."""


class ImageTransferKind(StepKind[ImageTransferStep, StageInPlan]):
    """Images the service streams onto the cluster itself."""

    name = "image_transfer"
    settings = ImageTransferStep
    # After a restart the step, left RUNNING, is moved again (nothing partial was kept).
    reattaches = True

    def check(self, step: ImageTransferStep, checks: StepChecks) -> list[Problem]:
        """Templates may use inputs and step outputs; outputs are those a transfer gives."""
        problems = checks.templates([(("url",), step.url), (("target_path",), step.target_path)])
        for index, output in enumerate(step.outputs):
            if output not in TRANSFER_OUTPUTS:
                problems.append(
                    checks.problem(
                        ("outputs", index),
                        f"outputs: an image transfer gives no {output!r}",
                        "the one output of an image transfer is image_path",
                    )
                )
        return problems

    def prepare(self, step: ImageTransferStep, request: Preparation) -> StageInPlan:
        """The download into ``<target_path>/<file name>``; TransferError for a bad URL."""
        key = "max_stage_in_bytes"
        limit, note = effective_limit(step.max_bytes, request.limits[key], key)
        context = step_context(request.execution_id, request.inputs, request.step_outputs)
        try:
            url = render_text(step.url, context).strip()
            directory = render_text(step.target_path, context).strip()
        except RenderError as exc:
            raise TransferError(f"its url or target_path cannot be rendered: {exc}") from None
        try:
            parts = urlsplit(url)
        except ValueError:
            raise TransferError("url is not a URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise TransferError(
                f"url {public_url(url)!r} is not an http:// or https:// URL; give the "
                "download_url of an image_build step"
            )
        name = posixpath.basename(unquote(parts.path))
        if not FILE_NAME.match(name):
            raise TransferError(
                f"url {public_url(url)!r} does not end with an image's file name; give the "
                "download_url of an image_build step whose container_engine is singularity"
            )
        if not directory:
            raise TransferError("target_path is empty")
        path = posixpath.join(directory, name)
        return StageInPlan(
            url=url,
            target_path=path,
            force=step.force,
            sha256=None,
            max_bytes=limit,
            timeout=step.timeout,
            note=note,
            outputs={"image_path": path},
        )

    def plan(self, step: ImageTransferStep, request: Preparation) -> PlannedStep:
        """Where the image would go (once the build step's outputs are known)."""
        return PlannedStep(command=f"stream {step.url} into {step.target_path}/ on the cluster")

    def run(
        self, runtime: StepRuntime[R], name: str, step: ImageTransferStep, *, resumed: bool
    ) -> R:
        """The service streams the image into the place."""
        return runtime.download(self, name, step)
