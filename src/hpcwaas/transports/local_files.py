"""Files on this host: what ``LocalTransport`` does with them.

Writes are atomic (a hidden partial file renamed into place); failures are
``TransportError``, a file to read that is missing ``FileMissing``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
from collections.abc import AsyncIterable
from pathlib import Path

from hpcwaas.transports.base import CHUNK_BYTES, ChunkSink, FileEntry, file_kind
from hpcwaas.transports.errors import FileMissing, TransportError


async def write_atomically(path: str, chunks: AsyncIterable[bytes], mode: int) -> None:
    """Write ``chunks`` to ``path``, creating its parents: whole with ``mode``, or not at all."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except OSError as exc:
        raise TransportError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # the umask may have narrowed it, as over SFTP
            async for chunk in chunks:
                await asyncio.to_thread(out.write, chunk)
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise TransportError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def stat(path: str) -> FileEntry | None:
    """What is at ``path`` (symlinks followed), or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TransportError(f"cannot read {path}: {exc.strerror}") from None
    return FileEntry("", file_kind(info.st_mode), info.st_size, info.st_mode, int(info.st_mtime))


def walk(path: str) -> list[FileEntry]:
    """Everything below directory ``path``, parents before children, symlinks not followed."""
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
                    file_kind(info.st_mode),
                    info.st_size,
                    info.st_mode,
                    int(info.st_mtime),
                )
            )
    return found


async def read(path: str, sink: ChunkSink) -> None:
    """Pass the bytes of file ``path`` to ``sink``, chunk by chunk."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        error = FileMissing if exc.errno == errno.ENOENT else TransportError
        raise error(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as source:
        while chunk := await asyncio.to_thread(source.read, CHUNK_BYTES):
            await sink(chunk)
