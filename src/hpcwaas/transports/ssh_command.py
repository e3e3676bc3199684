"""Streaming commands over SSH: what ``SshTransport.start`` starts.

The channel runs ``/bin/bash -s`` (whatever the login's shell) and gets a small script on
its stdin, which enters ``cwd`` (creating it), exports ``env`` (quoted, never through SSH
environment requests, which servers mostly refuse), and starts the command under
``setsid`` so that it leads a process group of its own. The group leader first prints
its PGID on stderr behind a marker, which we strip; ``kill()`` then signals that whole
group over a second channel, as the local transport does on this host. The script waits
for the command and, like the local transport, ends what it left running in its group.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
from collections.abc import Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import asyncssh

from hpcwaas.transports.base import CommandResult, LineCallback
from hpcwaas.transports.lines import OutputPump
from hpcwaas.transports.ssh_connection import (
    Lease,
    SshError,
    SshTarget,
    SshUnavailable,
    exit_code_of,
)

if TYPE_CHECKING:
    from hpcwaas.transports.ssh import SshPool

log = logging.getLogger(__name__)

PGID_MARKER = "__hpcwaas_pgid__="
_STREAM_ERRORS = (asyncssh.Error, OSError)  # the connection dropped
_POLL_SECONDS = 0.05
# After the exit status came, how long the output may stay silent before we stop reading:
# only a process that left the group (its own setsid) can still hold it open.
_PIPE_IDLE_SECONDS = 2.0
_PGID_WAIT_SECONDS = 5.0
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# stop_group PGID TENTHS: SIGTERM the group, SIGKILL it if it outlives TENTHS/10 seconds.
# group_alive ignores zombies, which `kill -0` counts: where init is slow to reap the
# orphans, a group would otherwise look alive for the whole grace period.
_STOP_GROUP = """group_alive() {
  if command -v ps >/dev/null 2>&1; then
    ps -e -o pgid= -o stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
  else
    kill -0 -- "-$1" 2>/dev/null
  fi
}
stop_group() {
  kill -TERM -- "-$1" 2>/dev/null || return 0
  kill -CONT -- "-$1" 2>/dev/null
  i=0
  while [ "$i" -lt "$2" ]; do
    group_alive "$1" || return 0
    sleep 0.1
    i=$((i + 1))
  done
  kill -KILL -- "-$1" 2>/dev/null
  return 0
}
"""
# Run by the group leader: announce the PGID (its own PID, once setsid made it leader),
# then become the command.
_LEADER = f'printf "%s%d\\n" {PGID_MARKER} "$$" >&2; exec /bin/bash -c "$1"'
_FILE_LEADER = f'printf "%s%d\\n" {PGID_MARKER} "$$" >&2; exec /bin/bash "$1"'
# Linux refuses one argument longer than 128 KiB (MAX_ARG_STRLEN); a quoted input of the
# maximum size can make a command that long.
_MAX_ARGUMENT_BYTES = 100 * 1024


def command_script(command: str, cwd: PurePath | str, env: Mapping[str, str], grace: float) -> str:
    """The bash script that runs ``command`` in ``cwd`` with ``env`` in a group of its own."""
    lines = [_STOP_GROUP]
    directory = shlex.quote(str(cwd))
    lines.append(
        f"mkdir -p -- {directory} && cd -- {directory} || "
        f"{{ echo 'cannot enter the directory '{directory} >&2; exit 1; }}"
    )
    for name, value in env.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(value)}")
    # In the background of a non-interactive shell, the command's stdin is /dev/null.
    if len(command.encode()) <= _MAX_ARGUMENT_BYTES:
        lines.append(
            f"setsid -w /bin/bash -c {shlex.quote(_LEADER)} hpcwaas {shlex.quote(command)} &"
        )
        lines.append('leader=$!; wait "$leader"; status=$?')
    else:
        # Too long for one argument of setsid: the command goes into a private file
        # (printf is a builtin, so no argument limit), removed once the command has ended.
        lines.append(
            'script=$(mktemp "${TMPDIR:-/tmp}/hpcwaas-step.XXXXXX") || '
            "{ echo 'cannot create a temporary file for the step' >&2; exit 1; }"
        )
        lines.append(f'printf "%s" {shlex.quote(command)} > "$script"')
        lines.append(f'setsid -w /bin/bash -c {shlex.quote(_FILE_LEADER)} hpcwaas "$script" &')
        lines.append('leader=$!; wait "$leader"; status=$?; rm -f -- "$script"')
    lines.append(f'stop_group "$leader" {_tenths(grace)}')
    lines.append('exit "$status"')
    return "\n".join(lines) + "\n"


def stop_script(pgid: int, grace: float) -> str:
    """The bash script that ends process group ``pgid`` (SIGKILL after ``grace`` seconds)."""
    return f"{_STOP_GROUP}stop_group {int(pgid)} {_tenths(grace)}\n"


def _tenths(seconds: float) -> int:
    return max(0, round(seconds * 10))


class SshCommand:
    """A command running on a remote host, leader of its own process group there."""

    def __init__(
        self,
        pool: SshPool,
        target: SshTarget,
        process: asyncssh.SSHClientProcess[bytes],
        lease: Lease,
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        timeout: float | None,
        grace: float,
    ) -> None:
        self._pool = pool
        self._target = target
        self._process = process
        self._lease = lease
        self._timeout = timeout
        self._grace = grace
        self._pgid: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pumps = [
            OutputPump(process.stdout, on_stdout, read_errors=_STREAM_ERRORS),
            OutputPump(
                process.stderr, on_stderr, intercept=self._take_pgid, read_errors=_STREAM_ERRORS
            ),
        ]
        self._closed = asyncio.ensure_future(process.wait_closed())
        self._closed.add_done_callback(self._channel_closed)
        self._killed = False
        self._timed_out = False
        self._stopper: asyncio.Task[None] | None = None

    def _take_pgid(self, line: str) -> bool:
        """Consume the line the remote group leader prints with its process group ID."""
        if self._pgid.done() or not line.startswith(PGID_MARKER):
            return False
        number = line[len(PGID_MARKER) :]
        if not number.isdigit():
            return False
        self._pgid.set_result(int(number))
        return True

    @property
    def pgid(self) -> int | None:
        """The remote process group, once its leader announced it."""
        return self._pgid.result() if self._pgid.done() else None

    def _channel_closed(self, closed: asyncio.Future[None]) -> None:
        # The session slot is free again once the channel is, even if nobody waits.
        self._lease.release()
        if not closed.cancelled() and closed.exception() is not None:
            log.info("channel to %s closed: %r", self._target.where, closed.exception())

    def _exited(self) -> bool:
        return self._closed.done() or self._exit_code() is not None

    def _exit_code(self) -> int | None:
        return exit_code_of(self._process.exit_status, self._process.exit_signal)

    async def kill(self, grace: float) -> None:
        """SIGTERM the remote group, SIGKILL it after ``grace`` seconds; return when it is gone."""
        if not self._exited():
            self._killed = True
        await asyncio.shield(self._start_stopper(grace))

    async def wait(self) -> CommandResult:
        """Wait for the command and its output; raise SshUnavailable if the connection dropped."""
        try:
            try:
                await asyncio.wait_for(self._wait_exit(), self._timeout)
            except TimeoutError:
                self._timed_out = self._killed = True
                await asyncio.shield(self._start_stopper(self._grace))
            await self._drain()
        except asyncio.CancelledError:
            stopper = self._start_stopper(self._grace)
            stopper.add_done_callback(lambda _: self._finish())
            for pump in self._pumps:
                pump.task.cancel()
            raise
        self._finish()
        code = self._exit_code()
        if code is None:
            await self._kill_orphans()
            raise SshUnavailable(
                f"the connection to {self._target.where} dropped while a command ran"
            )
        signum = code - 128 if 128 < code <= 128 + 64 else None
        return CommandResult(code, self._killed, self._timed_out, signal=signum)

    def _finish(self) -> None:
        self._process.close()
        self._lease.release()

    async def _wait_exit(self) -> None:
        while not self._exited():
            await asyncio.wait({self._closed}, timeout=_POLL_SECONDS)

    async def _drain(self) -> None:
        """Read the output to its end, or until it stays silent long after the exit."""
        tasks = {pump.task for pump in self._pumps}
        loop = asyncio.get_running_loop()
        while True:
            _, pending = await asyncio.wait(tasks, timeout=_POLL_SECONDS * 10)
            if not pending:
                break
            now = loop.time()
            if (
                self._exit_code() is not None
                and min(pump.idle_for(now) for pump in self._pumps) > _PIPE_IDLE_SECONDS
            ):
                log.warning(
                    "%s: a process that left its group holds the output open", self._target.where
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break

    def _start_stopper(self, grace: float) -> asyncio.Task[None]:
        if self._stopper is None:
            self._stopper = asyncio.create_task(self._stop(grace))
        return self._stopper

    async def _stop(self, grace: float) -> None:
        # The leader announces its group at once, unless the command never started.
        deadline = asyncio.get_running_loop().time() + _PGID_WAIT_SECONDS
        while not self._pgid.done() and not self._exited():
            if asyncio.get_running_loop().time() > deadline:
                break
            either: set[asyncio.Future[Any]] = {self._pgid, self._closed}
            await asyncio.wait(either, timeout=_POLL_SECONDS)
        pgid = self.pgid
        if pgid is not None and not self._exited():
            try:
                await self._pool._run(
                    self._target,
                    "/bin/bash -s",
                    stdin=stop_script(pgid, grace),
                    timeout=grace + 30,
                    bounded=False,
                )
            except SshError as exc:
                log.warning(
                    "cannot signal process group %d on %s: %s", pgid, self._target.where, exc
                )
        try:
            # The script's `wait` returns once the leader is gone: then the channel closes.
            await asyncio.wait_for(self._wait_exit(), grace + 5)
        except TimeoutError:
            log.warning("command on %s outlived its kill: channel closed", self._target.where)
            self._process.close()

    async def _kill_orphans(self) -> None:
        """After a dropped connection, end the group it left running, if we can reach it."""
        pgid = self.pgid
        if pgid is None:
            return
        try:
            await self._pool._run(
                self._target,
                "/bin/bash -s",
                stdin=stop_script(pgid, self._grace),
                timeout=self._grace + 30,
                bounded=False,
            )
        except SshError as exc:
            log.warning("process group %d on %s may still run: %s", pgid, self._target.where, exc)
