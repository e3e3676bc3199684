"""Stopping a remote run on cancel or timeout: a transient failure (an Airflow answering 500
when its update loses a deadlock to its scheduler, a timeout) is tried again; a refusal is
not."""

from __future__ import annotations

from collections.abc import Mapping

from hpcwaas.engine.remotesteps import RemoteEnd, RemoteError, stop_run


class Run:
    """A run whose stop fails with ``failures`` first."""

    def __init__(self, *failures: RemoteError) -> None:
        self.run_id = "run-1"
        self.reattached = False
        self.failures = list(failures)
        self.stops = 0

    async def wait(self, on_line: object, offsets: Mapping[str, int]) -> RemoteEnd:
        raise AssertionError("not followed here")

    async def cancel(self) -> None:
        self.stops += 1
        if self.failures:
            raise self.failures.pop(0)


def transient() -> RemoteError:
    return RemoteError("the Airflow answered 500 when asked to stop run run-1", retryable=True)


async def test_a_transient_failure_is_tried_again_until_the_run_stops() -> None:
    run = Run(transient(), transient())
    assert await stop_run(run, delay=0) is None
    assert run.stops == 3


async def test_a_run_that_cannot_be_stopped_gives_the_last_error_after_the_attempts() -> None:
    run = Run(transient(), transient(), transient(), transient())
    error = await stop_run(run, attempts=3, delay=0)
    assert error is not None and "answered 500" in str(error)
    assert run.stops == 3


async def test_a_refusal_is_not_tried_again() -> None:
    refused = RemoteError("the Airflow refused the account", retryable=False)
    run = Run(refused)
    assert await stop_run(run, delay=0) is refused
    assert run.stops == 1
