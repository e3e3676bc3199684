"""`-f` on a terminal: elapsed time and current step on stderr while waiting, stdout as the
original's; Ctrl-C says the execution keeps running and how to follow it again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.unit.fake_api import FakeApi, reply

from hpcwaas.cli import executions, progress
from hpcwaas.cli.config import ENV_VARS
from hpcwaas.cli.main import main


def _execution(status: str, started: datetime, *steps: dict[str, object]) -> dict[str, object]:
    return {
        "id": "ex-1",
        "status": status,
        "created_at": started.isoformat(),
        "started_at": started.isoformat(),
        "steps": list(steps),
    }


PREPARE = {"name": "prepare", "state": "SUCCEEDED", "exit_code": 0}
QUEUED = {"name": "compute", "state": "RUNNING", "job_id": "42"}


def scripted() -> FakeApi:
    """An execution started 2 min 5 s ago, seen queued, then running, then SUCCEEDED."""
    now = datetime.now(UTC)  # when the test runs, not when the module was imported
    started = now - timedelta(minutes=2, seconds=5)
    running = {**QUEUED, "running_at": now.isoformat()}
    done = {**running, "state": "SUCCEEDED", "exit_code": 0}
    return FakeApi().on(
        "GET",
        "/executions/ex-1",
        reply(200, _execution("RUNNING", started, PREPARE, QUEUED)),
        reply(200, _execution("RUNNING", started, PREPARE, running)),
        reply(200, _execution("SUCCEEDED", started, PREPARE, done)),
    )


@pytest.fixture
def api() -> FakeApi:
    return scripted()


def _run(api, capsys, monkeypatch, tmp_path, *, terminal: bool, argv: list[str], poll=0.0):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HW_ACCESS_TOKEN", "tok")
    monkeypatch.setattr(executions, "POLL_INTERVAL", poll)
    monkeypatch.setattr(progress, "is_terminal", lambda stream: terminal)
    code = main(argv, transport=httpx.MockTransport(api))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_follow_on_a_terminal_shows_elapsed_time_and_step_on_stderr_only(
    api: FakeApi, capsys, monkeypatch, tmp_path
) -> None:
    argv = ["executions", "status", "-f", "ex-1"]
    code, out, err = _run(api, capsys, monkeypatch, tmp_path, terminal=True, argv=argv)
    assert code == 0
    shown = [part for part in err.split("\r\x1b[K") if part]
    assert shown[0].startswith("RUNNING for 2 min ")
    assert shown[0].endswith(", step compute (Slurm job 42, queued)")
    assert shown[1].endswith(", step compute (Slurm job 42)")
    assert err.endswith("\r\x1b[K")  # the line is erased at the end
    assert out.splitlines()[0] == "Execution: ID: ex-1, Status: RUNNING"
    # the same stdout as to a pipe, where stderr gets nothing
    piped = _run(scripted(), capsys, monkeypatch, tmp_path, terminal=False, argv=argv)
    assert piped == (0, out, "")


@pytest.mark.parametrize(
    ("argv", "again"),
    [
        (["executions", "status", "-f", "ex-1"], "waas executions status -f ex-1"),
        (["workflows", "trigger", "-f", "demo@local@hello"], "waas executions status -f ex-1"),
        (["executions", "logs", "-f", "ex-1"], "waas executions logs -f ex-1"),
    ],
)
def test_ctrl_c_while_following_says_the_execution_keeps_running_and_how_to_follow_it(
    api: FakeApi, capsys, monkeypatch, tmp_path, argv: list[str], again: str
) -> None:
    api.on(
        "POST",
        "/workflows/demo@local@hello",
        reply(201, None, {"Location": "/executions/ex-1"}),
    )

    def interrupted(*_: object, **__: object) -> httpx.Response:
        raise KeyboardInterrupt

    if argv[1] == "logs":
        api.on("GET", "/executions/ex-1/logs", interrupted)
    else:
        monkeypatch.setattr(executions.time, "sleep", interrupted)
    code, _, err = _run(api, capsys, monkeypatch, tmp_path, terminal=False, argv=argv, poll=1)
    assert code == 130
    assert "Execution ex-1 keeps running on the server" in err
    assert f"follow it again with: {again}" in err
    assert "waas executions cancel ex-1" in err
    assert "Traceback" not in err
