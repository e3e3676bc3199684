"""Follows Slurm jobs: one ``squeue`` per (cluster, account) per interval for all their jobs.

Jobs that left the queue get their final state from ``sacct`` when it answers, else from
``scontrol show job``, else from the exit file our batch wrapper writes. Their output files
are read incrementally, many files in one remote command. A dropped connection or a job
briefly missing makes the job UNKNOWN and is retried with backoff, never taken as a failure
on one bad poll; only a cluster unreachable past the environment's deadline fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hpcwaas import telemetry as metrics
from hpcwaas.api.states import LogLevel
from hpcwaas.schedulers import remote_files, slurm
from hpcwaas.schedulers.errors import SchedulerError
from hpcwaas.schedulers.slurm import FinalState, JobState
from hpcwaas.store.logs import Checkpoint
from hpcwaas.transports.base import CommandOutput, Transport
from hpcwaas.transports.errors import TransportError
from hpcwaas.transports.lines import LineSplitter
from hpcwaas.transports.ssh import SshTarget

log = logging.getLogger(__name__)

READ_LIMIT = 256 * 1024  # bytes of one file read per poll
MAX_BACKOFF_SECONDS = 60.0
# Polls a job may be missing from squeue and from every source of a final state.
MISSING_POLLS_LIMIT = 6

# (level, line, checkpoint): the checkpoint, on the last line of each chunk read, says how
# far its file has been read once that line is logged.
LineHandler = Callable[[LogLevel, str, Checkpoint | None], Awaitable[None]]
UnknownHandler = Callable[[bool], Awaitable[None]]
# Told once, when the job is first seen running (it left PENDING).
RunningHandler = Callable[[], Awaitable[None]]
# The transport of a cluster account (``SshPool.transport``).
TransportOf = Callable[[SshTarget], Transport]


class JobLost(Exception):
    """A job could not be followed to its end; the message says why."""


@dataclass
class _Watch:
    job_id: str
    step: str
    outputs: list[tuple[str, LogLevel]]
    exit_path: str | None
    on_line: LineHandler
    on_unknown: UnknownHandler
    on_running: RunningHandler | None
    future: asyncio.Future[FinalState]
    offsets: dict[str, int] = field(default_factory=dict)
    splitters: dict[str, LineSplitter] = field(default_factory=dict)
    missing: int = 0
    unknown: bool = False
    seen_running: bool = False


@dataclass
class _Group:
    """The jobs of one cluster account; one poll loop."""

    target: SshTarget
    interval: float
    deadline: float
    watches: dict[str, _Watch] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class JobTracker:
    """One per engine: groups jobs by (host, port, login) and polls each group once an interval."""

    def __init__(self, transport_of: TransportOf, environment: str) -> None:
        self._transport_of = transport_of
        self._environment = environment  # its name, for metrics
        self._groups: dict[tuple[str, int, str], _Group] = {}
        self.squeue_calls = 0  # for benchmarks and tests

    async def wait(
        self,
        target: SshTarget,
        job_id: str,
        *,
        interval: float,
        deadline: float,
        outputs: list[tuple[str, LogLevel]],
        exit_path: str | None,
        on_line: LineHandler,
        on_unknown: UnknownHandler,
        step: str,
        offsets: dict[str, int] | None = None,
        on_running: RunningHandler | None = None,
    ) -> FinalState:
        """Follow a job to its end, handing its output lines over as they appear.

        ``offsets``: how far each output file was read already (a job taken over);
        ``on_running``: called once, at the first poll that finds the job out of PENDING.
        """
        key = (target.host, target.port, target.login)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(target, interval, deadline)
        group.target = target
        group.interval = min(group.interval, interval)
        future: asyncio.Future[FinalState] = asyncio.get_running_loop().create_future()
        watch = _Watch(job_id, step, outputs, exit_path, on_line, on_unknown, on_running, future)
        for path, _ in outputs:
            watch.offsets[path] = (offsets or {}).get(path, 0)
            watch.splitters[path] = LineSplitter()
        group.watches[job_id] = watch
        # A new job waits for the group's next poll: a burst of submissions must not turn
        # into a burst of squeue calls.
        if group.task is None or group.task.done():
            group.task = asyncio.create_task(self._poll(key, group), name=f"hpcwaas-jobs-{key}")
        try:
            return await future
        finally:
            group.watches.pop(job_id, None)

    async def cancel(self, target: SshTarget, job_ids: list[str]) -> None:
        """scancel the jobs; their watchers learn the final state at the next poll (now)."""
        if not job_ids:
            return
        result = await self._transport_of(target).run(slurm.scancel_command(job_ids))
        if result.exit_code != 0:
            log.warning("scancel %s: %s", job_ids, result.stderr.strip()[:200])
        group = self._groups.get((target.host, target.port, target.login))
        if group is not None:
            group.wake.set()

    async def close(self) -> None:
        tasks = [g.task for g in self._groups.values() if g.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._groups.clear()

    # -- the poll loop ---------------------------------------------------------------------

    async def _poll(self, key: tuple[str, int, str], group: _Group) -> None:
        failing_since: float | None = None
        backoff = group.interval
        while group.watches:
            group.wake.clear()
            try:
                await self._poll_once(group)
                failing_since, backoff = None, group.interval
            except (TransportError, SchedulerError) as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                await self._all_unknown(group, True)
                if now - failing_since > group.deadline:
                    self._fail_all(
                        group, f"the cluster could not be reached for {group.deadline:g} s: {exc}"
                    )
                    break
                log.warning("polling jobs of %s: %s (retrying in %.0f s)", key, exc, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            except Exception:
                log.exception("polling jobs of %s failed unexpectedly", key)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            delay = group.interval if failing_since is None else backoff
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(group.wake.wait(), delay)
        self._groups.pop(key, None)

    async def _poll_once(self, group: _Group) -> None:
        metrics.SLURM_POLLS.labels(environment=self._environment).inc()
        with metrics.SLURM_POLL_DURATION.labels(environment=self._environment).time():
            await self._poll_group(group)

    async def _poll_group(self, group: _Group) -> None:
        target = group.target
        result = await self._transport_of(target).run(slurm.squeue_command(target.login))
        self.squeue_calls += 1
        queue = slurm.parse_squeue(result.exit_code, result.stdout, result.stderr)
        log.debug(
            "squeue for %s@%s:%d: %d jobs", target.login, target.host, target.port, len(queue)
        )
        watches = list(group.watches.values())
        await self._read_outputs(target, watches)
        ended = [w for w in watches if w.job_id not in queue or queue[w.job_id].state.terminal]
        for watch in watches:
            if watch not in ended and watch.unknown:
                watch.unknown = False
                await watch.on_unknown(False)
            queued = queue.get(watch.job_id)
            running = queued is None or queued.state is not JobState.PENDING
            if running and not watch.seen_running:
                watch.seen_running = True
                if watch.on_running is not None:
                    await watch.on_running()
        if not ended:
            return
        finals = await self._final_states(target, ended)
        for watch in ended:
            final = finals.get(watch.job_id)
            if final is None:
                watch.missing += 1
                if not watch.unknown:
                    watch.unknown = True
                    await watch.on_unknown(True)
                if watch.missing >= MISSING_POLLS_LIMIT and not watch.future.done():
                    watch.future.set_exception(
                        JobLost(f"Slurm job {watch.job_id} left the queue with no final state")
                    )
                continue
            await self._drain_outputs(target, watch)
            if not watch.future.done():
                watch.future.set_result(final)

    async def _final_states(self, target: SshTarget, ended: list[_Watch]) -> dict[str, FinalState]:
        ids = [w.job_id for w in ended]
        result = await self._transport_of(target).run(slurm.sacct_command(ids))
        finals = slurm.parse_sacct(result.exit_code, result.stdout, result.stderr) or {}
        finals = {k: v for k, v in finals.items() if v.state.terminal}
        for job_id in ids:
            if job_id in finals:
                continue
            result = await self._transport_of(target).run(slurm.scontrol_command(job_id))
            final = slurm.parse_scontrol(result.exit_code, result.stdout, result.stderr)
            if final is not None and final.state.terminal:
                finals[job_id] = final
        paths = [w.exit_path for w in ended if w.job_id not in finals and w.exit_path]
        if paths:
            result = await self._run_script(target, remote_files.exit_file_command(paths))
            codes = remote_files.parse_exit_files(result.exit_code, result.stdout, result.stderr)
            for watch in ended:
                code = codes.get(watch.exit_path or "")
                if watch.job_id not in finals and code is not None:
                    state = JobState.COMPLETED if code == 0 else JobState.FAILED
                    finals[watch.job_id] = FinalState(state, code)
        return finals

    async def _read_outputs(self, target: SshTarget, watches: list[_Watch]) -> bool:
        """Read what is new in the watched files; True if any file had a full chunk."""
        files = [(path, w.offsets[path]) for w in watches for path, _ in w.outputs]
        if not files:
            return False
        result = await self._run_script(target, remote_files.read_chunks_command(files, READ_LIMIT))
        chunks = remote_files.parse_read_chunks(result.exit_code, result.stdout, result.stderr)
        more = False
        for watch in watches:
            for path, level in watch.outputs:
                data = chunks.get(path, b"")
                if not data:
                    continue
                watch.offsets[path] += len(data)
                more = more or len(data) >= READ_LIMIT
                splitter = watch.splitters[path]
                await self._hand_over(watch, path, level, splitter.feed(data), splitter.pending)
        return more

    async def _drain_outputs(self, target: SshTarget, watch: _Watch) -> None:
        while await self._read_outputs(target, [watch]):
            pass
        for path, level in watch.outputs:
            await self._hand_over(watch, path, level, watch.splitters[path].close(), 0)

    @staticmethod
    async def _hand_over(
        watch: _Watch, path: str, level: LogLevel, lines: list[str], unfinished: int
    ) -> None:
        """Hand the lines over; the last one carries how far the file is read with it."""
        point = Checkpoint(watch.step, watch.job_id, path, watch.offsets[path] - unfinished)
        for i, line in enumerate(lines):
            await watch.on_line(level, line, point if i == len(lines) - 1 else None)

    async def _run_script(self, target: SshTarget, script: str) -> CommandOutput:
        """Run a script that grows with the number of jobs: through stdin, since one command
        line is capped (about 128 KiB on Linux, some 100 jobs' files)."""
        return await self._transport_of(target).run("bash -s", stdin=script)

    async def _all_unknown(self, group: _Group, unknown: bool) -> None:
        for watch in list(group.watches.values()):
            if watch.unknown != unknown:
                watch.unknown = unknown
                await watch.on_unknown(unknown)

    def _fail_all(self, group: _Group, reason: str) -> None:
        for watch in group.watches.values():
            if not watch.future.done():
                watch.future.set_exception(JobLost(reason))
