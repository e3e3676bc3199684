"""Slurm parsers on the output of real commands (Slurm 22.05, see tests/unit/data/slurm-22.05)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.slurm import (
    FinalState,
    JobState,
    SchedulerUnavailable,
    SubmitError,
    UnexpectedOutput,
)

DATA = Path(__file__).parent / "data" / "slurm-22.05"
EXECUTION = "5d41402a-bc4b-4a76-b9f3-1a2b3c4d5e6f"


def recorded(name: str) -> tuple[int, str, str]:
    sample = json.loads((DATA / f"{name}.json").read_text())
    return sample["exit_code"], sample["stdout"], sample["stderr"]


# --- states ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state", "outcome"),
    [
        ("PENDING", JobState.PENDING, None),
        ("RUNNING", JobState.RUNNING, None),
        ("COMPLETING", JobState.COMPLETING, None),
        ("SUSPENDED", JobState.SUSPENDED, None),
        ("COMPLETED", JobState.COMPLETED, "SUCCEEDED"),
        ("FAILED", JobState.FAILED, "FAILED"),
        ("CANCELLED", JobState.CANCELLED, "CANCELLED"),
        ("CANCELLED by 123", JobState.CANCELLED, "CANCELLED"),
        ("CANCELLED+", JobState.CANCELLED, "CANCELLED"),
        ("TIMEOUT", JobState.TIMEOUT, "FAILED"),
        ("NODE_FAIL", JobState.NODE_FAIL, "FAILED"),
        ("OUT_OF_MEMORY", JobState.OUT_OF_MEMORY, "FAILED"),
        ("PREEMPTED", JobState.PREEMPTED, "FAILED"),
        ("BOOT_FAIL", JobState.BOOT_FAIL, "FAILED"),
        ("DEADLINE", JobState.DEADLINE, "FAILED"),
        ("CONFIGURING", JobState.PENDING, None),
        ("REQUEUED", JobState.PENDING, None),
        ("STAGE_OUT", JobState.COMPLETING, None),
        ("R", JobState.RUNNING, None),
        ("CD", JobState.COMPLETED, "SUCCEEDED"),
        ("OOM", JobState.OUT_OF_MEMORY, "FAILED"),
    ],
)
def test_slurm_state_names_map_to_states_and_outcomes(text, state, outcome):
    parsed = JobState.parse(text)
    assert parsed is state
    assert parsed.outcome == outcome
    assert parsed.terminal == (outcome is not None)


@pytest.mark.parametrize("text", ["WEIRD_NEW_STATE", "", "   "])
def test_unknown_state_is_undetermined_with_a_warning(text, caplog):
    with caplog.at_level(logging.WARNING):
        state = JobState.parse(text)
    assert state is JobState.UNDETERMINED
    assert not state.terminal and state.outcome is None
    assert "UNDETERMINED" in caplog.text


# --- sbatch ----------------------------------------------------------------------------------


def test_sbatch_parsable_output_gives_the_job_id():
    assert slurm.parse_sbatch(*recorded("sbatch_ok")) == "9"


def test_sbatch_output_with_a_cluster_name_gives_the_job_id():
    assert slurm.parse_sbatch(*recorded("sbatch_federation")) == "4242"


@pytest.mark.parametrize(
    ("sample", "quoted"),
    [
        ("sbatch_invalid_partition", "invalid partition specified: nope"),
        ("sbatch_invalid_account", "Invalid account or account/partition combination"),
        ("sbatch_node_config", "Memory specification can not be satisfied"),
        ("sbatch_missing_file", "Unable to open file /nonexistent.sh"),
        ("sbatch_qos_limit", "QOSMaxSubmitJobPerUserLimit"),
    ],
)
def test_sbatch_refusal_is_not_retryable_and_quotes_the_first_line(sample, quoted):
    with pytest.raises(SubmitError) as info:
        slurm.parse_sbatch(*recorded(sample))
    assert not info.value.retryable
    assert quoted in info.value.message
    assert "sbatch: error:" not in info.value.message
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    "sample", ["sbatch_controller_down", "sbatch_socket_timeout", "sbatch_busy"]
)
def test_sbatch_outage_is_retryable(sample):
    with pytest.raises(SubmitError) as info:
        slurm.parse_sbatch(*recorded(sample))
    assert info.value.retryable


def test_sbatch_success_without_a_job_id_is_retryable_after_a_lookup():
    with pytest.raises(SubmitError) as info:
        slurm.parse_sbatch(0, "something odd\n", "")
    assert info.value.retryable and "something odd" in info.value.message


# --- squeue ----------------------------------------------------------------------------------


def test_squeue_gives_every_job_with_state_reason_name_and_comment():
    jobs = slurm.parse_squeue(*recorded("squeue_mixed"))
    assert jobs["12"].state is JobState.COMPLETED
    assert jobs["13"] == slurm.QueueEntry(
        JobState.FAILED,
        "NonZeroExitCode",
        "hw-5d41402a-solve",
        f"hpcwaas:{EXECUTION}:solve",
    )
    assert jobs["14"].state is JobState.RUNNING
    assert jobs["15"].state is JobState.CANCELLED
    assert jobs["16"].state is JobState.TIMEOUT and jobs["16"].reason == "TimeLimit"
    assert jobs["17"].state is JobState.PENDING and jobs["17"].reason == "JobHeldUser"
    assert jobs["18"].reason == "PartitionNodeLimit"


def test_squeue_keeps_a_comment_holding_the_separator_and_spaces():
    jobs = slurm.parse_squeue(*recorded("squeue_mixed"))
    assert jobs["19"].name == "my analysis"
    assert jobs["19"].comment == "free text |^| with separator"


def test_squeue_job_without_comment_has_an_empty_one():
    assert slurm.parse_squeue(*recorded("squeue_mixed"))["20"].comment == ""


def test_empty_queue_is_no_jobs():
    assert slurm.parse_squeue(0, "", "") == {}


def test_squeue_failure_is_unavailable_never_an_empty_queue():
    with pytest.raises(SchedulerUnavailable) as info:
        slurm.parse_squeue(*recorded("squeue_controller_down"))
    assert info.value.retryable and "Unable to contact slurm controller" in info.value.message


def test_squeue_error_with_exit_code_zero_is_unavailable():
    # squeue 22.05 exits 0 for an unknown user and prints no job.
    with pytest.raises(SchedulerUnavailable):
        slurm.parse_squeue(*recorded("squeue_invalid_user"))


def test_squeue_line_not_understood_is_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        jobs = slurm.parse_squeue(0, "garbage\n7|^|RUNNING|^|None|^|n|^|c\n", "")
    assert list(jobs) == ["7"] and "garbage" in caplog.text


# --- sacct, scontrol -------------------------------------------------------------------------


def test_sacct_gives_state_and_exit_code_of_each_job():
    states = slurm.parse_sacct(*recorded("sacct_available"))
    assert states is not None
    assert states["12"] == FinalState(JobState.COMPLETED, 0)
    assert states["13"] == FinalState(JobState.FAILED, 3)
    assert states["15"] == FinalState(JobState.CANCELLED, 0, signal=15)
    assert states["16"].state is JobState.TIMEOUT
    assert not states["14"].state.terminal


@pytest.mark.parametrize("sample", ["sacct_disabled", "sacct_dbd_down"])
def test_sacct_without_accounting_answers_none(sample):
    assert slurm.parse_sacct(*recorded(sample)) is None


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("scontrol_completed", FinalState(JobState.COMPLETED, 0)),
        ("scontrol_failed", FinalState(JobState.FAILED, 3)),
        ("scontrol_failed_wrapper", FinalState(JobState.FAILED, 7)),
        ("scontrol_cancelled", FinalState(JobState.CANCELLED, 0, signal=15)),
        ("scontrol_timeout", FinalState(JobState.TIMEOUT, 0, signal=15)),
        ("scontrol_running", FinalState(JobState.RUNNING, 0)),
    ],
)
def test_scontrol_gives_state_and_exit_code(sample, expected):
    assert slurm.parse_scontrol(*recorded(sample)) == expected


def test_scontrol_of_a_forgotten_job_answers_none():
    assert slurm.parse_scontrol(*recorded("scontrol_invalid")) is None


def test_scontrol_failure_is_unavailable_not_a_forgotten_job():
    with pytest.raises(SchedulerUnavailable):
        slurm.parse_scontrol(1, "", "slurm_load_jobs error: Unable to contact slurm controller\n")


def test_scontrol_without_job_state_is_unexpected():
    with pytest.raises(UnexpectedOutput):
        slurm.parse_scontrol(0, "JobId=1 JobName=x\n", "")


def test_scontrol_reads_the_first_job_state_not_one_in_a_later_field():
    out = "JobId=1\n   JobState=FAILED Reason=x\n   ExitCode=2:0\n   Comment=JobState=COMPLETED\n"
    assert slurm.parse_scontrol(0, out, "") == FinalState(JobState.FAILED, 2)


# --- scancel ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["scancel_completed", "scancel_invalid"])
def test_scancel_of_an_ended_job_is_fine(sample):
    slurm.parse_scancel(*recorded(sample))


def test_scancel_errors_about_ended_jobs_are_fine():
    stderr = (
        "scancel: error: Kill job error on job id 11: Job/step already completing or completed\n"
        "scancel: error: Kill job error on job id 99: Invalid job id specified\n"
    )
    slurm.parse_scancel(1, "", stderr)


def test_scancel_that_cannot_reach_the_controller_is_unavailable():
    with pytest.raises(SchedulerUnavailable):
        slurm.parse_scancel(1, "", "scancel: error: Unable to contact slurm controller\n")


# --- finding jobs again ----------------------------------------------------------------------


def test_find_jobs_without_sacct_finds_the_execution_jobs_squeue_still_shows():
    found = slurm.parse_find_jobs(*recorded("find_jobs_no_sacct"), execution_id=EXECUTION)
    assert not found.complete
    assert [job.job_id for job in found.jobs] == ["12", "13", "14", "15", "16", "17", "18", "20"]
    latest = found.latest("solve")
    assert latest is not None and latest.job_id == "13" and latest.state is JobState.FAILED
    assert found.latest("greet") is None  # a step of another execution


def test_find_jobs_matches_a_job_without_comment_by_name():
    found = slurm.parse_find_jobs(*recorded("find_jobs_no_sacct"), execution_id=EXECUTION)
    compss = found.latest("compss")  # submitted like enqueue_compss: no comment
    assert compss is not None and compss.job_id == "20"


def test_find_jobs_with_sacct_finds_jobs_squeue_forgot_and_is_complete():
    found = slurm.parse_find_jobs(*recorded("find_jobs_with_sacct"), execution_id=EXECUTION)
    assert found.complete
    old = found.latest("old")
    assert old is not None and old.job_id == "9" and old.state is JobState.COMPLETED
    assert found.jobs[0].job_id == "9"


def test_find_jobs_ignores_a_job_of_another_execution_with_the_same_name_prefix():
    other = "5d41402a-0000-0000-0000-000000000000"
    stdout = (
        f"30|^|RUNNING|^|None|^|hw-5d41402a-solve|^|hpcwaas:{other}:solve\n"
        "#hpcwaas-find squeue 0\n"
        "30|RUNNING|hw-5d41402a-solve\n#hpcwaas-find sacct 0\n"
    )
    found = slurm.parse_find_jobs(0, stdout, "", execution_id=EXECUTION)
    assert found.jobs == () and found.latest("solve") is None


def test_find_jobs_latest_is_the_last_submitted_attempt():
    comment = f"hpcwaas:{EXECUTION}:solve"
    stdout = (
        f"31|^|RUNNING|^|None|^|hw-5d41402a-solve|^|{comment}\n"
        f"8|^|FAILED|^|None|^|hw-5d41402a-solve|^|{comment}\n"
        "#hpcwaas-find squeue 0\n#hpcwaas-find sacct 1\n"
    )
    found = slurm.parse_find_jobs(0, stdout, "", execution_id=EXECUTION)
    assert [job.job_id for job in found.for_step("solve")] == ["8", "31"]
    latest = found.latest("solve")
    assert latest is not None and latest.job_id == "31"


@pytest.mark.parametrize(
    "stdout",
    ["", "#hpcwaas-find squeue 1\n#hpcwaas-find sacct 0\n"],
)
def test_find_jobs_when_squeue_did_not_answer_is_unavailable(stdout):
    with pytest.raises(SchedulerUnavailable):
        slurm.parse_find_jobs(0, stdout, "squeue: error: x", execution_id=EXECUTION)
