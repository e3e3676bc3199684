"""The engine on the local environment: real subprocesses, a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.engine_support import Harness, harness, make_workflow, settings

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.engine.engine import RECOVERY_MESSAGE
from hpcwaas.engine.errors import ExecutionAlreadyFinished, ExecutionNotFound
from hpcwaas.settings import Settings
from hpcwaas.store import executions
from hpcwaas.store.database import Database

__all__ = ["harness", "settings"]  # fixtures of tests/engine_support.py, used here


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.02)


# -- running -----------------------------------------------------------------------------------


async def test_independent_branches_run_in_parallel_and_the_join_waits_for_both(
    harness: Harness,
) -> None:
    workflow = make_workflow(
        {
            "prepare": {"run": "mkdir -p out"},
            "left": {"needs": ["prepare"], "run": "sleep 1; echo left > out/l"},
            "right": {"needs": ["prepare"], "run": "sleep 1; echo right > out/r"},
            "gather": {"needs": ["left", "right"], "run": "cat out/l out/r > out/report.txt"},
        },
        outputs={"report": {"step": "gather", "path": "out/report.txt"}},
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.SUCCEEDED, record.error
    assert record.outputs == {"report": "left\nright\n"}
    assert record.started_at is not None and record.ended_at is not None
    steps = await harness.steps(execution_id)
    assert {s.state for s in steps.values()} == {StepState.SUCCEEDED}
    left, right, gather = steps["left"], steps["right"], steps["gather"]
    assert left.started_at < right.ended_at and right.started_at < left.ended_at  # overlap
    assert gather.started_at >= max(left.ended_at, right.ended_at)
    assert gather.exit_code == 0
    work_dir = Path(record.work_dir or "")
    assert work_dir == harness.settings.work_dir / execution_id
    assert work_dir.stat().st_mode & 0o777 == 0o700


async def test_max_parallel_steps_bounds_the_branches_running_at_once(
    db: Database, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", environments={"local": {"max_parallel_steps": 1}}
    )
    h = Harness(db, settings)
    await h.engine.start()
    try:
        workflow = make_workflow({"a": {"run": "sleep 0.5"}, "b": {"run": "sleep 0.5"}})
        execution_id = await h.trigger(workflow)
        await h.finished(execution_id)
        steps = await h.steps(execution_id)
        assert steps["b"].started_at >= steps["a"].ended_at
    finally:
        await h.engine.stop()


async def test_step_output_becomes_info_and_warn_entries_in_order_with_the_step_name(
    harness: Harness,
) -> None:
    workflow = make_workflow(
        {"talk": {"run": "for i in 1 2 3; do echo out$i; echo err$i >&2; done"}}
    )
    execution_id = await harness.trigger(workflow)
    assert (await harness.finished(execution_id)).status is ExecutionStatus.SUCCEEDED
    entries = await harness.logs(execution_id)
    info = [e.content for e in entries if e.level is LogLevel.INFO and e.step == "talk"]
    warn = [e.content for e in entries if e.level is LogLevel.WARN]
    assert info == ["Step talk started", "out1", "out2", "out3", "Step talk succeeded"]
    assert warn == ["err1", "err2", "err3"]
    assert all(e.step == "talk" for e in entries if e.level is LogLevel.WARN)
    assert entries[0].content == "Execution started: workflow demo@local@wf"
    assert entries[0].step is None
    debug = [e for e in entries if e.level is LogLevel.DEBUG]
    assert [e.step for e in debug] == ["talk"]
    assert "echo out$i" in debug[0].content
    timestamps = [e.timestamp for e in entries]
    assert timestamps == sorted(timestamps)


async def test_inputs_are_quoted_and_the_step_env_is_rendered(harness: Harness) -> None:
    workflow = make_workflow(
        {
            "greet": {
                "run": 'echo {{ inputs.name }}; echo "$GREETING"',
                "env": {"GREETING": "hi {{ inputs.name }}"},
            }
        },
        inputs={"name": {"type": "string"}},
    )
    execution_id = await harness.trigger(workflow, {"name": "x; touch pwned"})
    assert (await harness.finished(execution_id)).status is ExecutionStatus.SUCCEEDED
    lines = [e.content for e in await harness.logs(execution_id) if e.level is LogLevel.INFO]
    assert "x; touch pwned" in lines
    assert "hi x; touch pwned" in lines
    assert not (harness.settings.work_dir / execution_id / "pwned").exists()


async def test_step_cannot_see_the_servers_environment(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPCWAAS_TEST_SECRET", "s3cret")
    workflow = make_workflow(
        {"peek": {"run": 'echo "secret=${HPCWAAS_TEST_SECRET:-unset}"; echo "$HPCWAAS_STEP"'}}
    )
    execution_id = await harness.trigger(workflow)
    await harness.finished(execution_id)
    lines = [e.content for e in await harness.logs(execution_id) if e.step == "peek"]
    assert "secret=unset" in lines
    assert "peek" in lines
    assert not any("s3cret" in line for line in lines)


async def test_failing_step_fails_fast_skips_dependents_and_cancels_its_sibling(
    harness: Harness,
) -> None:
    workflow = make_workflow(
        {
            "bad": {"run": "sleep 0.3; exit 3"},
            "slow": {"run": "sleep 30"},
            "after": {"needs": ["bad"], "run": "echo never"},
        }
    )
    start = time.monotonic()
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert time.monotonic() - start < 5.0
    assert record.status is ExecutionStatus.FAILED
    assert record.error == "step bad failed with exit code 3"
    steps = await harness.steps(execution_id)
    assert (steps["bad"].state, steps["bad"].exit_code) == (StepState.FAILED, 3)
    assert steps["slow"].state is StepState.CANCELLED
    assert steps["after"].state is StepState.SKIPPED
    errors = [
        (e.content, e.step) for e in await harness.logs(execution_id) if e.level is LogLevel.ERROR
    ]
    assert ("Step bad failed with exit code 3", "bad") in errors
    assert errors[-1] == ("Execution failed: step bad failed with exit code 3", None)


async def test_template_that_cannot_render_fails_the_step_with_the_reason_in_the_logs(
    harness: Harness,
) -> None:
    workflow = make_workflow({"broken": {"run": "echo {{ inputs.missing }}"}})
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error == "step broken failed: its command cannot be rendered"
    errors = [e.content for e in await harness.logs(execution_id) if e.level is LogLevel.ERROR]
    assert any("cannot be rendered" in e and "missing" in e for e in errors)
    assert (await harness.steps(execution_id))["broken"].state is StepState.FAILED


async def test_step_past_its_timeout_is_killed_and_fails(harness: Harness) -> None:
    workflow = make_workflow({"slow": {"run": "sleep 30", "timeout": 0.3}})
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error == "step slow timed out after 0.3 s"


async def test_outputs_are_read_from_files_and_paths_outside_the_work_dir_refused(
    db: Database, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", limits={"max_output_bytes": 8})
    (tmp_path / "secret.txt").write_text("do not read")
    h = Harness(db, settings)
    await h.engine.start()
    try:
        workflow = make_workflow(
            {
                "make": {
                    "run": "printf small > small.txt; printf 0123456789ab > big.txt; "
                    f"ln -s {tmp_path}/secret.txt link.txt"
                }
            },
            outputs={
                "small": {"step": "make", "path": "small.txt"},
                "big": {"step": "make", "path": "big.txt"},
                "missing": {"step": "make", "path": "nothing.txt"},
                "escape": {"step": "make", "path": "../../secret.txt"},
                "absolute": {"step": "make", "path": f"{tmp_path}/secret.txt"},
                "link": {"step": "make", "path": "link.txt"},
            },
        )
        execution_id = await h.trigger(workflow)
        record = await h.finished(execution_id)
        assert record.status is ExecutionStatus.SUCCEEDED
        assert record.outputs is not None
        assert record.outputs["small"] == "small"
        assert record.outputs["big"] == "01234567\n[output truncated at 8 bytes]"
        for name in ("missing", "escape", "absolute", "link"):
            assert record.outputs[name] is None
        warnings = [e.content for e in await h.logs(execution_id) if e.level is LogLevel.WARN]
        assert any("Output missing" in w and "not found" in w for w in warnings)
        assert any("Output escape" in w and "outside the working directory" in w for w in warnings)
        assert any("Output link" in w and "outside" in w for w in warnings)
        assert any("Output big" in w and "truncated" in w for w in warnings)
    finally:
        await h.engine.stop()


async def test_workflow_gone_from_the_catalog_fails_the_execution(harness: Harness) -> None:
    workflow = make_workflow({"a": {"run": "true"}})
    execution_id = await harness.trigger(workflow)
    await harness.finished(execution_id)
    harness.catalog.clear()
    execution_id = await harness.trigger(workflow)
    harness.catalog.clear()
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error == "workflow demo@local@wf is no longer in the catalog"
    assert (await harness.steps(execution_id))["a"].state is StepState.SKIPPED
    entries = await harness.logs(execution_id)
    assert entries[-1].level is LogLevel.ERROR and "no longer in the catalog" in entries[-1].content


class ExplodingTransport:
    async def start(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the engine")


async def test_unexpected_error_fails_the_execution_but_not_the_engine(
    db: Database, settings: Settings
) -> None:
    h = Harness(db, settings, transport=ExplodingTransport())
    await h.engine.start()
    try:
        workflow = make_workflow({"a": {"run": "true"}, "b": {"needs": ["a"], "run": "true"}})
        first = await h.trigger(workflow)
        record = await h.finished(first)
        assert record.status is ExecutionStatus.FAILED
        assert record.error == "internal error: RuntimeError"
        steps = await h.steps(first)
        assert (steps["a"].state, steps["b"].state) == (StepState.FAILED, StepState.SKIPPED)
        entries = await h.logs(first)
        assert (entries[-1].level, entries[-1].content) == (
            LogLevel.ERROR,
            "Execution failed: internal error: RuntimeError",
        )
        second = await h.trigger(workflow)  # the engine still dispatches
        assert (await h.finished(second)).error == "internal error: RuntimeError"
    finally:
        await h.engine.stop()


# -- cancel ------------------------------------------------------------------------------------


async def test_cancel_of_running_execution_kills_its_whole_process_group(
    harness: Harness,
) -> None:
    workflow = make_workflow(
        {
            "hang": {"run": "echo $$ > main.pid; sleep 300 & echo $! > bg.pid; wait"},
            "later": {"needs": ["hang"], "run": "echo never"},
        }
    )
    execution_id = await harness.trigger(workflow)
    work_dir = harness.settings.work_dir / execution_id
    await _eventually(lambda: _has_text(work_dir / "bg.pid"))
    main_pid = int((work_dir / "main.pid").read_text())
    background = int((work_dir / "bg.pid").read_text())
    assert _running(background)

    status = await harness.engine.cancel(execution_id, "alice")
    assert status in (ExecutionStatus.CANCELLING, ExecutionStatus.CANCELLED)
    record = await harness.finished(execution_id)

    assert record.status is ExecutionStatus.CANCELLED
    assert not _running(main_pid) and not _running(background)
    steps = await harness.steps(execution_id)
    assert steps["hang"].state is StepState.CANCELLED
    assert steps["later"].state is StepState.SKIPPED
    entries = await harness.logs(execution_id)
    assert entries[-1].content == "Execution cancelled by alice"

    async def engine_idle() -> bool:
        # The execution's task ends just after its final state is committed.
        return harness.engine.running_count() == 0

    await _eventually(engine_idle)


async def _has_text(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def test_cancel_of_pending_execution_cancels_it_at_once(
    db: Database, settings: Settings
) -> None:
    h = Harness(db, settings)  # not started: nothing picks the execution up
    execution_id = await h.trigger(make_workflow({"a": {"run": "true"}, "b": {"run": "true"}}))
    assert await h.engine.cancel(execution_id, "alice") is ExecutionStatus.CANCELLED
    record = await h.record(execution_id)
    assert record.status is ExecutionStatus.CANCELLED and record.ended_at is not None
    assert {s.state for s in (await h.steps(execution_id)).values()} == {StepState.SKIPPED}
    assert [e.content for e in await h.logs(execution_id)] == ["Execution cancelled by alice"]
    await h.engine.stop()


async def test_cancel_of_finished_execution_raises_already_finished(harness: Harness) -> None:
    execution_id = await harness.trigger(make_workflow({"a": {"run": "true"}}))
    await harness.finished(execution_id)
    with pytest.raises(ExecutionAlreadyFinished) as caught:
        await harness.engine.cancel(execution_id, "alice")
    assert caught.value.status is ExecutionStatus.SUCCEEDED
    assert (await harness.record(execution_id)).status is ExecutionStatus.SUCCEEDED


async def test_cancel_of_a_cancelled_execution_raises_already_finished_as_any_ended_one(
    db: Database, settings: Settings
) -> None:
    h = Harness(db, settings)  # not started: the first cancel ends the execution at once
    execution_id = await h.trigger(make_workflow({"a": {"run": "true"}}))
    assert await h.engine.cancel(execution_id, "alice") is ExecutionStatus.CANCELLED
    with pytest.raises(ExecutionAlreadyFinished) as caught:
        await h.engine.cancel(execution_id, "alice")
    assert caught.value.status is ExecutionStatus.CANCELLED
    await h.engine.stop()


async def test_cancel_of_unknown_execution_raises_not_found(harness: Harness) -> None:
    with pytest.raises(ExecutionNotFound):
        await harness.engine.cancel("no-such-execution", "alice")


async def test_cancel_racing_completion_leaves_a_consistent_result(harness: Harness) -> None:
    for _ in range(5):
        execution_id = await harness.trigger(make_workflow({"a": {"run": "sleep 0.05"}}))
        await asyncio.sleep(0.05)
        try:
            status = await harness.engine.cancel(execution_id, "alice")
        except ExecutionAlreadyFinished as exc:
            assert exc.status is ExecutionStatus.SUCCEEDED
            continue
        assert status in (ExecutionStatus.CANCELLING, ExecutionStatus.CANCELLED)
        record = await harness.finished(execution_id)
        assert record.status is ExecutionStatus.CANCELLED
        steps = await harness.steps(execution_id)
        assert all(s.state.terminal for s in steps.values())


# -- restart and stop --------------------------------------------------------------------------


async def test_recovery_ends_local_executions_the_last_run_left_running(
    db: Database, settings: Settings
) -> None:
    h = Harness(db, settings)
    workflow = make_workflow({"a": {"run": "true"}, "b": {"needs": ["a"], "run": "true"}})
    running = await h.trigger(workflow)
    cancelling = await h.trigger(workflow)
    async with db.write() as conn:
        for execution_id in (running, cancelling):
            await executions.transition(
                conn, execution_id, ExecutionStatus.RUNNING, expected={ExecutionStatus.PENDING}
            )
            await executions.update_step(
                conn, execution_id, "a", StepState.RUNNING, expected={StepState.PENDING}
            )
        await executions.transition(
            conn, cancelling, ExecutionStatus.CANCELLING, expected={ExecutionStatus.RUNNING}
        )
    await h.engine.start()
    try:
        record = await h.record(running)
        assert record.status is ExecutionStatus.FAILED
        assert record.error == "the server stopped while this execution was running"
        steps = await h.steps(running)
        assert (steps["a"].state, steps["b"].state) == (StepState.FAILED, StepState.SKIPPED)
        entries = await h.logs(running)
        assert (entries[-1].level, entries[-1].content) == (LogLevel.ERROR, RECOVERY_MESSAGE)
        assert (await h.record(cancelling)).status is ExecutionStatus.CANCELLED
        assert (await h.steps(cancelling))["a"].state is StepState.CANCELLED
    finally:
        await h.engine.stop()


async def test_a_draining_engine_starts_nothing_and_leaves_new_executions_pending(
    db: Database, settings: Settings
) -> None:
    h = Harness(db, settings)
    await h.engine.start()
    running = await h.trigger(make_workflow({"long": {"run": "sleep 2; echo done"}}))
    await h.wait_until(running, lambda r: r.status is ExecutionStatus.RUNNING)
    h.engine.drain()
    waiting = await h.trigger(make_workflow({"quick": {"run": "echo hi"}}))
    # What was running goes on to its end; what came after the drain is not started.
    assert (await h.finished(running)).status is ExecutionStatus.SUCCEEDED
    assert (await h.record(waiting)).status is ExecutionStatus.PENDING
    await h.engine.stop()
    record = await h.record(waiting)
    assert record.status is ExecutionStatus.PENDING
    assert record.lease_owner is None  # free for another replica, or the next start
    assert (await h.steps(waiting))["quick"].state is StepState.PENDING

    again = Harness(db, settings)
    again.catalog.update(h.catalog)
    await again.engine.start()
    try:
        assert (await again.finished(waiting)).status is ExecutionStatus.SUCCEEDED
    finally:
        await again.engine.stop()


async def test_stop_kills_running_steps_and_fails_their_executions(
    db: Database, settings: Settings
) -> None:
    h = Harness(db, settings)
    await h.engine.start()
    execution_id = await h.trigger(
        make_workflow({"hang": {"run": "echo $$ > main.pid; sleep 300"}})
    )
    work_dir = settings.work_dir / execution_id
    await _eventually(lambda: _has_text(work_dir / "main.pid"))
    start = time.monotonic()
    await h.engine.stop()
    assert time.monotonic() - start < 3.0
    record = await h.record(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error == "the server was stopped"
    assert (await h.steps(execution_id))["hang"].state is StepState.FAILED
    assert not _running(int((work_dir / "main.pid").read_text()))
    entries = await h.logs(execution_id)
    assert entries[-1].content == "Execution failed: the server was stopped"
