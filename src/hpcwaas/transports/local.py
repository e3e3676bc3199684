"""The ``local`` transport: commands run as subprocesses of the server, each in its own group.

Every command gets a new session (hence its own process group), so that killing the group
reaches whatever the command started; and a minimal environment, never the server's own,
which may hold secrets. Output is read as it comes and handed over line by line. Files are
this host's (``local_files``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from pathlib import Path, PurePath

from hpcwaas.transports import local_files
from hpcwaas.transports.base import (
    ChunkSink,
    CommandOutput,
    CommandResult,
    FileEntry,
    LineCallback,
)
from hpcwaas.transports.errors import TransportError, TransportUnavailable
from hpcwaas.transports.lines import READ_CHUNK, OutputPump

log = logging.getLogger(__name__)

SHELL = "/bin/bash"
# Linux refuses one argument longer than 128 KiB (MAX_ARG_STRLEN) with E2BIG; a quoted input
# of the maximum size can get there. Such a script goes to bash through a file descriptor.
_MAX_ARGUMENT_BYTES = 100 * 1024
# Longer lines are split: one log entry must stay a reasonable row.
_POLL_SECONDS = 0.05
# After the command's processes are gone, how long its pipes may stay silent before we stop
# reading: only a process that left the group (setsid) can still hold them open.
_PIPE_IDLE_SECONDS = 2.0


def _script_file(command: str) -> int:
    """A readable descriptor of an unlinked temporary file holding ``command``."""
    fd, path = tempfile.mkstemp(prefix="hpcwaas-step-", suffix=".sh")
    try:
        os.unlink(path)  # nothing to clean up later: the file lives as long as the descriptor
        data = command.encode()
        while data:
            data = data[os.write(fd, data) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def minimal_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a local command: a few basics plus ``extra``, nothing of the server's."""
    env = {
        "PATH": os.environ.get("PATH") or os.defpath,
        "HOME": os.environ.get("HOME") or str(Path.home()),
        "LANG": "C.UTF-8",
        "TMPDIR": tempfile.gettempdir(),
    }
    env.update(extra)
    return env


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group is still running (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # killpg counts zombies, which linger where PID 1 does not reap orphans (containers).
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def kill_leftovers(execution_id: str) -> int:
    """SIGKILL the processes an execution's steps left after a server crash; return how many.

    Every step process carries its execution's ID in its environment (see
    ``prepare_shell_step``), which finds them even when the server died before it
    could note where they ran, and never touches anyone else's processes.
    """
    marker = f"HPCWAAS_EXECUTION_ID={execution_id}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
        except (OSError, ValueError):
            continue
    return killed


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the group; False if the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


async def terminate_group(pgid: int, grace: float) -> None:
    """SIGTERM the whole group, then SIGKILL it if anything remains after ``grace`` seconds."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    _signal_group(pgid, signal.SIGCONT)  # a stopped process only sees SIGTERM once continued
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        if not await asyncio.to_thread(_group_alive, pgid):
            return
        await asyncio.sleep(_POLL_SECONDS)
    if _signal_group(pgid, signal.SIGKILL):
        log.info("process group %d outlived its %.1fs grace: killed", pgid, grace)


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Says when the process itself exits: ``Process.wait()`` also waits for its pipes to close,
    which a background child holding them open can put off forever."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


class LocalCommand:
    """A command running on this host, leader of its own process group."""

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _ExitAwareProtocol,
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        timeout: float | None,
        grace: float,
    ) -> None:
        self._transport = transport
        self._exited = protocol.exited
        self.pid = transport.get_pid()
        # start_new_session makes the child the leader of a new session and process group.
        self.pgid = self.pid
        self._timeout = timeout
        self._grace = grace
        stdout, stderr = protocol.stdout, protocol.stderr
        if stdout is None or stderr is None:
            raise ValueError("the process must have been started with piped stdout and stderr")
        self._pumps = [OutputPump(stdout, on_stdout), OutputPump(stderr, on_stderr)]
        self._killed = False
        self._timed_out = False
        self._stopper: asyncio.Task[None] | None = None

    async def kill(self, grace: float) -> None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; return when it is gone."""
        if self._transport.get_returncode() is None:
            self._killed = True
        await self._stop_group(grace)

    async def wait(self) -> CommandResult:
        """Wait for the command, kill what it left behind, and finish reading its output."""
        try:
            try:
                await asyncio.wait_for(self._exited.wait(), self._timeout)
            except TimeoutError:
                self._timed_out = self._killed = True
                await self._stop_group(self._grace)
                await self._exited.wait()
            # Processes the command left running (`cmd &` without `wait`) end with it.
            await self._stop_group(self._grace)
            await self._drain()
        except asyncio.CancelledError:
            # Closing the transport now would SIGKILL the shell at once: let the stopper go first.
            stopper = self._start_stopper(self._grace)
            stopper.add_done_callback(lambda _: self._transport.close())
            for pump in self._pumps:
                pump.task.cancel()
            raise
        self._transport.close()  # the pipes, if a process outside the group still holds them
        code = self._transport.get_returncode()
        if code is None:  # cannot happen once it exited; keeps the type exact
            raise RuntimeError(f"process {self.pid} has no exit status after it exited")
        if code < 0:
            return CommandResult(128 - code, self._killed, self._timed_out, signal=-code)
        return CommandResult(code, self._killed, self._timed_out)

    def _start_stopper(self, grace: float) -> asyncio.Task[None]:
        if self._stopper is None:
            self._stopper = asyncio.create_task(terminate_group(self.pgid, grace))
        return self._stopper

    async def _stop_group(self, grace: float) -> None:
        # Shielded: a caller giving up must not leave the group half-killed.
        await asyncio.shield(self._start_stopper(grace))

    async def _drain(self) -> None:
        tasks = [pump.task for pump in self._pumps]
        loop = asyncio.get_running_loop()
        while True:
            _, pending = await asyncio.wait(tasks, timeout=_POLL_SECONDS * 10)
            if not pending:
                break
            now = loop.time()
            if min(pump.idle_for(now) for pump in self._pumps) > _PIPE_IDLE_SECONDS:
                log.warning(
                    "process group %d: a process that left it holds its output open", self.pgid
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
        for task in tasks:
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.error("reading the output of process %d failed: %r", self.pid, exc)


class LocalTransport:
    """Runs command lines with ``/bin/bash -c`` on this host."""

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
    ) -> LocalCommand:
        """Start ``command`` in ``cwd`` with a minimal environment plus ``env``."""
        loop = asyncio.get_running_loop()
        script_fd = _script_file(command) if len(command.encode()) > _MAX_ARGUMENT_BYTES else None
        arguments = ["-c", command] if script_fd is None else [f"/dev/fd/{script_fd}"]
        try:
            # What asyncio.create_subprocess_exec does, with a protocol that reports the exit.
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitAwareProtocol(limit=READ_CHUNK, loop=loop),
                SHELL,
                *arguments,
                cwd=cwd,
                env=minimal_environment(env),
                start_new_session=True,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=() if script_fd is None else (script_fd,),
            )
        except OSError as exc:
            raise TransportError(exc.strerror or str(exc)) from None
        finally:
            if script_fd is not None:
                os.close(script_fd)
        return LocalCommand(transport, protocol, on_stdout, on_stderr, timeout, grace)

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float | None = 60
    ) -> CommandOutput:
        """Run ``command`` in this process's directory with a minimal environment; its output.

        Past ``timeout`` its whole process group is killed and TransportUnavailable raised.
        """
        script_fd = _script_file(command) if len(command.encode()) > _MAX_ARGUMENT_BYTES else None
        arguments = ["-c", command] if script_fd is None else [f"/dev/fd/{script_fd}"]
        try:
            process = await asyncio.create_subprocess_exec(
                SHELL,
                *arguments,
                env=minimal_environment({}),
                start_new_session=True,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=() if script_fd is None else (script_fd,),
            )
        except OSError as exc:
            raise TransportError(f"cannot run a command on this host: {exc.strerror}") from None
        finally:
            if script_fd is not None:
                os.close(script_fd)
        try:
            stdout, stderr = await asyncio.wait_for(
                process.communicate(None if stdin is None else stdin.encode()), timeout
            )
        except TimeoutError:
            raise TransportUnavailable(
                f"a command on this host did not finish within {timeout} s"
            ) from None
        finally:
            # Whatever the command left running, or all of it when given up, ends with it.
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
        code = process.returncode
        if code is None:  # cannot happen once waited for; keeps the type exact
            raise RuntimeError(f"process {process.pid} has no exit status after it exited")
        code = code if code >= 0 else 128 - code
        text = stdout.decode("utf-8", errors="replace")
        return CommandOutput(code, text, stderr.decode("utf-8", errors="replace"), stdout)

    async def put_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        """Write ``data`` to ``path``, creating its parents: whole, with ``mode``."""
        await local_files.write_atomically(path, _one_chunk(data), mode)

    async def write_file(
        self, path: str, chunks: AsyncIterable[bytes], *, mode: int = 0o600
    ) -> None:
        """Write the chunks to ``path``: all or nothing."""
        await local_files.write_atomically(path, chunks, mode)

    async def exists(self, path: str) -> bool:
        """Whether something is at ``path``."""
        return os.path.lexists(path)

    async def stat(self, path: str) -> FileEntry | None:
        """What is at ``path`` (symlinks followed), or None."""
        return local_files.stat(path)

    async def walk(self, path: str) -> list[FileEntry]:
        """Everything below directory ``path``, parents first."""
        return await asyncio.to_thread(local_files.walk, path)

    async def read_file(self, path: str, sink: ChunkSink) -> None:
        """Pass the bytes of file ``path`` to ``sink``, chunk by chunk."""
        await local_files.read(path, sink)


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
