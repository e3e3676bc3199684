"""DAG runs on an Apache Airflow (the Data Logistics Service): the driver of ``dag_run`` steps.

``AirflowService`` starts runs under an ID derived from the execution, the step and the
attempt (``hpcwaas__<execution>__<step>__<attempt>``): Airflow answers 409 for an ID it
has, and the step re-attaches to that run instead of starting a second one.

All runs followed on one Airflow are polled together, every ``poll_interval``, as squeue
follows a cluster account's jobs: one ``/dags/~/dagRuns/list`` request per 100 active runs
(queued or running runs of the DAGs followed, since the oldest one's logical date), then the
task instances of the runs followed, 100 per request; then the log of each task instance
that runs, or whose state or try changed since the last poll, from where the step's log
entries stopped.
A run no longer active has ended: successful when all its task instances are, else the run
is read once for its final state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.kinds.dag_run import DagRunRequest
from hpcwaas.engine.airflow_api import RUNS, TASK_INSTANCES, AirflowApi, TaskInstance
from hpcwaas.engine.remotesteps import LineSink, RemoteEnd, RemoteError, RunKey
from hpcwaas.settings import AirflowConfig
from hpcwaas.store.logs import Checkpoint

log = logging.getLogger(__name__)

# Airflow's DAG run states, and the step state each final one gives.
ENDED = {"success": StepState.SUCCEEDED, "failed": StepState.FAILED}
ACTIVE = ["queued", "running"]
SUCCESSFUL_TASK = {"success", "skipped"}
WRITING_TASK = {"running", "deferred"}  # states in which a task's log may grow
LOG_READS = 8  # task logs read at once per Airflow


def run_id_of(key: RunKey) -> str:
    """The run ID of an attempt (step names and UUIDs fit Airflow's run ID pattern)."""
    return f"hpcwaas__{key.execution_id}__{key.step}__{key.attempt}"


def _level(line: str) -> LogLevel:
    if " ERROR - " in line or " CRITICAL - " in line:
        return LogLevel.ERROR
    if " WARNING - " in line:
        return LogLevel.WARN
    return LogLevel.INFO


# The last line of a Python traceback: the exception a task failed with.
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception)\b: .+$")


def log_body(text: str) -> str:
    """A task log without the header Airflow puts before it (where it found the log).

    The header differs while the task runs (served by the worker) and once it ended (read
    from the file), so offsets count from the end of it: the file's own text only grows.
    """
    head = text[:2000]
    start = head.find("::group::Log message source details")
    if start < 0:
        return text
    end = head.find("::endgroup::", start)
    newline = head.find("\n", end) if end >= 0 else -1
    return text[newline + 1 :] if newline >= 0 else text


def _error_of(log_text: str) -> str | None:
    """Why a task failed, as its log says: the exception it raised, else its last error line."""
    lines = log_text.splitlines()
    raised = [line.strip() for line in lines if EXCEPTION_LINE.match(line.strip())]
    if raised:
        return raised[-1]
    errors = [line.split(" ERROR - ", 1)[1] for line in lines if " ERROR - " in line]
    return errors[-1] if errors else None


@dataclass
class _Watch:
    """One run followed: who waits for it, and how far its task logs were logged."""

    dag_id: str
    run_id: str
    logical_date: str
    on_line: LineSink
    step: str
    offsets: dict[str, int]
    done: asyncio.Future[RemoteEnd]
    seen: dict[tuple[str, int], tuple[str | None, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # last error line of each failed task


class AirflowRun:
    """A run started (or found) on an Airflow, followed by that Airflow's poll loop."""

    def __init__(self, service: AirflowService, dag_id: str, run: Mapping[str, Any], *,
                 reattached: bool, step: str) -> None:  # fmt: skip
        self._service = service
        self._dag_id = dag_id
        self._run = run
        self._step = step
        self.run_id = str(run["dag_run_id"])
        self.reattached = reattached

    async def wait(self, on_line: LineSink, offsets: Mapping[str, int]) -> RemoteEnd:
        """Follow the run to its end with the Airflow's other runs."""
        logical = str(self._run.get("logical_date") or self._run.get("execution_date"))
        return await self._service.follow(
            self._dag_id, self.run_id, logical, on_line, self._step, dict(offsets)
        )

    async def cancel(self) -> None:
        """Set the run failed; Airflow stops its running tasks."""
        await self._service.api.fail_run(self._dag_id, self.run_id)


class AirflowService:
    """One Airflow: starts runs, and follows all of them in one poll loop."""

    def __init__(self, config: AirflowConfig, api: AirflowApi) -> None:
        self.config = config
        self.api = api
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._poller: asyncio.Task[None] | None = None
        self._log_reads = asyncio.Semaphore(LOG_READS)

    async def start(self, request: DagRunRequest, key: RunKey) -> AirflowRun:
        """Trigger the run of ``key``, or find it when it exists (a retry after a crash).

        An unreachable Airflow is asked again, with the same run ID, until
        ``unreachable_deadline``: a trigger whose answer was lost is then found, not repeated.
        """
        deadline = time.monotonic() + self.config.unreachable_deadline
        delay = 1.0
        while True:
            try:
                return await self._start_once(request, key)
            except RemoteError as exc:
                if not exc.retryable or time.monotonic() + delay > deadline:
                    raise
                log.warning("airflow %s: trigger failed (%s); retrying", self.api.url, exc)
            await asyncio.sleep(delay)
            delay = min(60.0, delay * 2)

    async def _start_once(self, request: DagRunRequest, key: RunKey) -> AirflowRun:
        run_id = run_id_of(key)
        for _ in range(3):
            run = await self.api.trigger(request.dag_id, run_id, request.conf)
            if run is not None:
                return AirflowRun(self, request.dag_id, run, reattached=False, step=key.step)
            found = await self.api.get_run(request.dag_id, run_id)
            if found is not None:
                return AirflowRun(self, request.dag_id, found, reattached=True, step=key.step)
            # 409 without such a run: another run took the same logical date; try again.
        raise RemoteError(
            f"the Airflow at {self.api.url} refused run {run_id} of DAG {request.dag_id!r} "
            "as a duplicate, but has no run of that ID",
            retryable=True,
        )

    async def follow(self, dag_id: str, run_id: str, logical_date: str, on_line: LineSink,
                     step: str, offsets: dict[str, int]) -> RemoteEnd:  # fmt: skip
        """Wait for the run's end; its task logs go to ``on_line`` meanwhile."""
        done: asyncio.Future[RemoteEnd] = asyncio.get_running_loop().create_future()
        watch = _Watch(dag_id, run_id, logical_date, on_line, step, offsets, done)
        self._watches[(dag_id, run_id)] = watch
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_loop())
        try:
            return await done
        finally:
            self._watches.pop((dag_id, run_id), None)

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.api.aclose()

    # ------------------------------------------------------------------------- polling

    async def _poll_loop(self) -> None:
        last_success = time.monotonic()
        delay = self.config.poll_interval
        while self._watches:
            await asyncio.sleep(delay)
            try:
                await self.poll()
            except (KeyError, ValueError, TypeError) as exc:  # an answer not as documented
                self._fail_all(
                    RemoteError(f"the Airflow at {self.api.url} answered {exc!r}", retryable=False)
                )
                continue
            except RemoteError as exc:
                unreachable = time.monotonic() - last_success
                log.warning("airflow %s: poll failed (%s); retrying", self.api.url, exc)
                if not exc.retryable or unreachable > self.config.unreachable_deadline:
                    self._fail_all(exc)
                delay = min(60.0, delay * 2)
                continue
            last_success = time.monotonic()
            delay = self.config.poll_interval

    def _fail_all(self, exc: RemoteError) -> None:
        for watch in list(self._watches.values()):
            if not watch.done.done():
                watch.done.set_exception(RemoteError(str(exc), retryable=False))

    async def poll(self) -> None:
        """One round: active runs, then task instances, then the logs of what changed.

        A followed run that is no longer active has ended: its task instances say how when
        they all succeeded; else (a failure, a deleted run) the run itself is read once.
        """
        watches = [w for w in self._watches.values() if not w.done.done()]
        if not watches:
            return
        dag_ids = sorted({w.dag_id for w in watches})
        since = min(w.logical_date for w in watches)
        pages = self.api.pages.copy()
        active = await self.api.list_runs(dag_ids, since, ACTIVE)
        running = {(r["dag_id"], r["dag_run_id"]) for r in active}
        instances = await self.api.list_task_instances(dag_ids, sorted({w.run_id for w in watches}))
        spent = self.api.pages - pages
        log.debug(
            "airflow poll of %s: %d runs followed, %d run list requests, %d task instance "
            "list requests",
            self.api.url,
            len(watches),
            spent[RUNS],
            spent[TASK_INSTANCES],
        )
        by_run: dict[tuple[str, str], list[TaskInstance]] = {}
        for ti in instances:
            by_run.setdefault((ti.dag_id, ti.run_id), []).append(ti)
        # The logs of different runs are read concurrently (a few requests at a time).
        await asyncio.gather(
            *(self._read_logs(w, by_run.get((w.dag_id, w.run_id), [])) for w in watches)
        )
        for watch in watches:
            tis = by_run.get((watch.dag_id, watch.run_id), [])
            if (watch.dag_id, watch.run_id) in running:
                continue
            if tis and all(ti.state in SUCCESSFUL_TASK for ti in tis):
                self._end(watch, StepState.SUCCEEDED)
                continue
            run = await self.api.get_run(watch.dag_id, watch.run_id)
            if run is None:
                self._end(watch, StepState.FAILED, "its DAG run was deleted from the Airflow")
            elif run.get("state") in ENDED:
                self._end(watch, ENDED[run["state"]])

    async def _read_logs(self, watch: _Watch, instances: list[TaskInstance]) -> None:
        """Log what the running task instances, and those whose state or try changed, wrote
        since last time."""
        for ti in instances:
            now = (ti.state, ti.try_number)
            unchanged = watch.seen.get((ti.task_id, ti.map_index)) == now
            if ti.try_number < 1 or (unchanged and ti.state not in WRITING_TASK):
                continue
            watch.seen[(ti.task_id, ti.map_index)] = now
            async with self._log_reads:
                text = log_body(await self.api.task_log(ti))
            if self._watches.get((watch.dag_id, watch.run_id)) is not watch:
                return  # no longer followed (the step was cancelled meanwhile): it has ended
            start = watch.offsets.get(ti.source, 0)
            new = text[start:]
            complete = new[: new.rfind("\n") + 1]  # a line still being written waits
            offset = start
            for line in complete.splitlines(keepends=True):
                offset += len(line)
                point = Checkpoint(watch.step, watch.run_id, ti.source, offset)
                content = line.rstrip("\n")
                if content:
                    await watch.on_line(_level(content), f"[{ti.task_id}] {content}", point)
            watch.offsets[ti.source] = offset
            # The error may have been logged (and read) while the task still ran: it is
            # looked for in the whole log, whether or not this read found new lines.
            if ti.state in ("failed", "upstream_failed"):
                watch.errors.append(f"task {ti.task_id}: {_error_of(text) or ti.state}")

    def _end(self, watch: _Watch, state: StepState, reason: str = "") -> None:
        if state is StepState.FAILED and not reason:
            detail = "; ".join(watch.errors[-3:]) or "see its task logs"
            reason = f"DAG run {watch.run_id} of {watch.dag_id} failed: {detail}"
        if not watch.done.done():
            watch.done.set_result(RemoteEnd(state, reason))
