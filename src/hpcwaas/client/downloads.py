"""Downloads of stored outputs: chunks into a temporary file, kept only if the SHA-256 matches.

Shared by the sync and async clients, which only move the chunks.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

from hpcwaas.client.errors import DownloadFailed

_FILENAME = re.compile(r'filename="?([^";]+)"?')


@dataclass(frozen=True)
class DownloadedOutput:
    """A stored output saved locally: where, how big, its verified SHA-256."""

    name: str
    path: Path
    size: int
    sha256: str


def file_name(response: httpx.Response, fallback: str) -> str:
    """The file name the server suggests (Content-Disposition), as a plain base name."""
    match = _FILENAME.search(response.headers.get("content-disposition", ""))
    name = os.path.basename(match.group(1).strip()) if match else ""
    return name if name not in ("", ".", "..") else fallback


def announced_sha256(response: httpx.Response) -> str | None:
    """The SHA-256 the server announces in the ETag, if it looks like one."""
    tag = response.headers.get("etag", "").strip().removeprefix("W/").strip('"').lower()
    return tag if re.fullmatch(r"[0-9a-f]{64}", tag) else None


class OutputFile:
    """One download in progress into ``directory``."""

    def __init__(self, name: str, directory: Path, file_name: str) -> None:
        self.name = name
        self.path = directory / file_name
        self._partial = directory / f".{file_name}.partial-{secrets.token_hex(4)}"
        self._hash = hashlib.sha256()
        self.size = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._file = self._partial.open("xb")
        except OSError as exc:
            raise DownloadFailed(f"cannot write into {directory}: {exc.strerror}") from None

    def write(self, chunk: bytes) -> None:
        """Append a chunk."""
        self._hash.update(chunk)
        self.size += len(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.discard()
            raise DownloadFailed(f"cannot write {self.path}: {exc.strerror}") from None

    def finish(self, expected_sha256: str | None) -> DownloadedOutput:
        """Keep the file if its SHA-256 is the expected one; else remove it and raise."""
        self._file.close()
        digest = self._hash.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256.lower():
            self.discard()
            raise DownloadFailed(
                f"output {self.name}: the downloaded file's SHA-256 is {digest}, the server "
                f"announced {expected_sha256}; not kept (download it again)"
            )
        os.replace(self._partial, self.path)
        return DownloadedOutput(self.name, self.path, self.size, digest)

    def discard(self) -> None:
        """Remove the partial file."""
        self._file.close()
        self._partial.unlink(missing_ok=True)
