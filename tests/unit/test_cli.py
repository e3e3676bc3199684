"""What `waas` commands print and how they exit, against a scripted fake API."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass

import httpx
import pytest
from tests.unit.fake_api import Answer, FakeApi, reply

from hpcwaas.api.errors import envelope
from hpcwaas.api.models import WorkflowPublic
from hpcwaas.cli import executions, workflows
from hpcwaas.cli.config import ENV_VARS
from hpcwaas.cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def waas(api, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HW_ACCESS_TOKEN", "tok")
    monkeypatch.setattr(executions, "POLL_INTERVAL", 0)
    monkeypatch.setattr(executions, "RETRY_BASE_DELAY", 0)

    def run(*argv: str) -> Result:
        code = main(list(argv), transport=httpx.MockTransport(api))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


LONG_ID = "a-rather-long-application-name@an-environment-with-a-long-name@the-workflow"
WORKFLOWS = [
    {
        "id": LONG_ID,
        "name": "the-workflow",
        "application_id": "a-rather-long-application-name",
        "environment_id": "an-environment-with-a-long-name",
        "environment_name": "A cluster whose display name is long enough to wrap",
    },
    {
        "id": "demo@local@hello",
        "name": "hello",
        "application_id": "demo",
        "environment_id": "local",
        "environment_name": "Local [test]",
    },
]


def execution(status: str, **extra: object) -> Answer:
    return reply(200, {"id": "ex-1", "status": status, **extra})


def log_page(entries: list[tuple[str, str]], total: int, start: int) -> Answer:
    logs = [
        {"level": level, "timestamp": "2024-05-01T10:00:00.250+00:00", "content": content}
        for level, content in entries
    ]
    return reply(200, {"logs": logs, "total_results": total, "from": start})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- workflows ---------------------------------------------------------------------------


def test_workflows_list_prints_a_table_with_the_five_columns(waas, api) -> None:
    api.on("GET", "/workflows", reply(200, {"workflows": WORKFLOWS}))
    result = waas("workflows", "list")
    assert result.code == 0
    header = result.lines[0]
    for column in ("Workflow ID", "Workflow Name", "Application", "Environment ID"):
        assert column in header
    assert "Environment Name" in result.out
    assert "Local [test]" in result.out  # not eaten as markup


def test_workflows_list_never_cuts_an_id_even_on_a_narrow_terminal(waas, api, monkeypatch):
    api.on("GET", "/workflows", reply(200, {"workflows": WORKFLOWS}))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("COLUMNS", "40")
    assert waas("wf", "ls").code == 0
    text = terminal.getvalue()
    assert LONG_ID in text
    assert "demo@local@hello" in text


def test_workflows_list_json_is_exactly_the_array(waas, api) -> None:
    api.on("GET", "/workflows", reply(200, {"workflows": WORKFLOWS}))
    result = waas("-o", "json", "workflows", "list")
    assert json.loads(result.out) == WORKFLOWS


def test_workflows_list_json_keeps_the_fields_of_a_workflow_in_the_api_order(waas, api) -> None:
    # A field a newer server adds is left out, and a null description too (as before).
    described = {"description": "Say hello.", **WORKFLOWS[1], "added_later": 1}
    api.on(
        "GET",
        "/workflows",
        reply(200, {"workflows": [{**WORKFLOWS[0], "description": None}, described]}),
    )
    listed = json.loads(waas("-o", "json", "workflows", "list").out)
    assert listed == [WORKFLOWS[0], {**WORKFLOWS[1], "description": "Say hello."}]
    assert list(listed[1]) == [*workflows.WORKFLOW_FIELDS, "description"]


def test_workflows_list_fields_are_those_of_the_api_model() -> None:
    fields = WorkflowPublic.model_fields
    assert (*workflows.WORKFLOW_FIELDS, *workflows.OPTIONAL_WORKFLOW_FIELDS) == tuple(fields)
    assert all(fields[name].is_required() for name in workflows.WORKFLOW_FIELDS)
    assert not any(fields[name].is_required() for name in workflows.OPTIONAL_WORKFLOW_FIELDS)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"workflows": [{**WORKFLOWS[1], "name": 7}]}, "workflows[0].name should be a string"),
        ({"workflows": [WORKFLOWS[0], {"id": "x"}]}, "workflows[1].name should be a string"),
        ({"workflows": ["demo@local@hello"]}, "workflows[0] should be an object"),
        ({"items": []}, "`workflows` should be a list"),
        ([], "`workflows` should be a list"),
    ],
)
def test_workflows_list_reports_a_malformed_answer_as_unexpected(waas, api, body, problem):
    api.on("GET", "/workflows", reply(200, body))
    result = waas("workflows", "list")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        f"Error: unexpected response (HTTP 200): the body is not a valid WorkflowList: {problem}\n"
    )


def test_no_workflows_says_so_in_text_and_is_an_empty_array_in_json(waas, api) -> None:
    api.on("GET", "/workflows", reply(200, {"workflows": []}))
    assert waas("wf", "ls").out == "No workflows found.\n"
    result = waas("wf", "ls", "-o", "json")
    assert result.out == "[]\n"
    assert result.err == ""


def test_workflows_show_lists_inputs_with_types_defaults_and_descriptions(waas, api) -> None:
    detail = {
        **WORKFLOWS[1],
        "description": "Say hello.",
        "inputs": [
            {
                "name": "name",
                "type": "string",
                "required": False,
                "default": "world",
                "description": "Who to greet",
            },
            {"name": "n", "type": "integer", "required": True, "minimum": 1, "maximum": 8},
            {
                "name": "mode",
                "type": "enum",
                "required": False,
                "default": "fast",
                "values": ["fast", "accurate"],
            },
        ],
        "steps": ["greet"],
        "outputs": [],
    }
    api.on("GET", "/workflows/demo@local@hello", reply(200, detail))
    out = waas("wf", "show", "demo@local@hello").out
    assert '  name (string; default: "world"): Who to greet' in out
    assert "  n (integer; required, min 1, max 8)" in out
    assert '  mode (enum; default: "fast", one of "fast", "accurate")' in out
    assert "Description:  Say hello." in out


def test_trigger_prints_the_execution_id(waas, api) -> None:
    api.on(
        "POST", "/workflows/demo@local@hello", reply(201, None, {"Location": "/executions/ex-1"})
    )
    result = waas("workflows", "trigger", "demo@local@hello")
    assert (result.code, result.out) == (0, "Workflow triggered with execution ID: ex-1\n")


def test_trigger_json_prints_only_the_id_as_a_json_string(waas, api) -> None:
    api.on(
        "POST", "/workflows/demo@local@hello", reply(201, None, {"Location": "/executions/ex-1"})
    )
    result = waas("-o", "json", "wf", "trigger", "demo@local@hello")
    assert result.out == '"ex-1"\n'


@pytest.mark.parametrize(("final", "code"), [("SUCCEEDED", 0), ("FAILED", 1), ("CANCELLED", 1)])
def test_trigger_follow_prints_each_status_change_and_exits_by_final_status(
    waas, api, final, code
) -> None:
    api.on(
        "POST", "/workflows/demo@local@hello", reply(201, None, {"Location": "/executions/ex-1"})
    )
    api.on(
        "GET",
        "/executions/ex-1",
        execution("PENDING"),
        execution("RUNNING"),
        execution("RUNNING"),
        execution(final),
    )
    result = waas("-t=tok", "workflows", "trigger", "-f", "demo@local@hello")
    assert result.code == code
    assert result.lines == [
        "Workflow triggered with execution ID: ex-1",
        "Execution: ID: ex-1, Status: PENDING",
        "Execution: ID: ex-1, Status: RUNNING",
        f"Execution: ID: ex-1, Status: {final}",
    ]


def test_trigger_logs_follows_logs_then_prints_final_status(waas, api) -> None:
    api.on(
        "POST", "/workflows/demo@local@hello", reply(201, None, {"Location": "/executions/ex-1"})
    )
    api.on(
        "GET", "/executions/ex-1/logs", log_page([("INFO", "started")], 1, 0), log_page([], 1, 1)
    )
    api.on("GET", "/executions/ex-1", execution("FAILED"))
    result = waas("wf", "run", "-l", "demo@local@hello")
    assert result.code == 1
    assert result.lines == [
        "Workflow triggered with execution ID: ex-1",
        "INFO: [2024-05-01T10:00:00Z] started",
        "Execution: ID: ex-1, Status: FAILED",
    ]


# --- executions ----------------------------------------------------------------------------


def test_status_prints_the_status_line_then_steps(waas, api) -> None:
    steps = [
        {"name": "prepare", "state": "SUCCEEDED", "exit_code": 0},
        {"name": "run", "state": "RUNNING"},
    ]
    api.on("GET", "/executions/ex-1", execution("RUNNING", steps=steps))
    result = waas("executions", "status", "ex-1")
    assert result.lines == [
        "Execution: ID: ex-1, Status: RUNNING",
        "  Step prepare: SUCCEEDED (exit code 0)",
        "  Step run: RUNNING",
    ]


def test_status_shows_error_and_multiline_outputs_indented(waas, api) -> None:
    outputs = {"report": "line 1\nline 2\n", "count": 3}
    api.on("GET", "/executions/ex-1", execution("FAILED", error="step x failed", outputs=outputs))
    assert waas("e", "get", "ex-1").lines == [
        "Execution: ID: ex-1, Status: FAILED",
        "  Error: step x failed",
        "  Output report:",
        "    line 1",
        "    line 2",
        "  Output count: 3",
    ]


def test_status_json_has_id_and_status(waas, api) -> None:
    api.on("GET", "/executions/ex-1", execution("SUCCEEDED", outputs={"report": "ok"}))
    document = json.loads(waas("e", "s", "ex-1", "-o", "json").out)
    assert document == {"id": "ex-1", "status": "SUCCEEDED", "outputs": {"report": "ok"}}


@pytest.mark.parametrize(("final", "code"), [("SUCCEEDED", 0), ("FAILED", 1), ("CANCELLED", 1)])
def test_status_follow_exit_code_tells_how_the_execution_ended(waas, api, final, code) -> None:
    api.on(
        "GET", "/executions/ex-1", execution("RUNNING"), execution("CANCELLING"), execution(final)
    )
    result = waas("executions", "status", "-f", "ex-1")
    assert result.code == code
    assert result.lines[-1] == f"Execution: ID: ex-1, Status: {final}"


def test_status_follow_in_json_prints_one_json_document_per_change(waas, api) -> None:
    api.on("GET", "/executions/ex-1", execution("RUNNING"), execution("SUCCEEDED"))
    result = waas("-o", "json", "executions", "status", "--follow", "ex-1")
    assert [json.loads(line)["status"] for line in result.lines] == ["RUNNING", "SUCCEEDED"]


def test_logs_prints_level_timestamp_and_content(waas, api) -> None:
    api.on(
        "GET",
        "/executions/ex-1/logs",
        log_page([("INFO", "hello"), ("ERROR", "boom")], 2, 0),
    )
    result = waas("executions", "logs", "ex-1")
    assert result.code == 0
    assert result.lines == [
        "INFO: [2024-05-01T10:00:00Z] hello",
        "ERROR: [2024-05-01T10:00:00Z] boom",
    ]
    (request,) = api.requests
    assert request.url.params["levels"] == "14"
    assert request.url.params["timeout"] == "0s"


# What a step may print: set the window title, clear the screen, a bell, a carriage return.
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[H\r\x9b2J"
SHOWN = "\\x1b]0;owned\\x07\\x1b[2J\\x1b[H\\r\\x9b2J"


def test_logs_on_a_terminal_show_control_characters_escaped_but_color_the_level(
    waas, api, monkeypatch
) -> None:
    api.on("GET", "/executions/ex-1/logs", log_page([("INFO", f"a\tb{ESCAPES}\nz")], 1, 0))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert waas("executions", "logs", "ex-1").code == 0
    assert terminal.getvalue() == (f"\x1b[36mINFO\x1b[0m: [2024-05-01T10:00:00Z] a\tb{SHOWN}\\nz\n")


def test_logs_to_a_pipe_and_in_json_keep_the_content_as_it_is(waas, api) -> None:
    content = f"a\tb{ESCAPES}"
    api.on("GET", "/executions/ex-1/logs", log_page([("INFO", content)], 1, 0))
    assert waas("executions", "logs", "ex-1").out == f"INFO: [2024-05-01T10:00:00Z] {content}\n"
    api.on("GET", "/executions/ex-1/logs", log_page([("INFO", content)], 1, 0))
    (line,) = waas("-o", "json", "executions", "logs", "ex-1").lines
    assert json.loads(line)["logs"][0]["content"] == content


def test_status_on_a_terminal_shows_control_characters_escaped(waas, api, monkeypatch) -> None:
    steps = [{"name": f"s{ESCAPES}", "state": "FAILED", "exit_code": 1}]
    outputs = {"report": "line 1\x1b[2J\nline 2", "count": f"3{ESCAPES}"}
    api.on(
        "GET",
        "/executions/ex-1",
        execution("FAILED", error=f"failed{ESCAPES}", outputs=outputs, steps=steps),
    )
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert waas("e", "get", "ex-1").code == 0
    assert terminal.getvalue().splitlines() == [
        "Execution: ID: ex-1, Status: FAILED",
        f"  Step s{SHOWN}: FAILED (exit code 1)",
        f"  Error: failed{SHOWN}",
        "  Output report:",
        "    line 1\\x1b[2J",
        "    line 2",
        f"  Output count: 3{SHOWN}",
    ]


def test_logs_debug_asks_for_every_level_and_from_sets_the_start(waas, api) -> None:
    api.on("GET", "/executions/ex-1/logs", log_page([], 0, 5))
    waas("e", "logs", "-d", "--from", "5", "ex-1")
    assert api.requests[0].url.params["levels"] == "15"
    assert api.requests[0].url.params["from"] == "5"


def test_logs_pages_by_advancing_from_by_the_entries_received(waas, api) -> None:
    api.on(
        "GET",
        "/executions/ex-1/logs",
        log_page([("INFO", "one"), ("INFO", "two")], 3, 0),
        log_page([("INFO", "three")], 3, 2),
    )
    result = waas("e", "l", "ex-1")
    assert [line.split("] ")[1] for line in result.lines] == ["one", "two", "three"]
    assert [r.url.params["from"] for r in api.requests] == ["0", "2"]


def test_logs_follow_ends_once_the_execution_is_terminal_and_nothing_remains(waas, api) -> None:
    api.on(
        "GET",
        "/executions/ex-1/logs",
        log_page([("INFO", "a"), ("INFO", "b")], 2, 0),
        log_page([("WARN", "c")], 3, 2),
        log_page([("INFO", "d")], 4, 3),  # written just before the final status
    )
    api.on("GET", "/executions/ex-1", execution("RUNNING"), execution("SUCCEEDED"))
    result = waas("executions", "logs", "-f", "ex-1")
    assert result.code == 0
    assert [line.split("] ")[1] for line in result.lines] == ["a", "b", "c", "d"]
    logs = api.sent("GET", "/executions/ex-1/logs")
    assert [r.url.params["from"] for r in logs] == ["0", "2", "3"]
    # Long polls while running; once the execution ended, a last read that does not wait.
    assert [r.url.params["timeout"] for r in logs] == ["10s", "10s", "0s"]


def test_logs_follow_of_a_finished_execution_without_entries_returns_at_once(waas, api):
    api.on("GET", "/executions/ex-1/logs", log_page([], 0, 0))
    api.on("GET", "/executions/ex-1", execution("SUCCEEDED"))
    result = waas("executions", "logs", "--follow", "ex-1")
    assert (result.code, result.out) == (0, "")
    assert len(api.sent("GET", "/executions/ex-1/logs")) == 2


def test_follow_survives_a_dropped_connection_and_a_503(waas, api) -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 104] Connection reset by peer", request=request)

    api.on(
        "GET",
        "/executions/ex-1",
        execution("RUNNING"),
        dropped,
        reply(503, envelope(503, "database unavailable")),
        execution("SUCCEEDED"),
    )
    result = waas("executions", "status", "-f", "ex-1")
    assert result.code == 0
    assert result.lines[-1] == "Execution: ID: ex-1, Status: SUCCEEDED"
    assert "Connection reset by peer" in result.err and "retrying" in result.err


def test_follow_gives_up_on_a_persistent_failure_with_exit_1(waas, api) -> None:
    api.on("GET", "/executions/ex-1", reply(502, None))
    result = waas("executions", "status", "-f", "ex-1")
    assert result.code == 1
    assert result.err.splitlines()[-1].startswith("Error: bad_gateway (502)")
    assert len(api.requests) == executions.FOLLOW_RETRIES + 1


def test_follow_does_not_retry_a_not_found(waas, api) -> None:
    api.on("GET", "/executions/ex-1", reply(404, envelope(404, "no such execution")))
    result = waas("executions", "status", "-f", "ex-1")
    assert result.code == 1
    assert len(api.requests) == 1


def test_logs_json_prints_the_answer_object_as_the_original(waas, api) -> None:
    api.on("GET", "/executions/ex-1/logs", log_page([("INFO", "x")], 1, 0))
    (line,) = waas("-o", "json", "e", "logs", "ex-1").lines
    assert json.loads(line) == {
        "logs": [{"level": "INFO", "timestamp": "2024-05-01T10:00:00.250000Z", "content": "x"}],
        "total_results": 1,
        "from": 0,
    }


def test_cancel_reports_each_execution_and_a_summary(waas, api) -> None:
    api.on("DELETE", "/executions/a", reply(202))
    api.on("DELETE", "/executions/b", reply(202))
    result = waas("executions", "cancel", "a", "b")
    assert result.code == 0
    assert result.lines == [
        'Cancelled execution "a"',
        'Cancelled execution "b"',
        "Successfully cancelled 2 executions...",
    ]


def test_cancel_with_a_failure_says_why_and_exits_1(waas, api) -> None:
    api.on("DELETE", "/executions/a", reply(202))
    api.on("DELETE", "/executions/b", reply(404, envelope(404, 'execution "b" not found')))
    result = waas("e", "c", "a", "b")
    assert result.code == 1
    assert result.lines == ['Cancelled execution "a"', "Successfully cancelled 1 executions..."]
    assert 'Failed to cancel execution "b": not_found (404): execution "b" not found' in result.err


REMOVED = {
    "cluster_work_dir": {"at": "2026-11-25T12:00:00Z", "by": "alice"},
    "logs": {"at": "2026-11-25T12:00:00Z", "by": "alice"},
    "outputs": {"at": "2026-11-25T12:00:00Z", "by": "alice"},
}


def test_purge_reports_each_execution_and_a_summary_and_exits_1_if_any_failed(waas, api) -> None:
    api.on("DELETE", "/executions/a/data", reply(200, {"id": "a", "status": "SUCCEEDED",
                                                      "data_removed": REMOVED}))  # fmt: skip
    conflict = envelope(409, "execution b is RUNNING: its data can be removed once it has ended")
    api.on("DELETE", "/executions/b/data", reply(409, conflict))
    result = waas("executions", "purge", "a", "b")
    assert result.code == 1
    assert result.lines == [
        'Removed the data of execution "a" (cluster work dir, logs, outputs)',
        "Removed the data of 1 executions.",
    ]
    assert 'Failed to remove the data of execution "b": conflict (409): execution b is RUNNING' in (
        result.err
    )
    # the cancel command and its `delete` alias are not touched by purge
    assert api.sent("DELETE", "/executions/a") == []


def test_purge_json_lists_purged_and_failed_ids(waas, api) -> None:
    api.on("DELETE", "/executions/a/data", reply(200, {"id": "a", "status": "FAILED"}))
    result = waas("-o", "json", "executions", "purge", "a")
    assert result.code == 0
    assert json.loads(result.out) == {"purged": ["a"], "failed": []}


def test_status_says_which_data_was_removed_when_and_by_whom(waas, api) -> None:
    removed = {"logs": {"at": "2026-11-25T12:00:00Z", "by": "retention"}}
    api.on("GET", "/executions/ex-1", execution("SUCCEEDED", data_removed=removed))
    assert waas("executions", "status", "ex-1").lines == [
        "Execution: ID: ex-1, Status: SUCCEEDED",
        "  Data removed: logs (by retention on 2026-11-25T12:00:00Z)",
    ]


def test_executions_list_shows_a_table_and_follows_cursors(waas, api) -> None:
    first = {
        "id": "ex-1",
        "workflow_id": "demo@local@hello",
        "status": "RUNNING",
        "created_at": "2024-05-01T10:00:00Z",
    }
    second = {**first, "id": "ex-2", "status": "SUCCEEDED", "ended_at": "2024-05-01T10:05:00Z"}
    api.on(
        "GET",
        "/executions",
        reply(200, {"executions": [first], "next_cursor": "c1"}),
        reply(200, {"executions": [second]}),
    )
    result = waas("executions", "list")
    assert "ex-1" in result.out and "ex-2" in result.out and "Execution ID" in result.out
    assert api.requests[1].url.params["cursor"] == "c1"


# --- ssh keys ------------------------------------------------------------------------------

KEY = {"id": "0b5f-key", "public_key": "ssh-rsa AAAAB3Nza user@host\n"}


def test_key_gen_prints_the_five_info_lines(waas, api) -> None:
    api.on("POST", "/ssh_keys", reply(201, KEY))
    result = waas("ssh_keys", "key-gen")
    assert result.code == 0
    assert result.out == (
        "INFO: Below is your newly generated SSH public key.\n"
        "INFO: You can list it again later with `waas ssh_keys list`; "
        "its private key is never shown.\n"
        "INFO: You are responsible for adding it to the authorized_keys file on the systems "
        "you want to run your workflows.\n"
        "INFO: SSH key ID:     0b5f-key\n"
        "INFO: SSH Public key: ssh-rsa AAAAB3Nza user@host\n"
    )


def test_key_gen_colors_the_info_prefix_only_on_a_terminal(waas, api, monkeypatch) -> None:
    api.on("POST", "/ssh_keys", reply(201, KEY))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    waas("k", "g")
    first = terminal.getvalue().splitlines()[0]
    assert first.startswith("\x1b[") and "INFO" in first and not first.startswith("INFO: ")


def test_key_gen_json_is_id_and_public_key(waas, api) -> None:
    api.on("POST", "/ssh_keys", reply(201, KEY))
    assert json.loads(waas("-o", "json", "keys", "gen").out) == KEY


def test_ssh_keys_delete_reports_each_key(waas, api) -> None:
    api.on("DELETE", "/ssh_keys/k1", reply(204))
    result = waas("ssh_keys", "delete", "k1", "k2")
    assert result.code == 1
    assert result.lines == ['Deleted SSH key "k1"']
    assert 'Failed to delete SSH key "k2"' in result.err


# --- errors --------------------------------------------------------------------------------


def test_api_error_prints_one_line_per_item_and_exits_1(waas, api) -> None:
    body = envelope(400, "input 'n' must be an integer", "input 'mode' is required")
    api.on("POST", "/workflows/demo@local@hello", reply(400, body))
    result = waas("wf", "trigger", "-i", "n=x", "demo@local@hello")
    assert result.code == 1
    assert result.out == ""
    assert result.err.splitlines() == [
        "Error: bad_request (400): input 'n' must be an integer",
        "Error: bad_request (400): input 'mode' is required",
    ]


def test_unauthorized_error_hints_where_to_get_a_token(waas, api) -> None:
    api.on("GET", "/workflows", reply(401, envelope(401, "Authorization Required")))
    result = waas("--api_url", "https://waas.example", "wf", "ls")
    assert result.code == 1
    assert "Error: unauthorized (401): Authorization Required" in result.err
    assert "https://waas.example/auth/login" in result.err


def test_json_mode_keeps_stdout_pure_on_errors_and_messages(waas, api) -> None:
    api.on("DELETE", "/executions/a", reply(202))
    api.on("DELETE", "/executions/b", reply(409, envelope(409, "already ended")))
    result = waas("-o", "json", "e", "cancel", "a", "b")
    assert json.loads(result.out) == {
        "cancelled": ["a"],
        "failed": [{"id": "b", "error": "conflict (409): already ended"}],
    }
    assert "Cancelled execution" in result.err


def test_unexpected_exception_prints_a_message_not_a_traceback(waas, api) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("kaboom")

    api.on("GET", "/workflows", broken)
    result = waas("wf", "ls")
    assert result.code == 1
    assert "kaboom" in result.err
    assert "Traceback" not in result.err


def test_ctrl_c_exits_130_with_no_traceback(waas, api) -> None:
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    api.on("GET", "/workflows", interrupted)
    listing = waas("workflows", "list")
    assert (listing.code, listing.err) == (130, "")
    api.on("GET", "/executions/ex-1", interrupted)
    result = waas("e", "status", "-f", "ex-1")
    # following: the execution goes on (tests/unit/test_cli_progress.py says how it is said)
    assert result.code == 130 and "Traceback" not in result.err
    assert result.err.startswith("Stopped following. Execution ex-1 keeps running")


def test_https_to_a_plain_http_server_prints_one_line_suggesting_http(capsys, monkeypatch) -> None:
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setenv("HOME", "/nonexistent")
    try:
        code = main(["--api_url", f"https://127.0.0.1:{port}", "-t=x", "workflows", "list"])
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.splitlines()) == 1
    assert f"https://127.0.0.1:{port}/workflows" in err
    assert "plain HTTP" in err and f"--api_url http://127.0.0.1:{port}" in err
