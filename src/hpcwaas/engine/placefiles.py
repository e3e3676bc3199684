"""Files of an execution's place, for transfer steps: paths resolved, bytes through its transport.

Paths given by a workflow are resolved by ``resolve``: relative ones are under the execution's
working directory. On the ``local`` environment (the server's own host) a path must stay
inside that directory; on a cluster it may be anything the user's account can reach.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path

from hpcwaas.catalog.kinds.transfers import TransferError
from hpcwaas.transports.base import ChunkSink, FileEntry, Transport


class PlaceFiles(ABC):
    """What transfer steps do with the files of a place; ``resolve`` is the place's rule."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @abstractmethod
    def resolve(self, path: str) -> str:
        """The path to use for ``path`` (relative: under the working directory)."""

    async def exists(self, path: str) -> bool:
        """Whether something is at ``path`` (resolved)."""
        return await self._transport.exists(path)

    async def write(self, path: str, chunks: AsyncIterator[bytes], mode: int = 0o600) -> None:
        """Write the chunks to ``path``: all or nothing (a partial file is removed)."""
        await self._transport.write_file(path, chunks, mode=mode)

    async def entry(self, path: str) -> FileEntry | None:
        """What is at ``path`` (symlinks followed), or None."""
        return await self._transport.stat(path)

    async def walk(self, path: str) -> list[FileEntry]:
        """Everything below directory ``path``, parents before children, symlinks not followed."""
        return await self._transport.walk(path)

    async def read(self, path: str, sink: ChunkSink) -> None:
        """Pass the file's bytes to ``sink``, chunk by chunk."""
        await self._transport.read_file(path, sink)


class LocalFiles(PlaceFiles):
    """The execution's working directory on this host: paths must stay inside it."""

    def __init__(self, work_dir: Path, transport: Transport) -> None:
        super().__init__(transport)
        self._work_dir = work_dir

    def resolve(self, path: str) -> str:
        """``path`` under the working directory, symlinks resolved; TransferError if outside."""
        base = self._work_dir.resolve()
        target = (base / path).resolve()
        if target == base or not target.is_relative_to(base):
            raise TransferError(
                f"path {path!r} is outside the execution's working directory; on a local "
                "environment transfer paths are relative and stay inside it"
            )
        return str(target)


class ClusterFiles(PlaceFiles):
    """Files of the user's cluster account."""

    def __init__(self, transport: Transport, work_dir: str) -> None:
        super().__init__(transport)
        self._work_dir = work_dir

    def resolve(self, path: str) -> str:
        """``path`` joined to the working directory (an absolute one stays as it is)."""
        return posixpath.normpath(posixpath.join(self._work_dir, path))
