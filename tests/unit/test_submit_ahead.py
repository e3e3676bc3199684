"""Submitting Slurm steps ahead: which steps go ahead, whose end is awaited, the dependency
flags of sbatch and scontrol, the wait on exit files, and the dry run's mark."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from tests.unit.test_dry_run_plan import SLURM, _workflow

from hpcwaas.api.states import StepState
from hpcwaas.catalog.model import StepSpec
from hpcwaas.engine.ahead import AheadPlan, ends_awaited, submitted_ahead
from hpcwaas.engine.plan import build_plan
from hpcwaas.engine.run_context import RunState
from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.remote_files import exit_wait_command, parse_exit_files

STEP = TypeAdapter(StepSpec)


def _steps(raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: STEP.validate_python(spec) for name, spec in raw.items()}


def _job(*needs: str, **more: Any) -> dict[str, Any]:
    return {"kind": "slurm", "script": "echo hi", "needs": list(needs), **more}


def test_a_chain_of_slurm_steps_goes_ahead_after_its_first_and_only_the_last_is_awaited():
    steps = _steps({"a": _job(), "b": _job("a"), "c": _job("b")})
    ahead = submitted_ahead(steps)
    assert ahead == {"b", "c"}
    assert ends_awaited(steps, ahead) == {"c"}


def test_fan_out_and_in_all_go_ahead_but_the_first():
    raw = {"a": _job(), **{f"b{i}": _job("a") for i in range(8)}}
    raw["c"] = _job(*(f"b{i}" for i in range(8)))
    steps = _steps(raw)
    ahead = submitted_ahead(steps)
    assert ahead == set(raw) - {"a"}
    assert ends_awaited(steps, ahead) == {"c"}


def test_a_step_reading_an_earlier_output_waits_and_its_need_end_is_awaited():
    steps = _steps(
        {
            "a": _job(outputs=["n"]),
            "b": _job("a", script="echo {{ steps.a.outputs.n }}"),
            "c": _job("a", env={"N": "{{ steps['a'].outputs.n }}"}),
        }
    )
    ahead = submitted_ahead(steps)
    assert ahead == set()
    assert ends_awaited(steps, ahead) == {"a", "b", "c"}


def test_steps_after_a_shell_step_or_with_a_timeout_are_not_submitted_ahead():
    steps = _steps(
        {
            "prepare": {"kind": "shell", "run": "true"},
            "job": _job("prepare"),
            "timed": _job("job", timeout=60),
            "last": _job("timed"),
        }
    )
    assert submitted_ahead(steps) == {"last"}
    assert ends_awaited(steps, submitted_ahead(steps)) == {"prepare", "job", "last"}


def test_nothing_goes_ahead_off_a_cluster_and_retried_steps_are_known():
    steps = _steps({"a": _job(retries=2), "b": _job("a")})
    assert AheadPlan.of(steps, on_cluster=lambda _: False).ahead == frozenset()
    plan = AheadPlan.of(steps, on_cluster=lambda _: True)
    assert plan.ahead == {"b"} and plan.retried == {"a"}
    assert plan.dependents("a") == ["b"]


def test_sbatch_waits_on_the_jobs_of_its_needs_and_is_cancelled_when_one_fails():
    command = slurm.sbatch_command("/w/x.sbatch", after=["12", "13"])
    assert command == (
        "sbatch --parsable --dependency=afterok:12:13 --kill-on-invalid-dep=yes /w/x.sbatch"
    )
    kept = slurm.sbatch_command("/w/x.sbatch", after=["12"], kill_on_fail=False)
    assert "--kill-on-invalid-dep=no" in kept
    assert slurm.sbatch_command("/w/x.sbatch") == "sbatch --parsable /w/x.sbatch"


def test_dependency_and_its_update_take_job_ids_only():
    assert slurm.update_dependency_command("40", ["41"]) == (
        "scontrol update JobId=40 Dependency=afterok:41"
    )
    with pytest.raises(ValueError, match="not a Slurm job ID"):
        slurm.sbatch_command("/w/x.sbatch", after=["1;reboot"])
    with pytest.raises(ValueError, match="not a Slurm job ID"):
        slurm.update_dependency_command("$(id)", ["1"])


def test_exit_wait_returns_as_soon_as_an_exit_file_appears(tmp_path: Path):
    paths = [str(tmp_path / "a b.exit"), str(tmp_path / "c.exit")]

    def write_later() -> None:
        time.sleep(0.5)
        (tmp_path / "c.exit").write_text("0\n")

    writer = threading.Thread(target=write_later)
    writer.start()
    start = time.monotonic()
    result = subprocess.run(
        ["bash", "-s"], input=exit_wait_command(paths, 10), capture_output=True, text=True
    )
    took = time.monotonic() - start
    writer.join()
    assert parse_exit_files(result.returncode, result.stdout, result.stderr) == {paths[1]: 0}
    assert 0.4 < took < 3


def test_exit_wait_gives_up_after_its_seconds_with_no_code(tmp_path: Path):
    paths = [str(tmp_path / "never.exit")]
    result = subprocess.run(
        ["bash", "-s"], input=exit_wait_command(paths, 1), capture_output=True, text=True
    )
    assert parse_exit_files(result.returncode, result.stdout, result.stderr) == {}


def test_the_dry_run_marks_the_steps_a_run_submits_ahead(tmp_path: Path):
    workflow = _workflow({"a": _job(), "b": _job("a"), "c": _job("b", timeout=30)})
    plan = build_plan(workflow, {}, SLURM, local_work_root=tmp_path)
    assert {s.name: s.submitted_ahead for s in plan.steps} == {"a": False, "b": True, "c": False}


def test_a_step_goes_ahead_once_each_unfinished_need_has_a_job():
    state = RunState(["a", "b", "c"])
    assert state.jobs_to_wait_for(["a", "b"]) is None  # not started
    state.started("a")
    state.submitted("a", "10")
    state.started("b", StepState.WAITING)
    assert state.jobs_to_wait_for(["a", "b"]) is None  # b has no job yet
    state.submitted("b", "11")
    assert state.jobs_to_wait_for(["a", "b"]) == ["10", "11"]
    state.ended("a", StepState.SUCCEEDED, {})
    assert state.jobs_to_wait_for(["a", "b"]) == ["11"]
    state.attempted("b", 2)  # tried again: its next job is waited for, not the failed one
    assert state.jobs_to_wait_for(["a", "b"]) is None
    assert not state.lost(["a", "b"])
    state.ended("b", StepState.FAILED)
    assert state.lost(["a", "b"])
