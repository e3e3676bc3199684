"""The ``stage_in`` and ``stage_out`` step kinds: what to transfer, rendered and checked.

Pure: templates are rendered, URLs and limits checked here; the engine (``engine.stagein``,
``engine.stageout``) moves the bytes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hpcwaas.catalog.model import StageInStep, StageOutStep
from hpcwaas.catalog.render import render_text
from hpcwaas.steps.shell import step_context

# Metadata keys of the eFlows4HPC data catalogue (DLSDAGStageOutData): kept, not acted upon.
DATA_CATALOGUE_KEYS = ("mid", "register")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


class TransferError(Exception):
    """A transfer step cannot go on; the message is for the execution's log and error."""


@dataclass(frozen=True)
class StageInPlan:
    """A rendered stage_in step."""

    url: str
    target_path: str
    force: bool
    sha256: str | None
    max_bytes: int
    timeout: float | None

    @property
    def safe_url(self) -> str:
        """The URL for logs: without credentials, query or fragment (they may hold tokens)."""
        return public_url(self.url)


@dataclass(frozen=True)
class StageOutPlan:
    """A rendered stage_out step."""

    source_path: str
    output: str
    max_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None

    def file_name(self, directory: bool) -> str:
        """The stored file's name: the output name, with the source's extension (or .tar.gz)."""
        if directory:
            return f"{self.output}.tar.gz"
        suffixes = ""
        base = posixpath.basename(self.source_path.rstrip("/"))
        for suffix in _suffixes(base):
            suffixes += suffix
        return self.output if self.output.endswith(suffixes) else self.output + suffixes


def _suffixes(name: str) -> list[str]:
    """Up to the last two plain extensions of a file name (``.tar.gz``, ``.csv``)."""
    parts = name.split(".")[1:][-2:]
    found = [f".{p}" for p in parts]
    while found and not all(_SUFFIX.fullmatch(s) for s in found):
        found = found[1:]
    return found


def public_url(url: str) -> str:
    """``url`` without user info, query and fragment, for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid URL)"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def effective_limit(given: int | None, ceiling: int, key: str) -> tuple[int, str | None]:
    """The step's ``max_bytes`` capped by the config's; a note for the logs when capped."""
    if given is None:
        return ceiling, None
    if given > ceiling:
        return ceiling, f"max_bytes {given} is above limits.{key} ({ceiling}); using {ceiling}"
    return given, None


def prepare_stage_in(
    spec: StageInStep,
    *,
    execution_id: str,
    inputs: Mapping[str, Any],
    max_bytes: int,
    key_store_secrets: Mapping[str, str] | None = None,
) -> StageInPlan:
    """Render the URL and target path; TransferError for a URL that is not http(s).

    ``key_store_secrets``: the workflow's ``secrets:``, which the URL may use in its user info
    or query string only (the parts logs never show).
    """
    context = step_context(execution_id, inputs)
    secrets = dict(key_store_secrets or {})
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
