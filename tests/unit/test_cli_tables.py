"""Tables for pipes and files: drawn without rich, byte for byte as rich draws them."""

from __future__ import annotations

import io
import random
from contextlib import redirect_stdout

import pytest

from hpcwaas.cli import tables
from hpcwaas.cli.output import Output, rich_table


@pytest.fixture(autouse=True)
def no_forced_terminal(monkeypatch) -> None:
    # rich draws escape codes to any stream when these say the output is a terminal.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)


def printed(headers: list[str], rows: list[list[str]]) -> str:
    """What `Output.table` writes to a pipe."""
    with redirect_stdout(io.StringIO()) as stream:
        Output("text").table(headers, rows)
    return stream.getvalue()


def drawn_by_rich(headers: list[str], rows: list[list[str]]) -> str:
    stream = io.StringIO()
    rich_table(stream, headers, rows)
    return stream.getvalue()


# One-cell characters of several scripts, spaces (leading, trailing, repeated) and the
# characters rich treats specially elsewhere ([, ], :) inside cells.
ALPHABET = "abcXYZ019 @._-/[]:éüßñØΩжЖ│█"
random.seed(20261126)
RANDOM_TABLES = [
    (
        [f"H{i}" + "".join(random.choices(ALPHABET, k=random.randint(0, 6))) for i in range(n)],
        [
            ["".join(random.choices(ALPHABET, k=random.randint(0, 14))) for _ in range(n)]
            for _ in range(random.randint(0, 4))
        ],
    )
    for n in (1, 2, 3, 5, 6)
    for _ in range(8)
]
RANDOM_TABLES = [(h, r) for h, r in RANDOM_TABLES if not any("[" in x or ":" in x for x in h)]


@pytest.mark.parametrize(
    ("headers", "rows"),
    [
        (["Workflow ID", "Workflow Name"], [["demo@local@hello", "hello"], ["a", "[gpu]"]]),
        (["Execution ID", "Status"], []),
        (["Name", "Size"], [["", ""], ["  padded  ", "1.5 KiB"]]),
        (["Environment", "Name"], [["jsc", "Jülich Supercomputing Centre"]]),
        *RANDOM_TABLES,
    ],
)
def test_a_table_for_a_pipe_is_the_one_rich_draws(headers, rows) -> None:
    assert tables.drawable(io.StringIO(), headers, rows)
    assert printed(headers, rows) == drawn_by_rich(headers, rows)


@pytest.mark.parametrize(
    ("headers", "rows"),
    [
        (["Name"], [["日本語"]]),  # two cells per character
        (["Name"], [["e\u0301"]]),  # a combining accent: no cell of its own
        (["Name"], [["a\tb"]]),  # rich expands tabs
        (["Name"], [["two\nlines"]]),
        (["[bold]Name"], [["x"]]),  # a header is read as markup
        (["Name :smile:"], [["x"]]),  # and emoji codes
    ],
)
def test_text_only_rich_can_lay_out_is_left_to_rich(headers, rows) -> None:
    assert not tables.drawable(io.StringIO(), headers, rows)
    assert printed(headers, rows) == drawn_by_rich(headers, rows)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminals_forced_colors_and_other_encodings_are_left_to_rich(monkeypatch) -> None:
    headers, rows = ["Name"], [["x"]]
    assert not tables.drawable(Terminal(), headers, rows)
    latin1 = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    assert not tables.drawable(latin1, headers, rows)  # rich draws ASCII boxes there
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        with monkeypatch.context() as env:
            env.setenv(variable, "1")
            assert not tables.drawable(io.StringIO(), headers, rows)
