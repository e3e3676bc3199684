"""The ``image_build`` step kind: a container image built by the Container Image Creation service.

The step asks the eFlows4HPC Image Creation service (``image_creation:`` of the execution's
environment, else the step's ``service_url``) to build the image of one step of a workflow
of the Workflow Registry for a target machine, and follows the build to its end
(``remote_run``). A finished build gives the step its outputs: the build's ID, the image's
ID, the Singularity image's file name and the URL it downloads from, which an
``image_transfer`` step moves onto the cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from hpcwaas.catalog.kinds.base import (
    PlannedStep,
    Preparation,
    R,
    StepChecks,
    StepKind,
    StepRuntime,
    StepSettings,
)
from hpcwaas.catalog.kinds.transfers import public_url
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_text
from hpcwaas.catalog.spec import Spec

SERVICE = "image_creation"  # the environment's setting that says where the service is
# What a finished build gives the step, for {{ steps.<step>.outputs.<name> }}.
BUILD_OUTPUTS = ("build_id", "image_id", "filename", "download_url")
WORD = r"^[A-Za-z0-9_.@/:+-]+$"  # what the service puts into image names and Spack specs


class BuildMachine(Spec):
    """The machine the image is built for (the service's ``machine``)."""

    platform: str = Field(pattern=WORD)
    """Docker platform of the cluster's nodes, e.g. linux/amd64."""
    architecture: str = Field(pattern=WORD)
    """Spack target of the nodes' processors, e.g. skylake."""
    container_engine: Literal["singularity", "docker"]
    """singularity gives a .sif file to download (image_transfer); docker only a registry image."""
    mpi: str | None = Field(default=None, pattern=WORD)
    """Spack spec of the cluster's MPI, e.g. openmpi@4."""
    gpu: str | None = Field(default=None, pattern=WORD)
    """Spack spec of the GPU stack, e.g. cuda@10."""


class ImageBuildStep(StepSettings):
    """A container image of a workflow's step, built by the Image Creation service."""

    kind: Literal["image_build"]
    service_url: str | None = Field(default=None, pattern=r"^https?://")
    """The service, with its /image_creation prefix (a TOSCA topology's service_url); the
    environment's image_creation.url overrides it."""
    machine: BuildMachine
    workflow: str
    """The workflow's name in the Workflow Registry (template)."""
    step_id: str
    """The step of that workflow whose image is built (template)."""
    version: str = "latest"
    """The workflow's version: a branch or tag of the registry (template)."""
    force: bool = False
    """Build again even when the image exists (else a finished build is reused)."""
    push: bool = True
    """Push the image to the service's container registry."""
    outputs: list[str] = Field(default_factory=lambda: list(BUILD_OUTPUTS))
    """What the build gives later steps: build_id, image_id, filename, download_url."""


@dataclass(frozen=True)
class ImageBuildRequest:
    """A rendered image build: the body of the service's ``POST /build/``."""

    service_url: str | None
    body: dict[str, Any]
    force: bool
    service: str = SERVICE
    outputs: dict[str, str] | None = None  # the service gives them: BUILD_OUTPUTS


class ImageBuildKind(StepKind[ImageBuildStep, ImageBuildRequest]):
    """Steps whose work an image build on the Image Creation service is."""

    name = "image_build"
    settings = ImageBuildStep
    # The service is configured on cluster environments, whose nodes run the image.
    needs_cluster = True
    # After a restart the step asks again: the service answers with the build it runs.
    reattaches = True

    def check(self, step: ImageBuildStep, checks: StepChecks) -> list[Problem]:
        """Templates may use inputs and step outputs; outputs are those a build gives."""
        templates = [(("workflow",), step.workflow), (("step_id",), step.step_id)]
        problems = checks.templates([*templates, (("version",), step.version)])
        for index, output in enumerate(step.outputs):
            if output not in BUILD_OUTPUTS:
                problems.append(
                    checks.problem(
                        ("outputs", index),
                        f"outputs: an image build gives no {output!r}",
                        f"choose among {', '.join(BUILD_OUTPUTS)} (the default: all of them)",
                    )
                )
        return problems

    def prepare(self, step: ImageBuildStep, request: Preparation) -> ImageBuildRequest:
        """The build request, its templates rendered; RenderError for a bad template."""
        context = request.template_context()
        machine = step.machine.model_dump(exclude_none=True)
        body = {
            "machine": machine,
            "workflow": render_text(step.workflow, context).strip(),
            "step_id": render_text(step.step_id, context).strip(),
            "version": render_text(step.version, context).strip() or "latest",
            "force": step.force,
            "push": step.push,
        }
        return ImageBuildRequest(step.service_url, body, step.force)

    def plan(self, step: ImageBuildStep, request: Preparation) -> PlannedStep:
        """The build request the service would receive."""
        prepared = self.prepare(step, request)
        body = prepared.body
        where = f" ({public_url(step.service_url)})" if step.service_url else ""
        command = (
            f"build the image of {body['workflow']}/{body['step_id']} for "
            f"{step.machine.architecture} on the Image Creation service{where}"
        )
        return PlannedStep(command=command, script=json.dumps(body, indent=2))

    def run(self, runtime: StepRuntime[R], name: str, step: ImageBuildStep, *, resumed: bool) -> R:
        """The Image Creation service builds it."""
        return runtime.remote_run(self, name, step, resumed=resumed)
