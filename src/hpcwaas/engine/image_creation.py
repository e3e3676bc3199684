"""Image builds on the eFlows4HPC Container Image Creation service: the driver of ``image_build``.

The service (eflows4hpc/image_creation) answers under its ``/image_creation`` prefix, with
HTTP Basic auth: ``POST /build/`` starts a build and answers its ID, ``GET /build/<id>``
tells its status (PENDING, STARTED, BUILDING, CONVERTING, then FINISHED or FAILED with a
message), and ``GET /images/download/<filename>`` serves a finished Singularity image.

The service names its builds itself, so a step cannot choose its build's ID: asked again
after a restart, it answers with the build it runs for the same image. A build this driver
saw finish is reused for the same request (same service, machine, workflow, step, version
and push) unless the step says ``force``; the service then needs no new request. The
service has no way to stop a build: a cancel leaves it running there.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.kinds.image_build import ImageBuildRequest
from hpcwaas.catalog.kinds.transfers import public_url
from hpcwaas.engine.remotesteps import LineSink, RemoteEnd, RemoteError, RunKey
from hpcwaas.settings import ImageCreationConfig

ENDED = ("FINISHED", "FAILED")
TRANSIENT = frozenset({408, 429, 502, 503, 504})
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S)  # the message of a Flask error page


def tls_verify(config: ImageCreationConfig) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for the service: its CAs, or whether to check its certificate."""
    if config.ca_file is not None:
        return ssl.create_default_context(cafile=str(config.ca_file))
    return config.verify_tls


def _message(answer: httpx.Response) -> str:
    """What the service said, from its JSON, its error page, or its text."""
    text = answer.text
    found = _PARAGRAPH.search(text)
    detail = found.group(1) if found else text
    detail = " ".join(detail.split())[:300]
    return f"HTTP {answer.status_code}" + (f": {detail}" if detail else "")


class ImageBuild:
    """One build on the service, followed by polling its status."""

    def __init__(self, service: ImageCreationService, base: str, build_id: str, *,
                 request_key: str, reused: bool) -> None:  # fmt: skip
        self._service = service
        self._base = base
        self._request_key = request_key
        self.run_id = build_id
        self.reused = reused
        self.reattached = False  # the service gives no way to tell; logs start afresh

    async def wait(self, on_line: LineSink, offsets: Mapping[str, int]) -> RemoteEnd:
        """Poll the build's status to its end; each new status is a log line."""
        service, build_id = self._service, self.run_id
        if self.reused:
            await on_line(LogLevel.INFO, f"Build {build_id} finished before: reused", None)
        last, reached = None, time.monotonic()
        while True:
            try:
                state = await service.build_state(self._base, build_id)
            except RemoteError as exc:
                if not exc.retryable:
                    raise
                if time.monotonic() - reached > service.config.unreachable_deadline:
                    raise RemoteError(
                        f"{exc}; gave up after {service.config.unreachable_deadline:g} s",
                        retryable=True,
                    ) from None
                await on_line(LogLevel.WARN, f"Build {build_id}: {exc}; trying again", None)
                await asyncio.sleep(service.config.poll_interval)
                continue
            reached = time.monotonic()
            if state is None:
                return RemoteEnd(
                    StepState.FAILED,
                    f"the Image Creation service at {public_url(self._base)} no longer knows "
                    f"build {build_id}",
                )
            status = str(state.get("status"))
            if status != last:
                last = status
                await on_line(LogLevel.INFO, f"Build {build_id}: {status}", None)
            if status == "FAILED":
                why = state.get("message") or "the service gave no message"
                return RemoteEnd(StepState.FAILED, f"image build {build_id} failed: {why}")
            if status == "FINISHED":
                service.remember(self._request_key, build_id)
                return RemoteEnd(StepState.SUCCEEDED, outputs=self._outputs(state))
            await asyncio.sleep(service.config.poll_interval)

    def _outputs(self, state: Mapping[str, Any]) -> dict[str, str]:
        filename = str(state.get("filename") or "")
        url = f"{self._base}/images/download/{quote(filename)}" if filename else ""
        return {
            "build_id": self.run_id,
            "image_id": str(state.get("image_id") or ""),
            "filename": filename,
            "download_url": url,
        }

    async def cancel(self) -> None:
        """The service cannot stop a build: say so (the step's log shows it)."""
        raise RemoteError(
            "the Image Creation service has no way to stop a build; it goes on there",
            retryable=False,
        )


class ImageCreationService:
    """One Image Creation service account: starts builds and reads their status."""

    def __init__(self, config: ImageCreationConfig, username: str, password: str) -> None:
        self.config = config
        self._client = httpx.AsyncClient(
            auth=(username, password),
            verify=tls_verify(config),
            timeout=config.request_timeout,
            headers={"Accept": "application/json"},
        )
        self._finished: dict[str, str] = {}  # request -> ID of a build of it that finished
        self.requests = 0  # how many requests were made (the tests count them)

    def remember(self, request_key: str, build_id: str) -> None:
        """A build of this request finished: later requests reuse it unless forced."""
        self._finished[request_key] = build_id

    async def start(self, request: ImageBuildRequest, key: RunKey) -> ImageBuild:
        """Start the build (or reuse a finished one of the same request); RemoteError."""
        base = (self.config.url or request.service_url or "").rstrip("/")
        if not base:
            raise RemoteError(
                "the step has no service_url and its environment's image_creation has no url; "
                "an operator sets image_creation.url in the server's configuration",
                retryable=False,
            )
        body = {k: v for k, v in request.body.items() if k != "force"}
        request_key = json.dumps({"service": base, **body}, sort_keys=True)
        known = self._finished.get(request_key)
        if known is not None and not request.force:
            state = await self.build_state(base, known)
            if state is not None and state.get("status") == "FINISHED":
                return ImageBuild(self, base, known, request_key=request_key, reused=True)
        answer = await self._call("POST", f"{base}/build/", json=request.body)
        if answer.status_code != 200:
            raise RemoteError(
                f"the Image Creation service at {public_url(base)} refused the build: "
                f"{_message(answer)}{self._hint(answer)}",
                retryable=answer.status_code in TRANSIENT,
            )
        try:
            build_id = str(answer.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise RemoteError(
                f"the Image Creation service at {public_url(base)} answered no build ID: "
                f"{_message(answer)}",
                retryable=False,
            ) from None
        return ImageBuild(self, base, build_id, request_key=request_key, reused=False)

    async def build_state(self, base: str, build_id: str) -> dict[str, Any] | None:
        """The build's status, image ID, file name and message; None for an unknown build."""
        answer = await self._call("GET", f"{base}/build/{quote(build_id, safe='')}")
        if answer.status_code == 400 and "Build not found" in answer.text:
            return None
        if answer.status_code != 200:
            raise RemoteError(
                f"the Image Creation service at {public_url(base)} did not tell the state of "
                f"build {build_id}: {_message(answer)}{self._hint(answer)}",
                retryable=answer.status_code in TRANSIENT or answer.status_code >= 500,
            )
        try:
            state = answer.json()
        except ValueError:
            state = None
        if not isinstance(state, dict):
            raise RemoteError(f"build {build_id}: {_message(answer)}", retryable=True)
        return state

    def _hint(self, answer: httpx.Response) -> str:
        if answer.status_code == 401:
            return (
                f"; the service refused the account stored at {self.config.credentials!r}: "
                "an operator stores the right username and password there"
            )
        return ""

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.requests += 1
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise RemoteError(
                f"the Image Creation service at {public_url(url.split('/build', 1)[0])} "
                f"cannot be reached: {detail}",
                retryable=True,
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()
