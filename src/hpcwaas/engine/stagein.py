"""stage_in: the service downloads a URL and streams it into the execution's place.

The body goes from httpx to the place's files (SFTP on a cluster) chunk by chunk, counted
and hashed on the way: past ``max_bytes``, or with another SHA-256 than expected, the write
is abandoned and its partial file removed. Transient failures (connection errors, timeouts,
429 and 5xx answers) are retried a few times from the start.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import AsyncIterator, Callable

import httpx

from hpcwaas.api.states import LogLevel
from hpcwaas.catalog.kinds.transfers import StageInPlan, TransferError
from hpcwaas.engine.placefiles import PlaceFiles

Emit = Callable[[LogLevel, str], None]

ATTEMPTS = 4
RETRY_DELAYS = (1.0, 3.0, 10.0)
PROGRESS_SECONDS = 10.0
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
HTTP_TIMEOUT = httpx.Timeout(30.0, read=120.0)


class _Transient(Exception):
    """A failure that another attempt may not meet."""


def human_size(size: float) -> str:
    """``1.5 MiB``: sizes for log lines."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


async def stage_in(
    plan: StageInPlan,
    files: PlaceFiles,
    emit: Emit,
    *,
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Download ``plan.url`` to ``plan.target_path``; TransferError says why it could not.

    ``verify``: how the server's certificate is checked (httpx's ``verify``).
    """
    target = files.resolve(plan.target_path)
    if not plan.force and await files.exists(target):
        emit(LogLevel.INFO, f"{plan.target_path} exists already: not downloaded (force: false)")
        return
    emit(LogLevel.INFO, f"Downloading {plan.safe_url} to {plan.target_path}")
    attempts = len(retry_delays) + 1
    for attempt in range(1, attempts + 1):
        try:
            await _download(plan, files, target, emit, verify)
            return
        except _Transient as exc:
            if attempt == attempts:
                raise TransferError(
                    f"downloading {plan.safe_url} failed {attempts} times; last: {exc}"
                ) from None
            delay = retry_delays[attempt - 1]
            emit(
                LogLevel.WARN,
                f"Downloading {plan.safe_url} failed ({exc}); retrying in {delay:g} s "
                f"(attempt {attempt + 1} of {attempts})",
            )
            await asyncio.sleep(delay)


async def _download(
    plan: StageInPlan, files: PlaceFiles, target: str, emit: Emit, verify: ssl.SSLContext | bool
) -> None:
    started = time.monotonic()
    client = httpx.AsyncClient(follow_redirects=True, timeout=HTTP_TIMEOUT, verify=verify)
    async with client:
        try:
            async with client.stream("GET", plan.url) as response:
                _check_response(plan, response)
                total = await _write(plan, files, target, response, emit, started)
        except httpx.UnsupportedProtocol:
            raise TransferError(
                f"{plan.safe_url} redirected to a URL that is not http:// or https://"
            ) from None
        except httpx.TooManyRedirects:
            raise TransferError(f"{plan.safe_url} redirected too many times") from None
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise _Transient(detail) from None
    seconds = max(time.monotonic() - started, 1e-3)
    emit(
        LogLevel.INFO,
        f"Downloaded {human_size(total)} ({total} bytes) in {seconds:.1f} s "
        f"({human_size(total / seconds)}/s) to {plan.target_path}"
        + (", SHA-256 verified" if plan.sha256 else ""),
    )


def _check_response(plan: StageInPlan, response: httpx.Response) -> None:
    status = response.status_code
    if status in TRANSIENT_STATUSES:
        raise _Transient(f"HTTP {status} {response.reason_phrase}")
    if status >= 300:
        raise TransferError(
            f"{plan.safe_url} answered HTTP {status} {response.reason_phrase}; check the URL"
        )
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > plan.max_bytes:
        raise TransferError(
            f"{plan.safe_url} is {length} bytes, more than max_bytes ({plan.max_bytes}); "
            "not downloaded"
        )


async def _write(
    plan: StageInPlan,
    files: PlaceFiles,
    target: str,
    response: httpx.Response,
    emit: Emit,
    started: float,
) -> int:
    received = 0
    expected = response.headers.get("content-length", "")
    of = f" of {human_size(int(expected))}" if expected.isdigit() else ""

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal received
        digest = hashlib.sha256()
        told = started
        async for chunk in response.aiter_bytes(1024 * 1024):
            received += len(chunk)
            if received > plan.max_bytes:
                raise TransferError(
                    f"{plan.safe_url} is larger than max_bytes ({plan.max_bytes} bytes); "
                    "download stopped, nothing kept"
                )
            digest.update(chunk)
            now = time.monotonic()
            if now - told >= PROGRESS_SECONDS:
                told = now
                emit(LogLevel.INFO, f"Received {human_size(received)}{of} in {now - started:.0f} s")
            yield chunk
        if plan.sha256 is not None and digest.hexdigest() != plan.sha256:
            # Raised before the file is renamed into place: the partial file is removed.
            raise TransferError(
                f"SHA-256 mismatch for {plan.safe_url}: expected {plan.sha256}, got "
                f"{digest.hexdigest()}; the file was not kept"
            )

    await files.write(target, chunks())
    return received
