"""What the ``stage_in`` and ``stage_out`` kinds share: their rendered plans, limits and errors.

Pure: templates are rendered, URLs and limits checked by the kinds; the engine
(``engine.stagein``, ``engine.stageout``) moves the bytes.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
    note: str | None = None  # for the logs: the step's max_bytes was capped
    outputs: dict[str, str] | None = None  # the step's, once downloaded (image_transfer's)
    # the remote service whose TLS settings the download follows (image_transfer's:
    # image_creation); None: the system's CAs
    tls_of: str | None = None

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
    note: str | None = None  # for the logs: the step's max_bytes was capped
    outputs: dict[str, str] | None = None  # none: a stage_out step gives no step outputs

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
