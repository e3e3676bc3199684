"""Files over SFTP: what ``SshTransport`` does with the files of a cluster account.

Each function takes an open SFTP client; ``SshPool.with_sftp`` provides it and turns SFTP
failures into ``SshError`` (a missing file into ``FileMissing``). Paths are relative to the
login's home unless absolute.
"""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import AsyncIterable

import asyncssh

from hpcwaas.transports.base import CHUNK_BYTES, ChunkSink, FileEntry, file_kind


async def write_atomically(
    sftp: asyncssh.SFTPClient, path: str, chunks: AsyncIterable[bytes], mode: int
) -> None:
    """Write ``chunks`` to ``path``, creating its parent directories: under a hidden
    temporary name first, renamed once complete, so the file appears whole with ``mode``
    or not at all."""
    parent = posixpath.dirname(path)
    # Usually the directory is there already (a step's working directory): one stat instead
    # of makedirs' one mkdir per path component, each a round trip before sbatch can run.
    if parent and not await sftp.isdir(parent):
        await sftp.makedirs(parent, exist_ok=True)
    name = posixpath.basename(path)
    partial = posixpath.join(parent, f".{name}.partial-{secrets.token_hex(4)}")
    try:
        async with sftp.open(partial, "wb", asyncssh.SFTPAttrs(permissions=mode)) as remote:
            async for chunk in chunks:
                await remote.write(chunk)
        await sftp.chmod(partial, mode)  # the umask may have narrowed it
        await sftp.posix_rename(partial, path)
    except BaseException:
        try:
            await sftp.remove(partial)
        except (asyncssh.Error, OSError):
            pass
        raise


async def exists(sftp: asyncssh.SFTPClient, path: str) -> bool:
    """Whether something (even a dangling symlink) is at ``path``."""
    return bool(await sftp.lexists(path))


async def stat(sftp: asyncssh.SFTPClient, path: str) -> FileEntry | None:
    """What is at ``path`` (symlinks followed), or None."""
    try:
        attrs = await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return None
    return _entry("", attrs)


async def walk(sftp: asyncssh.SFTPClient, path: str) -> list[FileEntry]:
    """Everything below directory ``path``, parents before children, symlinks not followed."""
    found: list[FileEntry] = []
    pending = [""]
    while pending:
        relative = pending.pop(0)
        names = [
            n
            async for n in sftp.scandir(posixpath.join(path, relative) if relative else path)
            if n.filename not in (".", "..")
        ]
        for name in sorted(names, key=lambda n: str(n.filename)):
            child = posixpath.join(relative, str(name.filename))
            entry = _entry(child, name.attrs)
            found.append(entry)
            if entry.kind == "dir":
                pending.append(child)
    return found


async def read(sftp: asyncssh.SFTPClient, path: str, sink: ChunkSink) -> None:
    """Pass the bytes of file ``path`` to ``sink``, chunk by chunk."""
    async with sftp.open(path, "rb", encoding=None) as remote:
        while chunk := await remote.read(CHUNK_BYTES):
            # opened in binary mode ("rb", no encoding): the chunks are bytes
            await sink(chunk if isinstance(chunk, bytes) else chunk.encode())


def _entry(relative: str, attrs: asyncssh.SFTPAttrs) -> FileEntry:
    mode = attrs.permissions or 0
    return FileEntry(relative, file_kind(mode), attrs.size or 0, mode, int(attrs.mtime or 0))
