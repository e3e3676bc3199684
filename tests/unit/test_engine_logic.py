"""The engine's own logic, driven directly: retries, on_failure steps, the order of the DAG.

Real subprocesses and a real SQLite file, no server: each case takes a second or less.
"""

from __future__ import annotations

from pathlib import Path

from tests.engine_support import Harness, harness, make_workflow, settings

from hpcwaas.api.states import ExecutionStatus, StepState

__all__ = ["harness", "settings"]  # fixtures of tests/engine_support.py, used here


def _counting(counter: Path, succeed_at: int) -> str:
    """A command that fails until it has run ``succeed_at`` times (counted in ``counter``)."""
    return (
        f"n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}; "
        f'echo "try $n"; test $n -ge {succeed_at}'
    )


async def test_a_failing_step_is_attempted_again_until_it_succeeds(
    harness: Harness, tmp_path: Path
) -> None:
    counter = tmp_path / "tries"
    workflow = make_workflow(
        {"flaky": {"run": _counting(counter, 3), "retries": 3, "retry_delay": 0}}
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.SUCCEEDED
    step = (await harness.steps(execution_id))["flaky"]
    assert (step.state, step.attempts) == (StepState.SUCCEEDED, 3)
    lines = [entry.content for entry in await harness.logs(execution_id)]
    assert [line for line in lines if line.startswith("try ")] == ["try 1", "try 2", "try 3"]
    assert "Step flaky: attempt 3 of 4" in lines
    assert any(
        line.startswith("Step flaky failed with exit code 1 (attempt 2 of 4)") for line in lines
    )


async def test_a_step_out_of_attempts_fails_the_execution_with_its_last_reason(
    harness: Harness, tmp_path: Path
) -> None:
    counter = tmp_path / "tries"
    workflow = make_workflow(
        {"doomed": {"run": _counting(counter, 99), "retries": 1, "retry_delay": 0}}
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error == "step doomed failed with exit code 1"
    assert (await harness.steps(execution_id))["doomed"].attempts == 2
    assert counter.read_text().strip() == "2"


async def test_a_step_that_cannot_be_rendered_is_not_attempted_again(harness: Harness) -> None:
    workflow = make_workflow({"broken": {"run": "echo {{ inputs.missing }}", "retries": 5}})
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert (await harness.steps(execution_id))["broken"].attempts == 1


async def test_on_failure_steps_run_in_order_after_a_failure_and_keep_its_reason(
    harness: Harness, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    workflow = make_workflow(
        {
            "prepare": {"run": f"echo prepare >> {trail}"},
            "simulate": {"run": "exit 3", "needs": ["prepare"]},
        },
        on_failure={
            "report": {"run": f"echo report >> {trail}", "needs": ["clean"]},
            "clean": {"run": f"echo clean >> {trail}; exit 1"},
        },
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    # The cleanup's own failure is logged; the execution keeps the failure that started it.
    assert record.error == "step simulate failed with exit code 3"
    assert trail.read_text().split() == ["prepare", "clean"]
    lines = [entry.content for entry in await harness.logs(execution_id)]
    assert "Running the on_failure steps: report, clean" in lines
    assert "Cleanup step clean failed with exit code 1" in lines
    assert "Cleanup step report skipped: its needs did not succeed" in lines


async def test_on_failure_steps_do_not_run_when_the_execution_succeeds(
    harness: Harness, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    workflow = make_workflow(
        {"fine": {"run": "true"}}, on_failure={"clean": {"run": f"echo clean >> {trail}"}}
    )
    execution_id = await harness.trigger(workflow)
    assert (await harness.finished(execution_id)).status is ExecutionStatus.SUCCEEDED
    assert not trail.exists()


async def test_a_step_starts_only_after_every_step_it_needs_has_ended(
    harness: Harness, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    workflow = make_workflow(
        {
            "join": {"run": f"echo join >> {trail}", "needs": ["slow", "quick"]},
            "slow": {"run": f"sleep 0.5; echo slow >> {trail}", "needs": ["start"]},
            "quick": {"run": f"echo quick >> {trail}", "needs": ["start"]},
            "start": {"run": f"echo start >> {trail}"},
        }
    )
    execution_id = await harness.trigger(workflow)
    assert (await harness.finished(execution_id)).status is ExecutionStatus.SUCCEEDED
    assert trail.read_text().split() == ["start", "quick", "slow", "join"]
    steps = await harness.steps(execution_id)
    assert steps["join"].started_at is not None and steps["slow"].ended_at is not None
    assert steps["join"].started_at >= steps["slow"].ended_at
