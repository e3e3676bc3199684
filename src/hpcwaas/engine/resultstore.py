"""The result store: files of stage_out steps under ``<results_dir>/<execution id>/<output>/``.

A file is written under a temporary name, counted and hashed as it comes, and renamed into
place only when complete and within its size limit; anything else leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hpcwaas.catalog.kinds.transfers import TransferError


@dataclass(frozen=True)
class StoredFile:
    """A complete file in the store: its path relative to the store, size and SHA-256."""

    relative: str
    size: int
    sha256: str


class ResultStore:
    """Files kept for executions, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file."""
        return self.root / relative

    def writer(
        self, execution_id: str, output: str, file_name: str, max_bytes: int
    ) -> ResultWriter:
        """A writer of one output's file; ``commit()`` it, or ``discard()`` it on failure."""
        for part in (execution_id, output, file_name):
            if not part or part in (".", "..") or "/" in part:
                raise ValueError(f"{part!r} cannot name a directory of the result store")
        return ResultWriter(self.root, f"{execution_id}/{output}/{file_name}", max_bytes)


class ResultWriter:
    """One file being written into the store."""

    def __init__(self, root: Path, relative: str, max_bytes: int) -> None:
        self.relative = relative
        self.max_bytes = max_bytes
        self.size = 0
        self._final = root / relative
        self._partial = self._final.with_name(f".partial-{secrets.token_hex(4)}")
        self._hash = hashlib.sha256()
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._file = self._partial.open("xb")
        except OSError as exc:
            raise TransferError(f"the result store cannot be written: {exc.strerror}") from None

    async def write(self, chunk: bytes) -> None:
        """Append a chunk; TransferError once the file would pass ``max_bytes``."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TransferError(
                f"the output is larger than max_bytes ({self.max_bytes} bytes); "
                "copy stopped, nothing kept"
            )
        self._hash.update(chunk)
        try:
            await asyncio.to_thread(self._file.write, chunk)
        except OSError as exc:
            # Not an OSError any more: over SFTP that would pass for a dropped connection.
            raise TransferError(f"the result store cannot be written: {exc.strerror}") from None

    def commit(self) -> StoredFile:
        """Move the complete file into place (replacing an earlier one of the same output)."""
        try:
            self._file.close()
            for old in self._final.parent.iterdir():  # a run before may have kept another name
                if old != self._partial and not old.name.startswith(".partial-"):
                    old.unlink()
            os.replace(self._partial, self._final)
        except OSError as exc:
            self.discard()
            raise TransferError(f"the result store cannot be written: {exc.strerror}") from None
        return StoredFile(self.relative, self.size, self._hash.hexdigest())

    def discard(self) -> None:
        """Remove the partial file."""
        self._file.close()
        self._partial.unlink(missing_ok=True)
