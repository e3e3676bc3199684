"""`waas` command lines: global flags anywhere, every alias, usage errors, help, precedence."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hpcwaas import __version__
from hpcwaas.cli.config import ENV_VARS
from hpcwaas.cli.main import main


class RecordingApi:
    """Answers every route with a plausible success and records the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        if method == "POST" and path.startswith("/workflows/"):
            return httpx.Response(201, headers={"Location": "/executions/ex-1"})
        if method == "POST" and path == "/ssh_keys":
            return httpx.Response(201, json={"id": "k-1", "public_key": "ssh-rsa AAAA\n"})
        if method == "DELETE":
            return httpx.Response(202)
        if path.endswith("/logs"):
            return httpx.Response(200, json={"logs": [], "total_results": 0, "from": 0})
        if path.startswith("/executions/"):
            return httpx.Response(200, json={"id": "ex-1", "status": "SUCCEEDED"})
        return httpx.Response(200, json={"workflows": []})

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def api() -> RecordingApi:
    return RecordingApi()


@pytest.fixture
def waas(api, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)

    def run(*argv: str) -> Result:
        code = main(list(argv), transport=httpx.MockTransport(api))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def test_token_with_equals_before_the_subcommand_is_sent(waas, api) -> None:
    result = waas("--api_url", "http://api:1", "-t=tok-1", "workflows", "list")
    assert result.code == 0
    assert api.last.headers["Authorization"] == "Bearer tok-1"
    assert api.last.url.host == "api"


def test_global_flags_after_the_subcommand_are_honoured(waas, api) -> None:
    assert waas("workflows", "list", "--api_url", "http://after:2", "-t=tok-2").code == 0
    assert api.last.headers["Authorization"] == "Bearer tok-2"
    assert (api.last.url.host, api.last.url.port) == ("after", 2)


def test_flag_before_the_subcommand_survives_the_subcommand_parser(waas, api) -> None:
    waas("-o", "json", "--api_url", "http://x:3", "--access_token", "t", "wf", "ls")
    assert api.last.url.port == 3
    assert api.last.headers["Authorization"] == "Bearer t"


def test_flag_after_the_subcommand_overrides_the_one_before(waas, api) -> None:
    waas("-t=before", "workflows", "list", "-t=after")
    assert api.last.headers["Authorization"] == "Bearer after"


@pytest.mark.parametrize("noun", ["workflows", "workflow", "wf", "w"])
@pytest.mark.parametrize("verb", ["list", "ls", "l"])
def test_every_alias_of_workflows_list_lists_workflows(waas, api, noun, verb) -> None:
    assert waas(noun, verb).code == 0
    assert (api.last.method, api.last.url.path) == ("GET", "/workflows")


@pytest.mark.parametrize("verb", ["trigger", "run", "r", "t"])
def test_every_alias_of_trigger_posts_to_the_workflow(waas, api, verb) -> None:
    assert waas("w", verb, "demo@local@hello").code == 0
    assert (api.last.method, api.last.url.path) == ("POST", "/workflows/demo@local@hello")


@pytest.mark.parametrize("noun", ["executions", "execution", "exec", "e"])
@pytest.mark.parametrize("verb", ["status", "stat", "get", "g", "s"])
def test_every_alias_of_executions_status_gets_the_execution(waas, api, noun, verb) -> None:
    assert waas(noun, verb, "ex-1").code == 0
    assert (api.last.method, api.last.url.path) == ("GET", "/executions/ex-1")


@pytest.mark.parametrize("verb", ["logs", "log", "l"])
def test_every_alias_of_executions_logs_reads_the_logs(waas, api, verb) -> None:
    assert waas("executions", verb, "ex-1").code == 0
    assert api.last.url.path == "/executions/ex-1/logs"


@pytest.mark.parametrize("verb", ["cancel", "delete", "del", "d", "c"])
def test_every_alias_of_cancel_deletes_the_execution(waas, api, verb) -> None:
    assert waas("e", verb, "ex-1").code == 0
    assert (api.last.method, api.last.url.path) == ("DELETE", "/executions/ex-1")


@pytest.mark.parametrize("noun", ["ssh_keys", "keys", "key", "k"])
@pytest.mark.parametrize("verb", ["key-gen", "gen", "gen-key", "g"])
def test_every_alias_of_key_gen_creates_a_key(waas, api, noun, verb) -> None:
    assert waas(noun, verb).code == 0
    assert (api.last.method, api.last.url.path) == ("POST", "/ssh_keys")


def test_additive_list_commands_have_their_ls_alias(waas, api) -> None:
    api_answers = {"/executions": {"executions": []}, "/ssh_keys": {"ssh_keys": []}}

    def lists(request: httpx.Request) -> httpx.Response:
        api.requests.append(request)
        return httpx.Response(200, json=api_answers[request.url.path])

    for argv, path in (
        (["e", "ls"], "/executions"),
        (["k", "ls"], "/ssh_keys"),
    ):
        assert main(argv, transport=httpx.MockTransport(lists)) == 0
        assert api.last.url.path == path


def test_input_without_equals_is_a_usage_error_naming_it(waas, api) -> None:
    result = waas("wf", "trigger", "-i", "a", "demo@local@hello")
    assert result.code == 1
    assert "-i/--inputs" in result.err and "'a'" in result.err
    assert "Traceback" not in result.err
    assert api.requests == []


def test_metadata_keeps_commas_and_is_sent(waas, api) -> None:
    waas("ssh_keys", "key-gen", "-m", "site=bsc,mn5", "-m", "owner=me")
    assert json.loads(api.last.content) == {"metadata": {"site": "bsc,mn5", "owner": "me"}}


@pytest.mark.parametrize(
    "argv", [["-o", "yaml", "wf", "ls"], ["wf", "ls", "-o", "yaml"], ["--output=toml", "wf", "l"]]
)
def test_unknown_output_format_is_a_usage_error(waas, api, argv) -> None:
    result = waas(*argv)
    assert result.code == 1
    assert "invalid choice" in result.err and "'text', 'json'" in result.err
    assert api.requests == []


def test_unknown_command_is_a_usage_error(waas) -> None:
    result = waas("workflows", "explode")
    assert result.code == 1
    assert 'unknown command "explode" for "waas workflows"' in result.err


def test_missing_argument_is_a_usage_error(waas) -> None:
    result = waas("executions", "status")
    assert result.code == 1
    assert "execution-id" in result.err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["help"],
        ["--help"],
        ["help", "workflows", "trigger"],
        ["workflows", "trigger", "--help"],
        ["help", "e", "l"],
    ],
)
def test_help_forms_print_help_and_exit_zero(waas, api, argv) -> None:
    result = waas(*argv)
    assert result.code == 0
    assert result.out.startswith("usage: waas")
    assert api.requests == []


def test_root_help_lists_commands_with_aliases(waas) -> None:
    out = waas("help").out
    assert "workflows (workflow, wf, w)" in out
    assert "executions (execution, exec, e)" in out
    assert "ssh_keys (keys, key, k)" in out


def test_help_of_an_unknown_command_is_a_usage_error(waas) -> None:
    assert waas("help", "nope").code == 1


def test_version_prints_the_package_version(waas) -> None:
    result = waas("--version")
    assert result.code == 0
    assert __version__ in result.out


def test_env_var_sets_url_and_token(waas, api, monkeypatch) -> None:
    monkeypatch.setenv("HW_API_URL", "http://env-host:5")
    monkeypatch.setenv("HW_ACCESS_TOKEN", "env-token")
    waas("wf", "ls")
    assert api.last.url.host == "env-host"
    assert api.last.headers["Authorization"] == "Bearer env-token"


def test_flag_beats_env_beats_config_file(waas, api, monkeypatch, tmp_path: Path) -> None:
    config = tmp_path / "conf.yaml"
    config.write_text("api_url: http://file-host:1\naccess_token: file-token\n")
    waas("--config", str(config), "wf", "ls")
    assert (api.last.url.host, api.last.headers["Authorization"]) == (
        "file-host",
        "Bearer file-token",
    )
    monkeypatch.setenv("HW_ACCESS_TOKEN", "env-token")
    waas("--config", str(config), "wf", "ls")
    assert api.last.headers["Authorization"] == "Bearer env-token"
    waas("--config", str(config), "wf", "ls", "-t=flag-token")
    assert api.last.headers["Authorization"] == "Bearer flag-token"


def test_default_config_file_is_read_from_home(waas, api, tmp_path: Path) -> None:
    (tmp_path / ".waas").write_text("api_url: http://home-host:7\n")
    waas("wf", "ls")
    assert api.last.url.host == "home-host"


def test_missing_explicit_config_file_is_a_usage_error(waas, api, tmp_path: Path) -> None:
    result = waas("--config", str(tmp_path / "nope.yaml"), "wf", "ls")
    assert result.code == 1
    assert "nope.yaml" in result.err
    assert api.requests == []


def test_user_without_password_prompts_without_echo(waas, api, monkeypatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "pa:ss"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    waas("-u", "alice", "wf", "ls")
    assert prompts == ["Authentication password: "]
    expected = base64.b64encode(b"alice:pa:ss").decode()
    assert api.last.headers["Authorization"] == f"Basic {expected}"


def test_user_with_password_does_not_prompt(waas, api, monkeypatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt: pytest.fail("prompted"))
    waas("--user=bob:pw:with:colons", "wf", "ls")
    expected = base64.b64encode(b"bob:pw:with:colons").decode()
    assert api.last.headers["Authorization"] == f"Basic {expected}"


def test_api_url_with_another_scheme_is_a_usage_error_before_any_request(waas, api) -> None:
    result = waas("--api_url", "ftp://127.0.0.1:9090", "wf", "ls")
    assert result.code == 1
    assert "http:// or https://" in result.err
    assert api.requests == []


def test_help_starts_without_importing_httpx_rich_or_pydantic() -> None:
    code = (
        "import sys\n"
        "from hpcwaas.cli.main import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help']); main(['help', 'workflows', 'trigger'])\n"
        "heavy = {'httpx', 'rich', 'pydantic', 'yaml'}\n"
        "print([m for m in sys.modules if m.split('.')[0] in heavy])\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


# --- The original's command lines (docs/compatibility.md, "The waas command") ------------------


@pytest.mark.parametrize(
    ("argv", "inputs"),
    [
        (["-i", "n=2,mode=fast"], {"n": "2", "mode": "fast"}),
        (["-i", '"msg=a,b"'], {"msg": "a,b"}),
        (["-i", "tags=x,y"], {"tags": "x,y"}),
        (["-i", "msg=a,b", "-i", "n=1"], {"msg": "a,b", "n": "1"}),
        (
            ["-i", "a=b,c=d", "-i", "expr=x=1", "--inputs=empty="],
            {"a": "b", "c": "d", "expr": "x=1", "empty": ""},
        ),
        (["-i", 'cmd=echo "hi"'], {"cmd": 'echo "hi"'}),
        (["-i", "text=line 1\nline 2,n=3"], {"text": "line 1\nline 2", "n": "3"}),
        (["-i", ""], {}),
    ],
)
def test_inputs_split_on_commas_as_the_original_and_keep_commas_in_values(
    waas, api, argv, inputs
) -> None:
    assert waas("wf", "trigger", *argv, "demo@local@hello").code == 0
    assert json.loads(api.last.content) == {"inputs": inputs}


def test_a_value_that_cannot_be_split_is_a_usage_error_saying_how_to_quote(waas, api) -> None:
    result = waas("wf", "trigger", "-i", '"a=1"x', "demo@local@hello")
    assert result.code == 1
    assert "-i/--inputs" in result.err and "double quotes" in result.err
    assert api.requests == []


@pytest.mark.parametrize(
    ("argv", "metadata"),
    [
        (["-m", "site=a,b"], {"site": "a,b"}),
        (["-m", '"site=a,b"'], {"site": "a,b"}),
        (["-m", "a=1,b=2"], {"a": "1", "b": "2"}),
        (["-m", "a=1", "--metadata", "b=x,y=2"], {"a": "1", "b": "x", "y": "2"}),
    ],
)
def test_metadata_splits_only_when_the_argument_holds_two_equals(waas, api, argv, metadata) -> None:
    assert waas("keys", "key-gen", *argv).code == 0
    assert json.loads(api.last.content) == {"metadata": metadata}


def test_metadata_without_equals_is_a_usage_error(waas, api) -> None:
    result = waas("keys", "key-gen", "-m", "nothing")
    assert result.code == 1
    assert "-m/--metadata" in result.err and "'nothing'" in result.err
    assert api.requests == []


def test_workflows_alone_lists_the_workflows(waas, api) -> None:
    for argv in (["workflows"], ["wf"], ["w", "-o", "json"]):
        result = waas(*argv)
        assert result.code == 0, result
        assert (api.last.method, api.last.url.path) == ("GET", "/workflows")


@pytest.mark.parametrize(
    ("flag", "follows"),
    [
        ("--follow=true", True),
        ("-f=true", True),
        ("--follow=1", True),
        ("--follow=True", True),
        ("--follow=false", False),
        ("-f=false", False),
        ("--follow=0", False),
    ],
)
def test_boolean_flags_take_true_and_false_after_equals(waas, api, flag, follows) -> None:
    result = waas("e", "status", flag, "ex-1")
    assert result.code == 0, result
    # -f prints the steps' states as they change; without it, one status line.
    assert result.out.startswith("Execution: ID: ex-1, Status: SUCCEEDED")
    followed = [r for r in api.requests if r.url.path == "/executions/ex-1"]
    assert len(followed) == 1


def test_the_last_boolean_value_wins(waas, api) -> None:
    result = waas("wf", "trigger", "-l", "--logs=false", "demo@local@hello")
    assert result.code == 0
    # No logs followed: only the trigger was sent.
    assert [r.method for r in api.requests] == ["POST"]
    waas("wf", "trigger", "--logs=false", "-l", "demo@local@hello")
    assert any(r.url.path.endswith("/logs") for r in api.requests)


def test_a_global_boolean_flag_false_overrides_the_environment(waas, api, monkeypatch) -> None:
    monkeypatch.setenv("HW_SKIP_TLS_VERIFY", "true")
    assert waas("--skip_tls_verify=false", "--api_url", "http://api:1", "wf", "ls").code == 0
    assert waas("wf", "ls", "--skip_tls_verify=nope").code == 1


def test_a_boolean_flag_with_another_word_is_a_usage_error(waas, api) -> None:
    result = waas("e", "status", "--follow=yes", "ex-1")
    assert result.code == 1
    assert "--follow takes true or false, got 'yes'" in result.err
    assert "usage: waas executions status" in result.err
    assert api.requests == []


def test_token_and_api_url_are_trimmed_and_a_url_without_scheme_is_https(
    waas, api, monkeypatch, tmp_path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tok-3\n")
    monkeypatch.setenv("HW_ACCESS_TOKEN", token_file.read_text())
    assert waas("--api_url", " api.example:9090 ", "wf", "ls").code == 0
    assert api.last.headers["Authorization"] == "Bearer tok-3"
    assert str(api.last.url) == "https://api.example:9090/workflows"


def test_a_mistyped_command_gets_the_original_message_and_suggestions(waas, api) -> None:
    result = waas("workfows", "list")
    assert result.code == 1
    assert result.out == ""
    assert result.err == (
        'Error: unknown command "workfows" for "waas"\n'
        "\n"
        "Did you mean this?\n"
        "\tworkflows\n"
        "\n"
        "Run 'waas --help' for usage.\n"
    )
    assert api.requests == []


def test_a_command_close_to_several_suggests_each_and_a_far_one_none(waas) -> None:
    assert "\tlogin\n\tlogout\n" in waas("log").err
    far = waas("frobnicate")
    assert far.code == 1
    assert "Did you mean" not in far.err
    assert 'unknown command "frobnicate" for "waas"' in far.err


@pytest.mark.parametrize(
    "argv",
    [
        ["wf", "trigger"],
        ["e", "status"],
        ["-o", "yaml", "wf", "ls"],
        ["keys", "key-gen", "--type", "dsa"],
        ["e", "logs", "--from", "-3", "ex-1"],
    ],
)
def test_usage_errors_exit_1_as_the_original(waas, api, argv) -> None:
    result = waas(*argv)
    assert result.code == 1
    assert result.out == ""
    assert api.requests == []
