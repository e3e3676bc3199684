"""What `waas` loads to start: a command line pays only for the command it names.

Each case runs in a fresh interpreter, since the test process has everything loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Modules that a listing piped to another program has no use for: pydantic and the API
# models (the JSON is read as is), rich (the table is drawn plainly), the other commands.
HEAVY = (
    "pydantic",
    "hpcwaas.api.models",
    "rich",
    "hpcwaas.client.aio",
    "hpcwaas.cli.login",
    "hpcwaas.cli.executions",
    "hpcwaas.cli.ssh_keys",
    "hpcwaas.cli.environments",
    "hpcwaas.cli.completion",
)

RUN = """
import json, sys
from hpcwaas.cli.context import skip_httpx_command_line

skip_httpx_command_line()  # as `waas` does before a command imports httpx
import httpx
from hpcwaas.cli.main import main

workflow = {"id": "demo@local@hello", "name": "hello", "application_id": "demo",
            "environment_id": "local", "environment_name": "Local"}
api = httpx.MockTransport(lambda request: httpx.Response(200, json={"workflows": [workflow]}))
code = main(sys.argv[1:], transport=api)
heavy = %r
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def environment(home: Path) -> dict[str, str]:
    # Without the variables that make rich (so the plain table too) treat a pipe as a terminal.
    kept = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**kept, "HOME": str(home)}


def run_waas(tmp_path: Path, *argv: str) -> tuple[int, list[str], str]:
    """Exit code, the heavy modules loaded, and what the command printed."""
    done = subprocess.run(
        [sys.executable, "-c", RUN % (HEAVY,), *argv],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=60,
        check=False,
    )
    *printed, last = done.stdout.splitlines()
    result = json.loads(last)
    return result["code"], result["loaded"], "\n".join(printed)


def test_workflows_list_to_a_pipe_loads_no_models_no_rich_and_no_other_command(tmp_path):
    code, loaded, printed = run_waas(
        tmp_path, "--api_url", "http://127.0.0.1:9", "-t=t", "workflows", "list"
    )
    assert (code, loaded) == (0, [])
    assert "\ndemo@local@hello | hello" in printed


def test_help_loads_no_command_and_no_http_client(tmp_path):
    probe = (
        "import sys; from hpcwaas.cli.main import main; main(['--help']); "
        f"print([m for m in ('httpx', *{HEAVY!r}) if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=60,
        check=True,
    )
    assert "workflows (workflow, wf, w)" in done.stdout
    assert done.stdout.splitlines()[-1] == "[]"
