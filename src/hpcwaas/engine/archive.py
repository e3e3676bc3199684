"""A tar.gz archive written as a stream: a directory of a place becomes one stored file.

Entries are added one at a time and their bytes passed on as they come, so a directory is
never held in memory; the gzip stream goes to an async ``write``.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Awaitable, Callable

from hpcwaas.catalog.kinds.transfers import TransferError

BLOCK = tarfile.BLOCKSIZE
Write = Callable[[bytes], Awaitable[None]]


class TarGzStream:
    """tar (PAX) members, gzip-compressed, passed to ``write``."""

    def __init__(self, write: Write) -> None:
        self._write = write
        # wbits 31: a gzip header and trailer around the deflate stream
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31)
        self._expected = 0
        self._written = 0
        self._name = ""

    async def _out(self, data: bytes) -> None:
        compressed = self._zip.compress(data)
        if compressed:
            await self._write(compressed)

    async def directory(self, name: str, mode: int, mtime: int) -> None:
        """Add a directory entry."""
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = mode & 0o7777
        info.mtime = mtime
        await self._out(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    async def start_file(self, name: str, size: int, mode: int, mtime: int) -> None:
        """Add a regular file's header; its ``size`` bytes follow through ``data``."""
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = mode & 0o7777
        info.mtime = mtime
        self._name, self._expected, self._written = name, size, 0
        await self._out(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    async def data(self, chunk: bytes) -> None:
        """Bytes of the current file."""
        self._written += len(chunk)
        if self._written > self._expected:
            raise TransferError(f"{self._name} grew while it was being copied; copy it again")
        await self._out(chunk)

    async def end_file(self) -> None:
        """Close the current file (padding it to whole blocks)."""
        if self._written != self._expected:
            raise TransferError(f"{self._name} shrank while it was being copied; copy it again")
        remainder = self._expected % BLOCK
        if remainder:
            await self._out(b"\0" * (BLOCK - remainder))

    async def close(self) -> None:
        """End the archive (two zero blocks) and the gzip stream."""
        await self._out(b"\0" * (2 * BLOCK))
        tail = self._zip.flush()
        if tail:
            await self._write(tail)
