"""End to end, what a new user of `waas` meets in the first hour: piped tables in the original's
layout, `--json`, help that names the global options once, completion of IDs in a real bash,
a clear error when --api_url is not the API (the portal's /ui/ above all), and Ctrl-C while
following an execution."""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import BIN, LiveServer
from tests.e2e.test_waas_cli import DEMO_IDS, Waas


@pytest.fixture
def cli(server: LiveServer, user: str, tmp_path: Path) -> Iterator[Waas]:
    """The CLI of this test's own user (test_waas_cli's)."""
    home = tmp_path / "home"
    home.mkdir()
    runner = Waas(server, server.token(user), home)
    yield runner
    runner.cleanup()


def test_a_piped_workflows_list_is_the_original_layout_that_cut_can_read(cli: Waas) -> None:
    result = cli("workflows", "list")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].split(" | ")[0].rstrip() == "Workflow ID"
    assert [c.strip() for c in lines[0].split(" | ")][1:] == [
        "Workflow Name",
        "Application",
        "Environment ID",
        "Environment Name",
    ]
    assert set(lines[1]) == {"*"} and len(lines[1]) == len(lines[0])
    rows = [line for line in lines[2:] if set(line) != {"-"}]
    assert all(len(line) == len(lines[0]) for line in lines[2:])
    cut = subprocess.run(
        ["cut", "-d|", "-f1"], input=result.stdout, capture_output=True, text=True, check=True
    )
    ids = [word.strip() for word in cut.stdout.splitlines()[2:] if not word.startswith("-")]
    assert set(DEMO_IDS) <= set(ids) and len(ids) == len(rows)
    assert not {"│", "┃", "━", "─"} & set(result.stdout)


def test_json_is_an_alias_of_output_json_before_and_after_the_command(cli: Waas) -> None:
    expected = json.loads(cli("-o", "json", "workflows", "list").stdout)
    assert json.loads(cli("--json", "workflows", "list").stdout) == expected
    assert json.loads(cli("workflows", "list", "--json").stdout) == expected


def test_a_commands_help_points_to_the_global_options_instead_of_repeating_them(
    cli: Waas,
) -> None:
    top = cli.raw("--help").stdout
    command = cli.raw("executions", "status", "--help").stdout
    assert top.count("--api_url URL") == 1 and "--json" in top
    assert "--api_url URL" not in command and "--skip_tls_verify" not in command
    assert "global options:\n  -o/--json, --api_url, -t and the others: see `waas --help`" in (
        command
    )
    assert "-f, --follow" in command


def _bash_complete(cli: Waas, *words: str, api_url: str | None = None) -> list[str]:
    script = cli.raw("completion", "bash").stdout
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        '_waas_complete\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = cli.env({"HW_API_URL": api_url or cli.server.url, "HW_ACCESS_TOKEN": cli.token})
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True, env=env, timeout=60
    )
    return done.stdout.split()


def test_bash_completes_workflow_and_execution_ids_from_the_api(cli: Waas) -> None:
    assert _bash_complete(cli, "waas", "workflows", "trigger", "demo@local@sw") == [
        "demo@local@sweep"
    ]
    execution_id = cli.trigger("demo@local@hello")
    assert _bash_complete(cli, "waas", "e", "status", execution_id[:6]) == [execution_id]
    assert execution_id in _bash_complete(cli, "waas", "executions", "cancel", "x", "")
    # without a server to ask, completion offers what it knows and prints no error
    offline = _bash_complete(cli, "waas", "e", "status", "--f", api_url="http://127.0.0.1:9")
    assert "--follow" in offline


def test_the_portal_address_as_api_url_gets_an_error_and_the_right_address(cli: Waas) -> None:
    result = cli.raw("--api_url", cli.server.url + "/ui/", f"-t={cli.token}", "workflows")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"Hint: {cli.server.url}/ui/ is the web portal; the API is at {cli.server.url}: "
        f"use --api_url {cli.server.url}"
    )


@pytest.fixture
def other_site() -> Iterator[str]:
    """A plain web server: answers HTML pages, 404 for anything it does not have."""
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()


def test_an_api_url_that_is_not_an_hpcwaas_api_is_said_so(cli: Waas, other_site: str) -> None:
    result = cli.raw("--api_url", other_site, "-t=x", "executions", "status", "abc")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {other_site}/executions/abc does not answer as an hpcwaas API "
        "(HTTP 404, text/html): check that --api_url is the API's address",
        "Hint: --api_url is the address of the server's API, as the administrator gave it "
        "(e.g. https://host:port), without a path the API does not know",
    ]


def test_ctrl_c_while_following_leaves_the_execution_running_and_says_how_to_follow_it(
    cli: Waas,
) -> None:
    execution_id = cli.start_sleep()
    follower = cli.popen("executions", "status", "-f", execution_id)
    assert follower.stdout is not None
    # Ctrl-C once it is following: after its first status line (a busy machine starts it slowly)
    first = follower.stdout.readline()
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 130
    assert first.rstrip("\n") == f"Execution: ID: {execution_id}, Status: RUNNING"
    assert err.strip() == (
        f"Stopped following. Execution {execution_id} keeps running on the server; "
        f"follow it again with: waas executions status -f {execution_id}  "
        f"(or stop it with: waas executions cancel {execution_id})"
    )
    assert cli.status(execution_id)["status"] == "RUNNING"
