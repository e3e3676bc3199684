"""The ``image_transfer`` step kind: a built container image moved onto the cluster.

On an environment with an Airflow (``airflow:``, the Data Logistics Service), the DLS's
image transfer DAG (``transfer_image`` of eflows4hpc/dls-dags) moves it: a ``remote_run``
as a ``dag_run`` step's, with the execution's cluster account in its conf. Otherwise the
service streams the image from its download URL (an ``image_build`` step's
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
    ClusterAccess,
    PlannedStep,
    Preparation,
    R,
    StepChecks,
    StepKind,
    StepRuntime,
    StepSettings,
)
from hpcwaas.catalog.kinds.dag_run import ACCESS_KEYS, DagRunRequest
from hpcwaas.catalog.kinds.image_build import SERVICE as IMAGE_SERVICE
from hpcwaas.catalog.kinds.transfers import (
    StageInPlan,
    TransferError,
    effective_limit,
    public_url,
)
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_text

TRANSFER_OUTPUTS = ("image_path",)
DLS_DAG = "transfer_image"  # eflows4hpc/dls-dags image_transfer.py
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
    """The largest image accepted (default and ceiling: limits.max_stage_in_bytes); the
    DLS's DAG has no such limit."""
    vault_path: str = ""
    """Through the DLS only: the path, in the DLS's Vault, of the account (user, password)
    its DAG downloads with; '' downloads without one, as the service allows."""
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
        url, directory, name = _rendered(step, request)
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
            tls_of=IMAGE_SERVICE,  # the image comes from the Image Creation service
        )

    def plan(self, step: ImageTransferStep, request: Preparation) -> PlannedStep:
        """Where the image would go (once the build step's outputs are known)."""
        return PlannedStep(command=f"stream {step.url} into {step.target_path}/ on the cluster")

    def run(
        self, runtime: StepRuntime[R], name: str, step: ImageTransferStep, *, resumed: bool
    ) -> R:
        """The DLS's DAG moves the image when there is an Airflow; else the service does."""
        if runtime.offers("airflow", step):
            return runtime.remote_run(THROUGH_DLS, name, step, resumed=resumed)
        return runtime.download(self, name, step)


class ImageTransferThroughDls(StepKind[ImageTransferStep, DagRunRequest]):
    """An image_transfer step as a run of the DLS's image transfer DAG."""

    name = ImageTransferKind.name
    settings = ImageTransferStep
    needs_cluster = True
    reattaches = True  # the run is found again by its ID after a restart

    def prepare(self, step: ImageTransferStep, request: Preparation) -> DagRunRequest:
        """The DAG's conf: the image's name, its download URL's directory, the target
        directory (relative: in the execution's directory) and the cluster account."""
        url, directory, name = _rendered(step, request)
        target = posixpath.join(request.work_dir, directory)  # the DAG's base is the home
        conf: dict[str, object] = {
            "image_id": name,
            "url": url[: url.rindex("/") + 1],
            "target": target,
            "force": step.force,
            "vault_path": step.vault_path,
        }
        conf.update(_account(request.access))
        path = posixpath.join(directory, name)
        return DagRunRequest(DLS_DAG, conf, secret=False, outputs={"image_path": path})

    def run(
        self, runtime: StepRuntime[R], name: str, step: ImageTransferStep, *, resumed: bool
    ) -> R:
        """The environment's Airflow runs it."""
        return runtime.remote_run(self, name, step, resumed=resumed)


THROUGH_DLS = ImageTransferThroughDls()


def _account(access: ClusterAccess | None) -> dict[str, object]:
    """The cluster account as the DLS's DAGs take it (host, port, login, vault_id)."""
    if access is None:
        return {}
    values = (access.host, access.port, access.login, access.key_id)
    return dict(zip(ACCESS_KEYS, values, strict=True))


def _rendered(step: ImageTransferStep, request: Preparation) -> tuple[str, str, str]:
    """The URL, the target directory and the image's file name; TransferError if bad."""
    context = request.template_context()
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
    return url, directory, name
