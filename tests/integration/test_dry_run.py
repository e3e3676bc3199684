"""`POST /workflows/{id}?dry_run=true` and `waas workflows trigger --dry-run` on a real server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
from tests.conftest import BIN, LiveServer


def _executions(api: httpx.Client) -> list[dict[str, object]]:
    return api.get("/executions").json()["executions"]  # type: ignore[no-any-return]


def test_dry_run_returns_the_rendered_plan_and_records_nothing(
    server: LiveServer, api: httpx.Client
) -> None:
    before = _executions(api)
    response = api.post(
        "/workflows/demo@local@sweep",
        params={"dry_run": "true"},
        json={"inputs": {"n": "2", "label": "it's mine"}},
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["dry_run"] is True
    assert plan["workflow_id"] == "demo@local@sweep"
    assert plan["inputs"]["n"] == 2  # validated and typed as a trigger would
    steps = {s["name"]: s for s in plan["steps"]}
    order = [s["name"] for s in plan["steps"]]
    for name, step in steps.items():
        assert all(order.index(need) < order.index(name) for need in step["needs"])
    assert steps["prepare"]["kind"] == "shell"
    # The label is quoted for the shell exactly as the run would quote it.
    assert "'it'\"'\"'s mine'" in steps["prepare"]["command"]
    assert _executions(api) == before
    assert not Path(plan["work_dir"]).exists()


def test_dry_run_refuses_bad_inputs_with_the_same_400_as_a_trigger(api: httpx.Client) -> None:
    bad = {"inputs": {"n": "many", "colour": "red"}}
    dry = api.post("/workflows/demo@local@sweep", params={"dry_run": "true"}, json=bad)
    real = api.post("/workflows/demo@local@sweep", json=bad)
    assert dry.status_code == real.status_code == 400
    assert dry.json() == real.json()


def test_dry_run_of_an_unknown_workflow_is_a_404(api: httpx.Client) -> None:
    response = api.post("/workflows/demo@local@nope", params={"dry_run": "true"})
    assert response.status_code == 404
    assert response.json()["errors"][0]["id"] == "not_found"


def test_dry_runs_do_not_count_against_the_trigger_rate_and_are_not_audited(
    fresh_server: LiveServer,
) -> None:
    fresh_server.env["HPCWAAS_LIMITS__MAX_TRIGGERS_PER_MINUTE"] = "1"
    fresh_server.start()
    with fresh_server.client(fresh_server.token("alice")) as api:
        for _ in range(3):
            dry = api.post("/workflows/demo@local@hello", params={"dry_run": "true"})
            assert dry.status_code == 200
        assert api.post("/workflows/demo@local@hello").status_code == 201
        assert api.post("/workflows/demo@local@hello").status_code == 429
    audit = fresh_server.admin("audit", "list", "--action", "execution.trigger", "-o", "json")
    assert audit.returncode == 0, audit.stderr
    events = [json.loads(line) for line in audit.stdout.splitlines() if line.strip()]
    # One trigger recorded, one refused by the rate limit at most: never the dry runs.
    assert sum(1 for e in events if e["outcome"] == "success") == 1


def _waas(
    server: LiveServer, token: str, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
    return subprocess.run(
        [str(BIN / "waas"), "--api_url", server.url, f"-t={token}", *args],
        capture_output=True,
        text=True,
        env={**env, "HOME": str(home)},
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_waas_trigger_dry_run_prints_the_plan_readably_or_as_json(
    server: LiveServer, user: str, tmp_path: Path
) -> None:
    token = server.token(user)
    text = _waas(
        server,
        token,
        tmp_path,
        "workflows",
        "trigger",
        "--dry-run",
        "-i",
        "name=Ada Lovelace",
        "demo@local@hello",
    )
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("Dry run of demo@local@hello: nothing was run or recorded.\n")
    assert '  name = "Ada Lovelace"' in text.stdout
    assert "Step 1: " in text.stdout
    assert "'Ada Lovelace'" in text.stdout
    assert "Workflow triggered" not in text.stdout

    as_json = _waas(
        server, token, tmp_path, "-o", "json", "wf", "t", "--dry-run", "demo@local@hello"
    )
    assert as_json.returncode == 0, as_json.stderr
    plan = json.loads(as_json.stdout)
    assert plan["dry_run"] is True and plan["steps"]

    refused = _waas(
        server, token, tmp_path, "wf", "t", "--dry-run", "-i", "n=x", "demo@local@sweep"
    )
    assert refused.returncode == 1
    assert "input 'n': expected an integer" in refused.stderr

    follow = _waas(server, token, tmp_path, "wf", "t", "--dry-run", "-f", "demo@local@hello")
    assert follow.returncode == 1
    assert "nothing to follow" in follow.stderr
    with server.client(token) as api:
        assert _executions(api) == []
