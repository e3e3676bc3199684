"""Files of an execution's place, for transfer steps: this host's files, or SFTP on a cluster.

Paths given by a workflow are resolved by ``resolve``: relative ones are under the execution's
working directory. On the ``local`` environment (the server's own host) a path must stay
inside that directory; on a cluster it may be anything the user's account can reach.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import secrets
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import asyncssh

from hpcwaas.catalog.kinds.transfers import TransferError
from hpcwaas.transports.ssh import SshPool, SshTarget, write_atomically

CHUNK_BYTES = 1024 * 1024
FileKind = Literal["file", "dir", "symlink", "other"]
Sink = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class FileEntry:
    """One file: its path relative to the walked directory, kind, size, mode and mtime."""

    relative: str
    kind: FileKind
    size: int
    mode: int
    mtime: int


def _kind(mode: int) -> FileKind:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


class PlaceFiles(Protocol):
    """What transfer steps do with the files of a place."""

    def resolve(self, path: str) -> str:
        """The path to use for ``path`` (relative: under the working directory)."""
        ...

    async def exists(self, path: str) -> bool:
        """Whether something is at ``path`` (resolved)."""
        ...

    async def write(self, path: str, chunks: AsyncIterator[bytes], mode: int = 0o600) -> None:
        """Write the chunks to ``path``: all or nothing (a partial file is removed)."""
        ...

    async def entry(self, path: str) -> FileEntry | None:
        """What is at ``path`` (symlinks followed), or None."""
        ...

    async def walk(self, path: str) -> list[FileEntry]:
        """Everything below directory ``path``, parents before children, symlinks not followed."""
        ...

    async def read(self, path: str, sink: Sink) -> None:
        """Pass the file's bytes to ``sink``, chunk by chunk."""
        ...


class LocalFiles:
    """The execution's working directory on this host."""

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir

    def resolve(self, path: str) -> str:
        base = self._work_dir.resolve()
        target = (base / path).resolve()
        if target == base or not target.is_relative_to(base):
            raise TransferError(
                f"path {path!r} is outside the execution's working directory; on a local "
                "environment transfer paths are relative and stay inside it"
            )
        return str(target)

    async def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    async def write(self, path: str, chunks: AsyncIterator[bytes], mode: int = 0o600) -> None:
        target = Path(path)
        partial = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        except OSError as exc:
            raise TransferError(f"cannot write {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    await asyncio.to_thread(out.write, chunk)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise TransferError(f"cannot write {path}: {exc.strerror}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    async def entry(self, path: str) -> FileEntry | None:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransferError(f"cannot read {path}: {exc.strerror}") from None
        return FileEntry("", _kind(info.st_mode), info.st_size, info.st_mode, int(info.st_mtime))

    async def walk(self, path: str) -> list[FileEntry]:
        return await asyncio.to_thread(self._walk, path)

    def _walk(self, path: str) -> list[FileEntry]:
        found: list[FileEntry] = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in [*dirs, *sorted(files)]:
                full = os.path.join(root, name)
                info = os.lstat(full)
                relative = os.path.relpath(full, path)
                found.append(
                    FileEntry(
                        relative,
                        _kind(info.st_mode),
                        info.st_size,
                        info.st_mode,
                        int(info.st_mtime),
                    )
                )
        return found

    async def read(self, path: str, sink: Sink) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise TransferError(f"cannot read {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as source:
            while chunk := await asyncio.to_thread(source.read, CHUNK_BYTES):
                await sink(chunk)


class ClusterFiles:
    """Files of the user's cluster account, over SFTP."""

    def __init__(self, pool: SshPool, target: SshTarget, work_dir: str) -> None:
        self._pool = pool
        self._target = target
        self._work_dir = work_dir

    def resolve(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self._work_dir, path))

    async def exists(self, path: str) -> bool:
        async def check(sftp: asyncssh.SFTPClient) -> bool:
            return bool(await sftp.lexists(path))

        return await self._pool.with_sftp(self._target, check, f"looking for {path}")

    async def write(self, path: str, chunks: AsyncIterator[bytes], mode: int = 0o600) -> None:
        async def write(sftp: asyncssh.SFTPClient) -> None:
            await write_atomically(sftp, path, chunks, mode)

        await self._pool.with_sftp(self._target, write, f"writing {path}")

    async def entry(self, path: str) -> FileEntry | None:
        async def look(sftp: asyncssh.SFTPClient) -> FileEntry | None:
            try:
                attrs = await sftp.stat(path)
            except asyncssh.SFTPNoSuchFile:
                return None
            return _entry("", attrs)

        return await self._pool.with_sftp(self._target, look, f"reading {path}")

    async def walk(self, path: str) -> list[FileEntry]:
        async def walk(sftp: asyncssh.SFTPClient) -> list[FileEntry]:
            found: list[FileEntry] = []
            pending = [""]
            while pending:
                relative = pending.pop(0)
                names = [
                    n
                    async for n in sftp.scandir(
                        posixpath.join(path, relative) if relative else path
                    )
                    if n.filename not in (".", "..")
                ]
                for name in sorted(names, key=lambda n: str(n.filename)):
                    child = posixpath.join(relative, str(name.filename))
                    entry = _entry(child, name.attrs)
                    found.append(entry)
                    if entry.kind == "dir":
                        pending.append(child)
            return found

        return await self._pool.with_sftp(self._target, walk, f"listing {path}")

    async def read(self, path: str, sink: Sink) -> None:
        async def read(sftp: asyncssh.SFTPClient) -> None:
            async with sftp.open(path, "rb", encoding=None) as remote:
                while chunk := await remote.read(CHUNK_BYTES):
                    # opened in binary mode ("rb", no encoding): the chunks are bytes
                    await sink(chunk if isinstance(chunk, bytes) else chunk.encode())

        await self._pool.with_sftp(self._target, read, f"reading {path}")


def _entry(relative: str, attrs: asyncssh.SFTPAttrs) -> FileEntry:
    mode = attrs.permissions or 0
    return FileEntry(relative, _kind(mode), attrs.size or 0, mode, int(attrs.mtime or 0))
