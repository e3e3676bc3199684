"""End to end: the `waas` CLI as a real subprocess against a real `hpcwaas-api` process.

Every assertion is about what a user sees: stdout, stderr and the exit code.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import BIN, LiveServer, free_port, wait_for_status

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TRIGGERED = re.compile(rf"^Workflow triggered with execution ID: ({UUID})$", re.MULTILINE)
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARN|ERROR): \[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\] (.*)$")
DEMO_IDS = ("demo@local@fail", "demo@local@hello", "demo@local@sleep", "demo@local@sweep")
LIST_HEADERS = ("Workflow ID", "Workflow Name", "Application", "Environment ID", "Environment Name")


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Waas:
    """Runs `waas` as a user would, with a clean environment and a home of its own."""

    def __init__(self, server: LiveServer, token: str, home: Path) -> None:
        self.server = server
        self.token = token
        self.home = home
        self.sleeping: list[str] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HW_") and k not in ("COLUMNS", "LINES", "WAAS_DEBUG")
        }
        # A home of the test's own: no ~/.waas of the machine's user leaks in.
        return {**base, "HOME": str(self.home), **(extra or {})}

    def raw(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`waas <args>` exactly as given; never a traceback, whatever happens."""
        result = subprocess.run(
            [str(BIN / "waas"), *args],
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in result.stdout + result.stderr, result
        return result

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`waas --api_url <url> -t=<token> <args>`, the user guide's form."""
        return self.raw(
            "--api_url", self.server.url, f"-t={self.token}", *args, env=env, timeout=timeout
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(BIN / "waas"), "--api_url", self.server.url, f"-t={self.token}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env(),
            # Ctrl-C reaches it as a terminal's would, even when the tests run as a background
            # job (whose children inherit SIGINT ignored, and Python then keeps it ignored).
            preexec_fn=_interruptible,
        )

    def trigger(self, workflow: str, *inputs: str) -> str:
        """Trigger through the CLI; the execution ID it printed."""
        args = [arg for value in inputs for arg in ("-i", value)]
        result = self("workflows", "trigger", *args, workflow)
        assert result.returncode == 0, result
        match = TRIGGERED.search(result.stdout)
        assert match, result.stdout
        return match.group(1)

    def start_sleep(self) -> str:
        """A running demo@local@sleep, cancelled at the end of the test if still running."""
        execution_id = self.trigger("demo@local@sleep", "seconds=300")
        self.sleeping.append(execution_id)
        with self.server.client(self.token) as api:
            wait_for_status(api, execution_id, {"RUNNING"})
        return execution_id

    def status(self, execution_id: str) -> dict[str, object]:
        result = self("-o", "json", "executions", "status", execution_id)
        assert result.returncode == 0, result
        return json.loads(result.stdout)

    def wait_for(self, execution_id: str, statuses: set[str], timeout: float = 30) -> None:
        with self.server.client(self.token) as api:
            wait_for_status(api, execution_id, statuses, timeout=timeout)

    def cleanup(self) -> None:
        with self.server.client(self.token) as api:
            for execution_id in self.sleeping:
                api.delete(f"/executions/{execution_id}")  # 409 once it ended: fine


@pytest.fixture
def waas(server: LiveServer, user: str, tmp_path: Path) -> Iterator[Waas]:
    """The CLI of this test's own user."""
    home = tmp_path / "home"
    home.mkdir()
    cli = Waas(server, server.token(user), home)
    yield cli
    cli.cleanup()


@pytest.fixture
def other(server: LiveServer, user: str, tmp_path: Path) -> Iterator[Waas]:
    """The CLI of a second user."""
    home = tmp_path / "other-home"
    home.mkdir()
    cli = Waas(server, server.token(f"{user}-other"), home)
    yield cli
    cli.cleanup()


def _lines(text: str) -> list[str]:
    return text.strip().splitlines()


def _error_lines(text: str) -> list[str]:
    return [line for line in _lines(text) if line.startswith("Error: ")]


# --- 1. The user guide's commands, verbatim in form -------------------------------------------


def test_key_gen_prints_the_five_info_lines_with_a_uuid_and_an_rsa_public_key(waas: Waas) -> None:
    result = waas("ssh_keys", "key-gen")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "INFO: Below is your newly generated SSH public key.",
        "INFO: You can list it again later with `waas ssh_keys list`; "
        "its private key is never shown.",
        "INFO: You are responsible for adding it to the authorized_keys file on the systems "
        "you want to run your workflows.",
    ]
    assert len(lines) == 5, result.stdout
    assert re.fullmatch(rf"INFO: SSH key ID:     {UUID}", lines[3]), lines[3]
    assert re.fullmatch(r"INFO: SSH Public key: ssh-rsa AAAA[A-Za-z0-9+/=]+( \S+)?", lines[4])
    assert "\x1b[" not in result.stdout  # not a terminal: no color codes


@pytest.mark.parametrize("columns", [None, "60"])
def test_workflows_list_is_a_table_with_every_demo_id_whole(
    waas: Waas, columns: str | None
) -> None:
    result = waas("workflows", "list", env={"COLUMNS": columns} if columns else None)
    assert result.returncode == 0, result
    for header in LIST_HEADERS:
        assert header in result.stdout
    for workflow_id in DEMO_IDS:
        assert re.search(rf"(^|[\s│|]){re.escape(workflow_id)}([\s│|]|$)", result.stdout, re.M), (
            workflow_id,
            result.stdout,
        )
    hello_row = next(line for line in result.stdout.splitlines() if "demo@local@hello" in line)
    assert all(word in hello_row for word in ("hello", "demo", "local"))


def test_trigger_follow_with_an_input_prints_the_id_and_ends_succeeded(waas: Waas) -> None:
    result = waas("workflows", "trigger", "-f", "-i", "name=Ada", "demo@local@hello")
    assert result.returncode == 0, result
    match = TRIGGERED.search(result.stdout)
    assert match, result.stdout
    assert result.stdout.splitlines()[0] == match.group(0)
    execution_id = match.group(1)
    assert f"Execution: ID: {execution_id}, Status: SUCCEEDED" in result.stdout.splitlines()
    logs = waas("executions", "logs", execution_id)
    assert any(line.endswith("] Hello, Ada!") for line in logs.stdout.splitlines()), logs.stdout


def test_executions_status_prints_the_status_line_then_steps(waas: Waas) -> None:
    execution_id = waas.trigger("demo@local@hello", "name=Ada")
    waas.wait_for(execution_id, {"SUCCEEDED", "FAILED"})
    result = waas("executions", "status", execution_id)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == f"Execution: ID: {execution_id}, Status: SUCCEEDED"
    assert "  Step greet: SUCCEEDED (exit code 0)" in lines[1:]


def test_executions_status_follow_of_a_finished_execution_exits_0(waas: Waas) -> None:
    execution_id = waas.trigger("demo@local@hello", "name=Ada")
    result = waas("executions", "status", "-f", execution_id)
    assert result.returncode == 0, result
    assert result.stdout.splitlines()[-2:] == [
        f"Execution: ID: {execution_id}, Status: SUCCEEDED",
        "  Step greet: SUCCEEDED (exit code 0)",
    ]


def test_executions_cancel_of_a_running_sleep_cancels_it(waas: Waas) -> None:
    execution_id = waas.start_sleep()
    result = waas("executions", "cancel", execution_id)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        f'Cancelled execution "{execution_id}"',
        "Successfully cancelled 1 executions...",
    ]
    waas.wait_for(execution_id, {"CANCELLED"}, timeout=20)
    status = waas("executions", "status", execution_id)
    assert status.stdout.splitlines()[0] == f"Execution: ID: {execution_id}, Status: CANCELLED"


def test_waas_help_lists_the_commands(waas: Waas) -> None:
    result = waas.raw("help")
    assert result.returncode == 0, result
    for command in ("workflows", "executions", "ssh_keys", "completion", "help"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.M), command
    assert "--api_url" in result.stdout and "--access_token" in result.stdout
    trigger_help = waas.raw("help", "workflows", "trigger")
    assert trigger_help.returncode == 0
    assert "-i KEY=VALUE, --inputs KEY=VALUE" in trigger_help.stdout
    assert waas.raw().returncode == 0  # `waas` alone prints help too


# --- 2. Where the settings come from -----------------------------------------------------------


def test_global_flags_are_accepted_after_the_subcommand(waas: Waas) -> None:
    result = waas.raw("workflows", "list", "--api_url", waas.server.url, f"-t={waas.token}")
    assert result.returncode == 0, result
    assert "demo@local@hello" in result.stdout
    mixed = waas.raw(
        "--api_url", waas.server.url, "-o", "json", "workflows", "list", "-t", waas.token
    )
    assert mixed.returncode == 0, mixed
    assert isinstance(json.loads(mixed.stdout), list)


def test_settings_come_from_env_vars(waas: Waas) -> None:
    result = waas.raw(
        "workflows", "list", env={"HW_API_URL": waas.server.url, "HW_ACCESS_TOKEN": waas.token}
    )
    assert result.returncode == 0, result
    assert "demo@local@sweep" in result.stdout


def test_settings_come_from_the_config_file(waas: Waas, tmp_path: Path) -> None:
    config = tmp_path / "waas.yaml"
    config.write_text(f"api_url: {waas.server.url}\naccess_token: {waas.token}\n")
    result = waas.raw("--config", str(config), "workflows", "list")
    assert result.returncode == 0, result
    assert "demo@local@sweep" in result.stdout
    # ~/.waas is the default config file
    (waas.home / ".waas").write_text(config.read_text())
    default = waas.raw("workflows", "list")
    assert default.returncode == 0, default
    assert "demo@local@sweep" in default.stdout


def test_env_token_beats_a_wrong_token_in_the_config_file(waas: Waas, tmp_path: Path) -> None:
    config = tmp_path / "waas.yaml"
    config.write_text(f"api_url: http://127.0.0.1:{free_port()}\naccess_token: wrong-token\n")
    result = waas.raw(
        "--config",
        str(config),
        "workflows",
        "list",
        env={"HW_API_URL": waas.server.url, "HW_ACCESS_TOKEN": waas.token},
    )
    assert result.returncode == 0, result
    assert "demo@local@hello" in result.stdout


def test_a_wrong_flag_token_beats_a_right_env_token_and_fails(waas: Waas, tmp_path: Path) -> None:
    config = tmp_path / "waas.yaml"
    config.write_text(f"access_token: {waas.token}\n")
    result = waas.raw(
        "--config",
        str(config),
        "workflows",
        "list",
        "-t=wrong-token",
        env={"HW_API_URL": waas.server.url, "HW_ACCESS_TOKEN": waas.token},
    )
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert _error_lines(result.stderr)[0].startswith("Error: unauthorized (401)")


def test_a_flag_url_beats_an_env_url(waas: Waas) -> None:
    result = waas.raw(
        "--api_url",
        waas.server.url,
        "workflows",
        "list",
        env={"HW_API_URL": f"http://127.0.0.1:{free_port()}", "HW_ACCESS_TOKEN": waas.token},
    )
    assert result.returncode == 0, result


def test_a_missing_config_file_is_a_clear_error(waas: Waas, tmp_path: Path) -> None:
    result = waas("--config", str(tmp_path / "nope.yaml"), "workflows", "list")
    assert result.returncode != 0
    assert "nope.yaml" in result.stderr
    assert result.stdout == ""


# --- 3. -f exit codes --------------------------------------------------------------------------


def test_trigger_follow_of_a_failing_workflow_exits_1_and_says_failed(waas: Waas) -> None:
    result = waas("workflows", "trigger", "-f", "demo@local@fail")
    assert result.returncode == 1, result
    execution_id = TRIGGERED.search(result.stdout).group(1)  # type: ignore[union-attr]
    assert f"Execution: ID: {execution_id}, Status: FAILED" in result.stdout.splitlines()
    assert "  Step explode: FAILED (exit code 3)" in result.stdout.splitlines()


def test_status_follow_of_a_cancelled_execution_exits_1(waas: Waas) -> None:
    execution_id = waas.start_sleep()
    assert waas("executions", "cancel", execution_id).returncode == 0
    result = waas("executions", "status", "-f", execution_id, timeout=30)
    assert result.returncode == 1, result
    assert f"Execution: ID: {execution_id}, Status: CANCELLED" in result.stdout.splitlines()


# --- 4. Logs -----------------------------------------------------------------------------------


def test_logs_print_level_timestamp_content_lines(waas: Waas) -> None:
    execution_id = waas.trigger("demo@local@hello", "name=Ada")
    waas.wait_for(execution_id, {"SUCCEEDED"})
    result = waas("executions", "logs", execution_id)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines
    for line in lines:
        match = LOG_LINE.fullmatch(line)
        assert match, line
        assert match.group(1) != "DEBUG"
    assert any(re.fullmatch(r"INFO: \[[^\]]+\] Hello, Ada!", line) for line in lines), lines

    debug = waas("executions", "logs", "-d", execution_id)
    assert debug.returncode == 0, debug
    debug_lines = debug.stdout.splitlines()
    assert all(LOG_LINE.fullmatch(line) for line in debug_lines), debug_lines
    assert any(line.startswith("DEBUG: ") for line in debug_lines)
    assert [line for line in debug_lines if not line.startswith("DEBUG: ")] == lines


def test_logs_follow_of_a_running_sleep_ends_once_it_is_cancelled(waas: Waas) -> None:
    execution_id = waas.start_sleep()
    follower = waas.popen("executions", "logs", "-f", execution_id)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(follower.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 15
        while not any("sleeping for 300 seconds" in line for line in seen):
            assert time.monotonic() < deadline, f"logs -f printed nothing useful: {seen}"
            assert follower.poll() is None, "logs -f ended while the execution was running"
            time.sleep(0.1)
        time.sleep(0.5)
        assert follower.poll() is None, "logs -f ended while the execution was running"
        cancelled_at = time.monotonic()
        assert waas("executions", "cancel", execution_id).returncode == 0
        try:
            code = follower.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"logs -f still running 15 s after the cancel; printed {seen}")
        assert time.monotonic() - cancelled_at < 15
        reader.join(timeout=5)
        assert code == 0, follower.stderr.read()  # type: ignore[union-attr]
        assert "Traceback" not in follower.stderr.read()  # type: ignore[union-attr]
        assert all(LOG_LINE.fullmatch(line.rstrip("\n")) for line in seen), seen
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_trigger_with_logs_follows_them_and_ends(waas: Waas) -> None:
    result = waas("workflows", "trigger", "-l", "-i", "name=Ada", "demo@local@hello", timeout=60)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    execution_id = TRIGGERED.fullmatch(lines[0]).group(1)  # type: ignore[union-attr]
    assert any(re.fullmatch(r"INFO: \[[^\]]+\] Hello, Ada!", line) for line in lines), lines
    assert f"Execution: ID: {execution_id}, Status: SUCCEEDED" in lines


def test_trigger_with_logs_of_a_failing_workflow_exits_1(waas: Waas) -> None:
    result = waas("workflows", "trigger", "-l", "demo@local@fail", timeout=60)
    assert result.returncode == 1, result
    assert any(
        line.startswith("ERROR: ") and "exit code 3" in line for line in result.stdout.splitlines()
    )
    assert re.search(r"Status: FAILED$", result.stdout, re.M)


# --- 5. json mode ------------------------------------------------------------------------------


def test_json_workflows_list_is_only_a_json_array(waas: Waas) -> None:
    result = waas("-o", "json", "workflows", "list")
    assert result.returncode == 0, result
    workflows = json.loads(result.stdout)  # the whole of stdout: nothing else is there
    assert isinstance(workflows, list)
    assert {w["id"] for w in workflows} >= set(DEMO_IDS)
    for workflow in workflows:
        assert set(workflow) >= {
            "id",
            "name",
            "application_id",
            "environment_id",
            "environment_name",
        }


def test_json_trigger_prints_the_id_and_json_status_gives_id_and_status(waas: Waas) -> None:
    result = waas("-o", "json", "workflows", "trigger", "-i", "name=Ada", "demo@local@hello")
    assert result.returncode == 0, result
    # As the original: the ID alone, as a JSON string.
    execution_id = json.loads(result.stdout)
    assert re.fullmatch(UUID, execution_id)
    waas.wait_for(execution_id, {"SUCCEEDED"})
    status = waas("-o", "json", "executions", "status", execution_id)
    assert status.returncode == 0, status
    body = json.loads(status.stdout)
    assert body["id"] == execution_id
    assert body["status"] == "SUCCEEDED"


def test_json_key_gen_prints_id_and_public_key(waas: Waas) -> None:
    result = waas("-o", "json", "ssh_keys", "key-gen")
    assert result.returncode == 0, result
    key = json.loads(result.stdout)
    assert set(key) == {"id", "public_key"}
    assert re.fullmatch(UUID, key["id"])
    assert key["public_key"].startswith("ssh-rsa AAAA")


def test_json_errors_keep_stdout_empty(waas: Waas) -> None:
    result = waas("-o", "json", "executions", "status", str(uuid.uuid4()))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not_found" in result.stderr


def test_an_unknown_output_format_is_a_usage_error(waas: Waas) -> None:
    result = waas("-o", "yaml", "workflows", "list")
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "yaml" in result.stderr and "-o/--output" in result.stderr


# --- 6. Inputs ---------------------------------------------------------------------------------


def test_an_input_value_keeps_its_commas(waas: Waas) -> None:
    result = waas(
        "workflows", "trigger", "-f", "-i", "label=a,b,c", "-i", "n=2", "demo@local@sweep"
    )
    assert result.returncode == 0, result
    execution_id = TRIGGERED.search(result.stdout).group(1)  # type: ignore[union-attr]
    report = waas.status(execution_id)["outputs"]["report"]  # type: ignore[index]
    assert report.splitlines()[0] == f"report a,b,c (execution {execution_id})"
    assert report.splitlines()[-2:] == ["1", "2"]
    # the text status shows the report too
    text = waas("executions", "status", execution_id)
    assert f"    report a,b,c (execution {execution_id})" in text.stdout.splitlines()


def test_an_input_without_equals_is_a_usage_error_naming_it(waas: Waas) -> None:
    result = waas("workflows", "trigger", "-i", "name", "demo@local@hello")
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "-i/--inputs" in result.stderr
    assert "'name'" in result.stderr
    assert "key=value" in result.stderr


def test_bad_inputs_print_one_error_line_per_problem(waas: Waas) -> None:
    result = waas(
        "workflows",
        "trigger",
        "-i",
        "n=abc",
        "-i",
        "bogus=1",
        "-i",
        "mode=slow",
        "demo@local@sweep",
    )
    assert result.returncode == 1, result
    assert result.stdout == ""  # nothing was triggered
    errors = _error_lines(result.stderr)
    assert len(errors) == 3, result.stderr
    for name in ("'n'", "'bogus'", "'mode'"):
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert all("bad_request (400)" in line for line in errors)


def test_an_out_of_range_input_names_it(waas: Waas) -> None:
    result = waas("workflows", "trigger", "-i", "n=99", "demo@local@sweep")
    assert result.returncode == 1, result
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and "'n'" in errors[0], result.stderr


# --- 7. Errors ---------------------------------------------------------------------------------


def test_a_malformed_workflow_id_is_one_bad_request_line(waas: Waas) -> None:
    result = waas("workflows", "trigger", "not-a-workflow-id")
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = _lines(result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: bad_request (400)")
    assert "<application>@<environment>@<workflow>" in lines[0]


def test_an_unknown_workflow_is_not_found(waas: Waas) -> None:
    result = waas("workflows", "trigger", "demo@local@nope")
    assert result.returncode == 1, result
    assert _lines(result.stderr)[0].startswith("Error: not_found (404)")


def test_an_unknown_execution_is_not_found(waas: Waas) -> None:
    unknown = str(uuid.uuid4())
    for command in ("status", "logs", "cancel"):
        result = waas("executions", command, unknown)
        assert result.returncode == 1, (command, result)
        assert "not_found (404)" in result.stderr, (command, result.stderr)
        assert unknown in result.stderr


def test_an_invalid_token_is_unauthorized_with_a_hint(waas: Waas) -> None:
    result = waas.raw("--api_url", waas.server.url, "-t=not-a-real-token", "workflows", "list")
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = _lines(result.stderr)
    assert lines[0].startswith("Error: unauthorized (401)")
    assert 'Run "waas login" to log in again.' in result.stderr


def test_an_expired_token_is_unauthorized(waas: Waas, user: str) -> None:
    expired = waas.server.token(f"{user}-brief", ttl="1s")
    time.sleep(2.1)
    result = waas.raw("--api_url", waas.server.url, f"-t={expired}", "workflows", "list")
    assert result.returncode == 1, result
    assert _lines(result.stderr)[0] == (
        "Error: unauthorized (401): You are not logged in or your session has expired"
    )


def test_no_token_is_unauthorized(waas: Waas) -> None:
    result = waas.raw("--api_url", waas.server.url, "workflows", "list")
    assert result.returncode == 1, result
    assert _lines(result.stderr)[0].startswith("Error: unauthorized (401)")


def test_an_unreachable_server_is_one_line_naming_the_url(waas: Waas) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = waas.raw("--api_url", url, f"-t={waas.token}", "workflows", "list", timeout=60)
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = _lines(result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ") and url in lines[0]


def test_https_to_a_plain_http_server_suggests_an_http_url(waas: Waas) -> None:
    https_url = waas.server.url.replace("http://", "https://")
    result = waas.raw("--api_url", https_url, f"-t={waas.token}", "workflows", "list")
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert f"--api_url {waas.server.url}" in result.stderr
    assert "plain HTTP" in result.stderr


def test_an_invalid_api_url_scheme_is_an_error(waas: Waas) -> None:
    result = waas.raw("--api_url", "ftp://127.0.0.1:1", f"-t={waas.token}", "workflows", "list")
    assert result.returncode != 0, result
    assert "http://" in result.stderr


# --- 8. Isolation between users ----------------------------------------------------------------


def test_another_user_cannot_see_cancel_or_read_an_execution(waas: Waas, other: Waas) -> None:
    execution_id = waas.start_sleep()

    status = other("executions", "status", execution_id)
    assert status.returncode == 1
    assert "not_found (404)" in status.stderr and status.stdout == ""

    logs = other("executions", "logs", execution_id)
    assert logs.returncode == 1
    assert "not_found (404)" in logs.stderr and logs.stdout == ""

    cancel = other("executions", "cancel", execution_id)
    assert cancel.returncode == 1
    assert f'Failed to cancel execution "{execution_id}"' in cancel.stderr
    assert "not_found" in cancel.stderr
    assert "Successfully cancelled" not in cancel.stdout

    assert waas.status(execution_id)["status"] == "RUNNING"  # untouched
    assert execution_id in waas("executions", "list").stdout
    others_list = other("executions", "list")
    assert others_list.returncode == 0
    assert execution_id not in others_list.stdout
    assert json.loads(other("-o", "json", "executions", "list").stdout) == []


# --- 9. More commands --------------------------------------------------------------------------


def test_workflows_show_lists_inputs_with_types_and_defaults(waas: Waas) -> None:
    result = waas("workflows", "show", "demo@local@sweep")
    assert result.returncode == 0, result
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "Workflow ID:  demo@local@sweep" in result.stdout
    expected = {
        "n": ("(integer;", "default: 3"),
        "mode": ("(enum;", 'default: "fast"'),
        "label": ("(string;", 'default: "run"'),
        "verbose": ("(boolean;", "default: false"),
        "tags": ("(list of string;", 'default: ["a", "b"]'),
    }
    for name, facts in expected.items():
        line = next((x for x in lines if x.startswith(f"{name} (")), None)
        assert line is not None, (name, lines)
        assert all(fact in line for fact in facts), line


def test_executions_list_shows_the_callers_executions(waas: Waas) -> None:
    empty = waas("executions", "list")
    assert empty.returncode == 0, empty
    assert empty.stdout.strip() == "No executions found."
    first = waas.trigger("demo@local@hello")
    second = waas.trigger("demo@local@fail")
    waas.wait_for(first, {"SUCCEEDED"})
    waas.wait_for(second, {"FAILED"})
    result = waas("executions", "list")
    assert result.returncode == 0, result
    rows = [line for line in result.stdout.splitlines() if re.search(UUID, line)]
    assert len(rows) == 2
    assert second in rows[0] and "demo@local@fail" in rows[0] and "FAILED" in rows[0]
    assert first in rows[1] and "demo@local@hello" in rows[1] and "SUCCEEDED" in rows[1]


def test_ssh_keys_list_shows_the_generated_key(waas: Waas) -> None:
    generated = waas("ssh_keys", "key-gen", "-m", "cluster=hpc1")
    key_id = re.search(rf"SSH key ID:\s+({UUID})", generated.stdout).group(1)  # type: ignore[union-attr]
    result = waas("ssh_keys", "list")
    assert result.returncode == 0, result
    row = next(line for line in result.stdout.splitlines() if key_id in line)
    assert "ssh-rsa" in row and "SHA256:" in row
    keys = json.loads(waas("-o", "json", "ssh_keys", "list").stdout)
    assert [k["id"] for k in keys] == [key_id]


def test_completion_bash_prints_a_script(waas: Waas) -> None:
    result = waas.raw("completion", "bash")
    assert result.returncode == 0, result
    assert "workflows" in result.stdout
    assert "complete " in result.stdout
    checked = subprocess.run(["bash", "-n"], input=result.stdout, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_command_aliases_work(waas: Waas) -> None:
    listing = waas("wf", "ls")
    assert listing.returncode == 0 and "demo@local@hello" in listing.stdout
    execution_id = waas.trigger("demo@local@hello")
    status = waas("e", "s", "-f", execution_id)
    assert status.returncode == 0, status
    assert f"Execution: ID: {execution_id}, Status: SUCCEEDED" in status.stdout
