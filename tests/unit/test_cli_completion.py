"""`waas completion`: scripts generated from the parser tree, exercised in a real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hpcwaas.cli.main import main


def script(shell: str, capsys) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def bash_complete(script_text: str, *words: str) -> list[str]:
    """Run the bash completion function for `words` (the last one being completed)."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script_text}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        "_waas_complete\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.split()


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")


@needs_bash
def test_bash_completes_top_level_commands(capsys) -> None:
    words = bash_complete(script("bash", capsys), "waas", "")
    assert {"workflows", "executions", "ssh_keys", "completion", "help"} <= set(words)
    assert {"login", "logout", "whoami"} <= set(words)


@needs_bash
def test_bash_completes_subcommands_through_aliases(capsys) -> None:
    text = script("bash", capsys)
    assert {"status", "logs", "cancel"} <= set(bash_complete(text, "waas", "exec", ""))
    assert set(bash_complete(text, "waas", "wf", "t", "--")) >= {"--inputs", "--follow", "--logs"}
    assert "--debug" in bash_complete(text, "waas", "e", "l", "ex-1", "--d")


@needs_bash
def test_bash_completes_global_flags_and_their_values(capsys) -> None:
    text = script("bash", capsys)
    assert "--api_url" in bash_complete(text, "waas", "workflows", "list", "--api")
    assert bash_complete(text, "waas", "-o", "") == ["text", "json"]
    assert bash_complete(text, "waas", "completion", "")[:3] == ["bash", "zsh", "fish"]


@needs_bash
def test_bash_completes_help_topics_with_command_names(capsys) -> None:
    words = bash_complete(script("bash", capsys), "waas", "help", "")
    assert words[:8] == [
        "login",
        "logout",
        "whoami",
        "workflows",
        "executions",
        "ssh_keys",
        "environments",
        "completion",
    ]


@needs_bash
def test_bash_completes_the_flags_of_login(capsys) -> None:
    words = bash_complete(script("bash", capsys), "waas", "login", "--")
    assert {"--no-browser", "--token-stdin", "--api_url"} <= set(words)


def test_zsh_script_registers_with_compdef_and_knows_aliases(capsys) -> None:
    text = script("zsh", capsys)
    assert text.startswith("#compdef waas")
    assert "compdef _waas waas" in text
    assert "waas_workflows:t" in text and "cmdpath=waas_workflows_trigger" in text
    assert "'--inputs'" in text


def test_fish_script_completes_flags_of_each_command(capsys) -> None:
    text = script("fish", capsys)
    assert (
        "complete -c waas -n 'test (__waas_cmdpath) = waas_workflows_trigger' -s i -l inputs"
        in text
    )
    assert "'waas_executions:e'" not in text  # aliases are labels of their own parent only
    assert "'waas:e'" in text


def test_unknown_shell_is_a_usage_error(capsys) -> None:
    assert main(["completion", "tcsh"]) == 1
    assert "invalid choice: 'tcsh'" in capsys.readouterr().err
