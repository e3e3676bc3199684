"""`waas executions status` adds each step's line (its Slurm job, the environment it ran on when
not the workflow's, Slurm's accounting) after the original's line, which stays byte for byte;
`-o json` carries them as the API does."""

from __future__ import annotations

import json

import httpx
from tests.unit.fake_api import FakeApi, reply

from hpcwaas.cli.config import ENV_VARS
from hpcwaas.cli.main import main

ACCOUNTING = {
    "state": "COMPLETED",
    "exit_code": 0,
    "elapsed_seconds": 75,
    "cpu_seconds": 61.25,
    "max_rss_bytes": 67108864,
}
EXECUTION = {
    "id": "ex-1",
    "status": "SUCCEEDED",
    "steps": [
        {"name": "prepare", "state": "SUCCEEDED", "exit_code": 0},
        {
            "name": "compute",
            "state": "SUCCEEDED",
            "exit_code": 0,
            "job_id": "42",
            "accounting": ACCOUNTING,
        },
        {"name": "publish", "state": "SUCCEEDED", "exit_code": 0, "environment_id": "hpc2"},
        {
            "name": "post",
            "state": "SUCCEEDED",
            "exit_code": 0,
            "job_id": "7",
            "environment_id": "hpc2",
        },
    ],
}


def _status(monkeypatch, capsys, tmp_path, *extra: str) -> str:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HW_ACCESS_TOKEN", "tok")
    api = FakeApi().on("GET", "/executions/ex-1", reply(200, EXECUTION))
    assert main([*extra, "executions", "status", "ex-1"], transport=httpx.MockTransport(api)) == 0
    return str(capsys.readouterr().out)


def test_status_shows_each_jobs_accounting_after_its_step(monkeypatch, capsys, tmp_path) -> None:
    assert _status(monkeypatch, capsys, tmp_path).splitlines() == [
        "Execution: ID: ex-1, Status: SUCCEEDED",
        "  Step prepare: SUCCEEDED (exit code 0)",
        "  Step compute: SUCCEEDED (Slurm job 42, exit code 0)",
        "    Slurm accounting: COMPLETED, exit code 0, elapsed 75 s, CPU time 61.2 s, "
        "max RSS 64.0 MiB",
        "  Step publish: SUCCEEDED (on hpc2, exit code 0)",
        "  Step post: SUCCEEDED (Slurm job 7 on hpc2, exit code 0)",
    ]


def test_status_in_json_has_the_accounting_as_the_api(monkeypatch, capsys, tmp_path) -> None:
    document = json.loads(_status(monkeypatch, capsys, tmp_path, "--json"))
    assert document["steps"][1]["accounting"] == ACCOUNTING
