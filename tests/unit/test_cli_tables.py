"""Tables for pipes and files: the original client's layout (pterm's table without its box),
so that scripts cutting its columns keep working; terminals get rich's table."""

from __future__ import annotations

import io
import subprocess
from contextlib import redirect_stdout

from hpcwaas.cli.output import Output


def printed(headers: list[str], rows: list[list[str]]) -> str:
    """What `Output.table` writes to a pipe."""
    with redirect_stdout(io.StringIO()) as stream:
        Output("text").table(headers, rows)
    return stream.getvalue()


# What the original `waas workflows list` (pterm v0.12.39: WithHasHeader, header rule "*",
# row rule "-", separator " | ") renders, its box taken off.
ORIGINAL_LISTING = (
    "Workflow ID      | Workflow Name | Application | Environment ID | Environment Name\n"
    "**********************************************************************************\n"
    "demo@local@hello | hello         | demo        | local          | Local machine   \n"
    "----------------------------------------------------------------------------------\n"
    "hpc@jsc@simul    | simul         | hpc         | jsc            | Jülich          \n"
)


def test_a_piped_table_is_the_original_clients_layout_byte_for_byte() -> None:
    headers = ["Workflow ID", "Workflow Name", "Application", "Environment ID", "Environment Name"]
    rows = [
        ["demo@local@hello", "hello", "demo", "local", "Local machine"],
        ["hpc@jsc@simul", "simul", "hpc", "jsc", "Jülich"],
    ]
    assert printed(headers, rows) == ORIGINAL_LISTING


def test_columns_of_a_piped_table_can_be_cut_by_scripts() -> None:
    table = printed(["ID", "Name"], [["a1", "first"], ["b22", "second [gpu]"], ["c", ""]])
    rows = [line for line in table.splitlines()[2:] if not line.startswith("-")]
    assert [r.split(" | ")[0].strip() for r in rows] == ["a1", "b22", "c"]
    assert [r.split(" | ")[1].strip() for r in rows] == ["first", "second [gpu]", ""]
    done = subprocess.run(
        ["awk", "-F", " [|] ", "NR > 2 && !/^-+$/ {print $1}"],
        input=table,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["a1", "b22", "c"]


def test_a_piped_table_without_rows_is_its_header_and_rule() -> None:
    assert printed(["Execution ID", "Status"], []) == (
        "Execution ID | Status\n*********************\n"
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_boxed_table(monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = Terminal()
    with redirect_stdout(terminal):
        Output("text").table(["Name"], [["x"]])
    assert terminal.getvalue().splitlines()[0].startswith("┏")
