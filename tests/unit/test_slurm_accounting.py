"""Reading what sacct kept of an ended job: the allocation's state, exit code, elapsed time
and CPU time, and the largest resident set size over its steps."""

from __future__ import annotations

import pytest

from hpcwaas.schedulers.slurm_accounting import Accounting, accounting_command, parse_accounting

# sacct --noheader --parsable2 --units=K --format=JobID,State,ExitCode,ElapsedRaw,TotalCPU,MaxRSS
ENDED = """\
42|FAILED|3:0|4|00:01.502|
42.batch|FAILED|3:0|4|00:01.500|67012K
42.extern|COMPLETED|0:0|4|00:00.002|1032K
"""


def test_an_ended_job_gives_state_exit_code_times_and_the_largest_rss() -> None:
    assert parse_accounting("42", 0, ENDED) == Accounting(
        state="FAILED",
        exit_code=3,
        elapsed_seconds=4,
        cpu_seconds=pytest.approx(1.502),
        max_rss_bytes=67012 * 1024,
    )


@pytest.mark.parametrize(
    ("total_cpu", "seconds"),
    [("00:01.502", 1.502), ("02:03:04", 7384.0), ("1-00:00:01", 86401.0), ("12:34", 754.0)],
)
def test_cpu_time_in_each_of_sacct_formats(total_cpu: str, seconds: float) -> None:
    found = parse_accounting("7", 0, f"7|COMPLETED|0:0|9|{total_cpu}|2048K\n")
    assert found is not None and found.cpu_seconds == pytest.approx(seconds)


def test_nothing_while_slurmdbd_has_not_recorded_the_end() -> None:
    assert parse_accounting("42", 0, "42|RUNNING|0:0|2|00:00:00|\n") is None
    assert parse_accounting("42", 0, "") is None
    # a cluster without accounting: sacct fails
    assert parse_accounting("42", 1, "") is None


def test_a_cancelled_job_keeps_slurms_word_and_who_is_dropped() -> None:
    found = parse_accounting("9", 0, "9|CANCELLED by 1000|0:15|1|00:00.010|\n")
    assert found is not None
    assert (found.state, found.exit_code, found.max_rss_bytes) == ("CANCELLED", 0, None)


def test_the_command_quotes_and_checks_the_job_id() -> None:
    assert accounting_command("42").endswith(
        "--jobs=42 --format=JobID,State,ExitCode,ElapsedRaw,TotalCPU,MaxRSS"
    )
    with pytest.raises(ValueError, match="not a Slurm job ID"):
        accounting_command("42; rm -rf ~")
