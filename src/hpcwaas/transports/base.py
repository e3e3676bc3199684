"""The transport interface: every operation the engine needs in a place (this host, a
cluster account): start a command and stream its output, run one and capture its output,
write files and read them.

Failures are ``TransportError`` subclasses (``transports/errors.py``).
"""

from __future__ import annotations

import stat
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal, Protocol

# Called once per line of output (without its newline). Awaited, so that a slow consumer
# slows the reader down and, through the pipe, the command itself.
LineCallback = Callable[[str], Awaitable[None]]
# Called with each chunk of a file read; awaited, like a LineCallback.
ChunkSink = Callable[[bytes], Awaitable[None]]
FileKind = Literal["file", "dir", "symlink", "other"]
# Bytes of a file read at once, at most.
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CommandResult:
    """How a command ended.

    ``exit_code`` follows the shell's convention: 128 + N when killed by signal N.
    ``killed`` is true when ``kill()`` was called before the command ended on its own;
    ``timed_out`` when the command outlived its timeout and was killed for it.
    """

    exit_code: int
    killed: bool = False
    timed_out: bool = False
    signal: int | None = None


@dataclass(frozen=True)
class CommandOutput:
    """How a command run to its end went: ``exit_code`` is 128 + N when killed by signal N.

    ``stdout`` and ``stderr`` are decoded as UTF-8, undecodable bytes replaced (safe to log
    and show); ``stdout_bytes`` is stdout exactly as it came.
    """

    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class FileEntry:
    """One file: its path relative to the walked directory, kind, size, mode and mtime."""

    relative: str
    kind: FileKind
    size: int
    mode: int
    mtime: int


def file_kind(mode: int) -> FileKind:
    """The kind of file that ``mode`` (``st_mode``) describes."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


class RunningCommand(Protocol):
    """A command that was started; ``wait()`` once for its result, ``kill()`` at any time."""

    async def wait(self) -> CommandResult:
        """Wait until the command and its output streams have ended."""
        ...

    async def kill(self, grace: float) -> None:
        """Ask the command (all its processes) to stop; force it after ``grace`` seconds."""
        ...


class Transport(Protocol):
    """Runs commands and moves files in one place (this host, a cluster's login node...).

    Relative paths are relative to the place's home: the server's working directory on
    this host, the login's home directory over SSH.
    """

    async def start(
        self,
        command: str,
        *,
        cwd: PurePath | str,
        env: Mapping[str, str],
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        timeout: float | None = None,
        grace: float = 5.0,
    ) -> RunningCommand:
        """Start ``command`` (a shell command line) in ``cwd`` with ``env`` added."""
        ...

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float | None = 60
    ) -> CommandOutput:
        """Run ``command`` (a shell command line) to its end and return its output.

        Past ``timeout`` it is given up with TransportUnavailable; use ``start`` for commands
        that must be killable or whose output is long.
        """
        ...

    async def put_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        """Write ``data`` to ``path``, creating its parents: it appears whole, with ``mode``."""
        ...

    async def write_file(
        self, path: str, chunks: AsyncIterable[bytes], *, mode: int = 0o600
    ) -> None:
        """Write the chunks to ``path`` like ``put_file``: all or nothing (a partial file is
        removed, whatever the chunks raise)."""
        ...

    async def exists(self, path: str) -> bool:
        """Whether something (even a dangling symlink) is at ``path``."""
        ...

    async def stat(self, path: str) -> FileEntry | None:
        """What is at ``path`` (symlinks followed), or None when nothing is."""
        ...

    async def walk(self, path: str) -> list[FileEntry]:
        """Everything below directory ``path``, parents before children, symlinks not followed."""
        ...

    async def read_file(self, path: str, sink: ChunkSink) -> None:
        """Pass the bytes of file ``path`` to ``sink``, chunk by chunk; FileMissing if none."""
        ...
