"""Where an execution's steps run: this host, or a cluster account reached over SSH."""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from hpcwaas.catalog.kinds.base import ClusterDefaults, outputs_file
from hpcwaas.engine.jobs import JobTracker
from hpcwaas.engine.outputs import OutputValue, decode_output, read_output
from hpcwaas.engine.placefiles import ClusterFiles, LocalFiles, PlaceFiles
from hpcwaas.schedulers.slurm_options import SlurmDefaults
from hpcwaas.settings import SlurmEnvironment
from hpcwaas.transports.base import Transport
from hpcwaas.transports.errors import TransportError, TransportUnavailable
from hpcwaas.transports.ssh import SshTarget

T = TypeVar("T")

# Told once per run of an execution whether its SSH key got it onto the cluster:
# (target, None) when it did, (target, why not) when it did not.
KeyUseRecorder = Callable[[SshTarget, str | None], Awaitable[None]]


def cluster_work_dir(environment: SlurmEnvironment, execution_id: str) -> str:
    """An execution's directory on a cluster, relative to the account's home unless absolute."""
    return f"{environment.work_root}/executions/{execution_id}"


class Place(Protocol):
    """The working directory and the means of one execution."""

    transport: Transport
    work_dir: Path | str
    # set where steps may be batch jobs
    cluster: ClusterPlace | None
    # the files transfer steps (stage_in, stage_out) read and write
    files: PlaceFiles

    async def prepare(self) -> None:
        """Create the working directory (only its owner may enter it)."""
        ...

    async def read_output(self, name: str, relative: str, max_bytes: int) -> OutputValue:
        """An output file left under the working directory, as text."""
        ...

    def outputs_path(self, step: str) -> str:
        """The file where ``step`` writes its outputs, as the step's process finds it."""
        ...

    async def read_step_outputs(self, step: str, max_bytes: int) -> bytes | None:
        """What ``step`` wrote to its outputs file (up to ``max_bytes`` + 1); None if nothing."""
        ...

    async def clear_step_outputs(self, step: str) -> None:
        """Remove what an earlier attempt of ``step`` wrote to its outputs file."""
        ...


@dataclass(frozen=True)
class Places:
    """An execution's places: its environment's (the home), and one per other environment its
    steps name (``environment:``)."""

    home_environment: str
    home: Place
    others: Mapping[str, Place] = field(default_factory=dict)

    def of(self, environment: str | None) -> Place:
        """Where a step naming ``environment`` (None: none) runs."""
        if environment is None or environment == self.home_environment:
            return self.home
        return self.others[environment]

    @property
    def survive_restart(self) -> bool:
        """Whether the execution is followed after a restart of the server (its environment is
        a cluster): its jobs, wherever they are, then run on when the server stops. With a
        ``local`` environment every step ends with the server."""
        return self.home.cluster is not None

    def clusters(self) -> list[ClusterPlace]:
        """The places on a cluster, the home first if it is one."""
        every = [self.home, *self.others.values()]
        return [p.cluster for p in every if p.cluster is not None]


class LocalPlace:
    """``settings.work_dir/<execution id>`` on this host."""

    cluster: ClusterPlace | None = None

    def __init__(self, root: Path, execution_id: str, transport: Transport) -> None:
        if not execution_id or execution_id in (".", "..") or "/" in execution_id:
            raise ValueError(f"execution ID {execution_id!r} cannot name a directory")
        self._root = root
        self.work_dir: Path | str = root / execution_id
        self.transport = transport
        self.files: PlaceFiles = LocalFiles(root / execution_id, transport)

    async def prepare(self) -> None:
        work_dir = Path(self.work_dir)
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        work_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(work_dir, 0o700)  # mkdir's mode is masked by the umask

    async def read_output(self, name: str, relative: str, max_bytes: int) -> OutputValue:
        return await asyncio.to_thread(read_output, Path(self.work_dir), name, relative, max_bytes)

    def outputs_path(self, step: str) -> str:
        return str(Path(self.work_dir).absolute() / outputs_file(step))

    async def read_step_outputs(self, step: str, max_bytes: int) -> bytes | None:
        def read() -> bytes | None:
            try:
                with open(self.outputs_path(step), "rb") as file:
                    return file.read(max_bytes + 1)
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def clear_step_outputs(self, step: str) -> None:
        Path(self.outputs_path(step)).unlink(missing_ok=True)


class ClusterPlace:
    """``<work_root>/executions/<execution id>`` in the home of the user's cluster account."""

    def __init__(
        self,
        environment: SlurmEnvironment,
        transport: Transport,
        tracker: JobTracker,
        target: SshTarget,
        execution_id: str,
        on_key_use: KeyUseRecorder | None = None,
    ) -> None:
        if not execution_id or "/" in execution_id or execution_id in (".", ".."):
            raise ValueError(f"execution ID {execution_id!r} cannot name a directory")
        self.environment = environment
        self.transport = transport
        self.tracker = tracker
        self.target = target
        self.work_dir: Path | str = cluster_work_dir(environment, execution_id)
        self.files: PlaceFiles = ClusterFiles(transport, str(self.work_dir))
        self.cluster: ClusterPlace | None = self
        self._on_key_use = on_key_use
        self._key_use_told = False
        # The working directory from the root, once the cluster said (``pwd``).
        self._absolute_dir: str | None = None

    async def retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation``, retrying with backoff while the cluster cannot be reached.

        Gives up (re-raising) after the environment's ``unreachable_deadline``.
        """
        deadline = time.monotonic() + self.environment.unreachable_deadline
        delay = 1.0
        while True:
            try:
                return await operation()
            except TransportUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _key_used(self, failure: str | None) -> None:
        """Tell the recorder, the first time only, how the execution's key was used."""
        if self._key_use_told or self._on_key_use is None:
            return
        self._key_use_told = True
        await self._on_key_use(self.target, failure)

    async def prepare(self) -> None:
        quoted = shlex.quote(str(self.work_dir))
        try:
            result = await self.retrying(
                lambda: self.transport.run(
                    f"mkdir -p {quoted} && chmod 700 {quoted} && cd {quoted} && pwd"
                )
            )
        except TransportError as exc:
            await self._key_used(str(exc))
            raise
        await self._key_used(None)
        if result.exit_code == 0:
            self._remember_dir(result.stdout)
        if result.exit_code != 0:
            raise OSError(
                f"cannot create {self.work_dir} on {self.target.host}: "
                f"{result.stderr.strip()[:200]}"
            )

    async def reconnect(self) -> None:
        """After a restart: reach the cluster once with the execution's key, and say so.

        A failure is only told (the job tracker retries on its own schedule), never raised.
        """
        quoted = shlex.quote(str(self.work_dir))
        try:
            result = await self.transport.run(f"cd {quoted} && pwd", timeout=30)
        except TransportError as exc:
            await self._key_used(str(exc))
            return
        await self._key_used(None)
        if result.exit_code == 0:
            self._remember_dir(result.stdout)

    def _remember_dir(self, pwd_output: str) -> None:
        lines = pwd_output.strip().splitlines()
        if lines and lines[-1].startswith("/"):
            self._absolute_dir = lines[-1]

    def outputs_path(self, step: str) -> str:
        # Steps run in the working directory; an absolute path still holds after a `cd`.
        if self._absolute_dir is not None:
            return f"{self._absolute_dir}/{outputs_file(step)}"
        if str(self.work_dir).startswith("/"):
            return f"{self.work_dir}/{outputs_file(step)}"
        return outputs_file(step)

    async def read_step_outputs(self, step: str, max_bytes: int) -> bytes | None:
        path = shlex.quote(f"{self.work_dir}/{outputs_file(step)}")
        result = await self.transport.run(f"test -f {path} && head -c {max_bytes + 1} -- {path}")
        return result.stdout_bytes if result.exit_code == 0 else None

    async def clear_step_outputs(self, step: str) -> None:
        path = shlex.quote(f"{self.work_dir}/{outputs_file(step)}")
        await self.transport.run(f"rm -f -- {path}")

    async def read_output(self, name: str, relative: str, max_bytes: int) -> OutputValue:
        path = shlex.quote(f"{self.work_dir}/{relative}")
        # -f: a regular file only; head reads one byte more than allowed, to see a cut
        result = await self.transport.run(f"test -f {path} && head -c {max_bytes + 1} -- {path}")
        if result.exit_code != 0:
            return OutputValue(None, f"Output {name}: file {relative} not found; its value is null")
        return decode_output(name, relative, result.stdout_bytes, max_bytes)


def cluster_defaults(environment: SlurmEnvironment) -> ClusterDefaults:
    """What a Slurm environment adds to the steps that run on it (a run's and a dry run's)."""
    defaults = SlurmDefaults(
        partition=environment.defaults.partition,
        qos=environment.defaults.qos,
        account=environment.defaults.account,
        time=environment.defaults.time,
    )
    return ClusterDefaults(defaults, tuple(environment.pycompss_modules))
