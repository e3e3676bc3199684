"""Rendering: text lines and tables, JSON documents, colored prefixes on terminals.

In json mode stdout carries JSON only; every human message goes to stderr. On a terminal,
the control characters of what is printed (a step's output, a name) are shown escaped, so
that none sets the window's title or clears the screen; pipes, files and JSON get the text
as it is.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from hpcwaas.cli import tables
from hpcwaas.controls import escape_for_terminal

_ANSI = {"cyan": "36", "yellow": "33", "red": "31", "dim": "2", "green": "32", "bold": "1"}
LEVEL_COLORS = {
    "DEBUG": "dim",
    "INFO": "cyan",
    "WARN": "yellow",
    "WARNING": "yellow",
    "ERROR": "red",
}
# Columns other than the kept-whole ones get at least this many characters before the
# table is allowed to grow past the terminal's width.
_MIN_OTHER_COLUMN = 10


def use_color(stream: TextIO) -> bool:
    """Color only terminals, and respect NO_COLOR and TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


def rfc3339(moment: datetime) -> str:
    """An RFC 3339 timestamp to the second, `Z` for UTC (Go's time.RFC3339)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Painted(str):
    """Text colored by `Output.paint`: its escape codes are the only ones a line keeps."""


class Output:
    """Where and how a command writes: `json` tells the mode, streams are read at call time."""

    def __init__(self, fmt: str) -> None:
        self.json = fmt == "json"

    @property
    def stdout(self) -> TextIO:
        """The current stdout (looked up on each use, so redirections apply)."""
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        """The current stderr."""
        return sys.stderr

    def line(self, *parts: str) -> None:
        """A result line: stdout in text mode, stderr in json mode (stdout stays pure JSON)."""
        stream = self.stderr if self.json else self.stdout
        print(_shown(parts, stream), file=stream, flush=True)

    def note(self, text: str) -> None:
        """A message about the run, not its result: always stderr."""
        print(_shown((text,), self.stderr), file=self.stderr, flush=True)

    def document(self, data: Any) -> None:
        """One JSON document on its own line of stdout (streams print one per line)."""
        print(json.dumps(data, ensure_ascii=False), file=self.stdout, flush=True)

    def paint(self, text: str, color: str, stream: TextIO | None = None) -> str:
        """`text` in `color` when the stream is a terminal, else unchanged."""
        if color not in _ANSI or not use_color(stream or self.stdout):
            return text
        return Painted(f"\x1b[{_ANSI[color]}m{escape_for_terminal(text)}\x1b[0m")

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        whole: Sequence[int] = (0,),
    ) -> None:
        """A table on stdout: on a terminal drawn by rich, its `whole` columns (IDs) never cut
        or wrapped; elsewhere in the original client's layout."""
        if is_terminal(self.stdout):
            rows = [[escape_for_terminal(cell) for cell in row] for row in rows]
            rich_table(self.stdout, headers, rows, whole)
        else:
            # A pipe or a file: the original client's layout (see hpcwaas.cli.tables).
            self.stdout.write(tables.piped_table(headers, rows))
            self.stdout.flush()


def _shown(parts: Sequence[str], stream: TextIO) -> str:
    """The parts of a line as ``stream`` gets them: on a terminal, only painted escapes stay."""
    if not is_terminal(stream):
        return "".join(parts)
    return "".join(p if isinstance(p, Painted) else escape_for_terminal(p) for p in parts)


def rich_table(
    stream: TextIO,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    whole: Sequence[int] = (0,),
) -> None:
    """Draw a table with rich: fitted to a terminal's width except the `whole` columns;
    without colors (NO_COLOR, TERM=dumb) at its natural width, nothing wrapped."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for index, header in enumerate(headers):
        if index in whole:
            table.add_column(header, no_wrap=True, overflow="ignore")
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        # Text cells: a name like "[gpu]" must print as is, not be read as rich markup.
        table.add_row(*(Text(cell) for cell in row))
    needed = _width_keeping_whole(headers, rows, whole)
    if use_color(stream):
        width = max(Console(file=stream).width, needed)
        console = Console(file=stream, width=width, highlight=False)
    else:
        # Colors off: lay the table out at its natural size, nothing wrapped.
        natural = _width_keeping_whole(headers, rows, range(len(headers)))
        console = Console(file=stream, width=natural, no_color=True, highlight=False)
    console.print(table, soft_wrap=False)


def _width_keeping_whole(
    headers: Sequence[str], rows: Sequence[Sequence[str]], whole: Sequence[int]
) -> int:
    """The narrowest table width at which rich lays the `whole` columns out uncut."""
    total = 1  # the left border
    for index, header in enumerate(headers):
        if index in whole:
            content = max([len(header), *(len(row[index]) for row in rows)])
        else:
            content = min(_MIN_OTHER_COLUMN, max([len(header), *(len(r[index]) for r in rows)]))
        total += content + 3  # one space of padding each side, one border
    return total
