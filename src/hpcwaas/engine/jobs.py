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
# Told once, when the job is first seen started (it left PENDING, or ended after running).
StartedHandler = Callable[[], Awaitable[None]]
# Seconds one wait on the exit files of awaited jobs lasts on the login node (then again).
EXIT_WAIT_SECONDS = 5
# The transport of a cluster account (``SshPool.transport``).
TransportOf = Callable[[SshTarget], Transport]


class JobLost(Exception):
    """A job could not be followed to its end; the message says why."""


@dataclass
class _Watch:
    target: SshTarget
    job_id: str
    step: str
    outputs: list[tuple[str, LogLevel]]
    exit_path: str | None
    on_line: LineHandler
    on_unknown: UnknownHandler
    future: asyncio.Future[FinalState]
    on_started: StartedHandler | None = None
    after: tuple[str, ...] = ()  # the jobs it waits for (afterok): they succeeded once it ran
    awaited: bool = False  # its end is seen from its exit file at once, not at the next poll
    offsets: dict[str, int] = field(default_factory=dict)
    splitters: dict[str, LineSplitter] = field(default_factory=dict)
    missing: int = 0
    unknown: bool = False
    started: bool = False
    exit_seen: bool = False


@dataclass
class _Group:
    """The jobs of one cluster account; one poll loop."""

    target: SshTarget
    interval: float
    deadline: float
    watches: dict[str, _Watch] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    ends: asyncio.Task[None] | None = None  # waits on the exit files of awaited jobs
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one reader of ends at a time


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
        on_started: StartedHandler | None = None,
        after: list[str] | None = None,
        awaited: bool = False,
    ) -> FinalState:
        """Follow a job to its end, handing its output lines over as they appear.

        ``offsets``: how far each output file was read already (a job taken over).
        ``on_started``: called once the job is seen started (or ended after running).
        ``after``: the jobs it was submitted to wait for (``afterok``). ``awaited``: its end
        is wanted at once: it is waited for on its exit file, and its success is that of
        the jobs it waited for too, without waiting for the next poll.
        """
        key = (target.host, target.port, target.login)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(target, interval, deadline)
        group.target = target
        group.interval = min(group.interval, interval)
        future: asyncio.Future[FinalState] = asyncio.get_running_loop().create_future()
        watch = _Watch(target, job_id, step, outputs, exit_path, on_line, on_unknown, future)
        watch.on_started, watch.after, watch.awaited = on_started, tuple(after or ()), awaited
        for path, _ in outputs:
            watch.offsets[path] = (offsets or {}).get(path, 0)
            watch.splitters[path] = LineSplitter()
        group.watches[job_id] = watch
        # A new job waits for the group's next poll: a burst of submissions must not turn
        # into a burst of squeue calls.
        if group.task is None or group.task.done():
            group.task = asyncio.create_task(self._poll(key, group), name=f"hpcwaas-jobs-{key}")
        if awaited and exit_path and (group.ends is None or group.ends.done()):
            group.ends = asyncio.create_task(self._wait_ends(group), name=f"hpcwaas-ends-{key}")
        try:
            return await future
        finally:
            group.watches.pop(job_id, None)
            # Poll as an execution still followed (with certificates, the auth log names it).
            if group.watches:
                group.target = next(iter(group.watches.values())).target

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
        groups = self._groups.values()
        tasks = [t for g in groups for t in (g.task, g.ends) if t is not None]
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
            async with group.lock:
                await self._poll_group(group)

    # -- the awaited ends ------------------------------------------------------------------

    async def _wait_ends(self, group: _Group) -> None:
        """Wait on the login node for the exit files of the awaited jobs, while there are some.

        A success ends the job at once, and the jobs it waited for with it (``afterok``: they
        succeeded); anything else is left to the poll, which is woken for it.
        """
        while True:
            waiting = {
                w.exit_path: w
                for w in group.watches.values()
                if w.awaited and w.exit_path and not w.exit_seen and not w.future.done()
            }
            if not waiting:
                return
            script = remote_files.exit_wait_command(list(waiting), EXIT_WAIT_SECONDS)
            try:
                result = await self._run_script(group.target, script)
                codes = remote_files.parse_exit_files(
                    result.exit_code, result.stdout, result.stderr
                )
            except (TransportError, SchedulerError) as exc:
                log.debug("waiting on exit files: %s", exc)  # the poll sees to the cluster
                await asyncio.sleep(group.interval)
                continue
            for path, code in codes.items():
                watch = waiting.get(path)
                if watch is None:
                    continue
                watch.exit_seen = True
                if code != 0:
                    group.wake.set()
                    continue
                async with group.lock:
                    await self._succeeded(group, watch)

    async def _succeeded(self, group: _Group, watch: _Watch) -> None:
        """``watch``'s job succeeded, and so did every job it waited for, transitively."""
        found: dict[str, _Watch] = {}
        todo = [watch]
        while todo:
            current = todo.pop()
            if current.future.done() or current.job_id in found:
                continue
            found[current.job_id] = current
            todo.extend(w for job in current.after if (w := group.watches.get(job)) is not None)
        done = list(found.values())
        while await self._read_outputs(group.target, done):
            pass
        for current in done:
            for path, level in current.outputs:
                await self._hand_over(current, path, level, current.splitters[path].close(), 0)
            await self._mark_started(current)
            if not current.future.done():
                current.future.set_result(FinalState(JobState.COMPLETED, 0))

    async def _mark_started(self, watch: _Watch) -> None:
        if not watch.started:
            watch.started = True
            if watch.on_started is not None:
                await watch.on_started()

    async def _poll_group(self, group: _Group) -> None:
        target = group.target
        result = await self._transport_of(target).run(slurm.squeue_command(target.login))
        self.squeue_calls += 1
        queue = slurm.parse_squeue(result.exit_code, result.stdout, result.stderr)
        log.debug(
            "squeue for %s@%s:%d: %d jobs", target.login, target.host, target.port, len(queue)
        )
        watches = [w for w in group.watches.values() if not w.future.done()]
        await self._read_outputs(target, watches)
        ended = [w for w in watches if w.job_id not in queue or queue[w.job_id].state.terminal]
        for watch in watches:
            if watch not in ended and watch.unknown:
                watch.unknown = False
                await watch.on_unknown(False)
            entry = queue.get(watch.job_id)
            if watch not in ended and entry is not None and entry.state is not JobState.PENDING:
                await self._mark_started(watch)
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
            if final.state is not JobState.CANCELLED:  # it ran, if only between two polls
                await self._mark_started(watch)
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
