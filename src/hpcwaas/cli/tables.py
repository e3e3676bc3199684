"""Tables for pipes and files, drawn as rich draws them at their natural width, without rich.

Importing rich's console and table costs a listing command about a third of its start-up;
a table that is not for a terminal needs none of rich's layout (nothing wraps), only its
box. `Output.table` uses this when the result is the same, byte for byte, as rich's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

# rich's box.HEAVY_HEAD (rich.table.Table's default): heavy above the header, light below.
_TOP = ("┏", "━", "┳", "┓")
_HEADER = ("┃", "┃", "┃")
_HEADER_RULE = ("┡", "━", "╇", "┩")
_ROW = ("│", "│", "│")
_BOTTOM = ("└", "─", "┴", "┘")

# The characters rich counts as one cell without its Unicode tables (rich.cells'
# _SINGLE_CELL_UNICODE_RANGES). Text made only of them has as many cells as characters and
# nothing rich would strip or expand (control codes, tabs, newlines).
_SINGLE_CELL_RANGES = (
    (0x20, 0x7E),
    (0xA0, 0xAC),
    (0xAE, 0x2FF),
    (0x370, 0x482),
    (0x2500, 0x25FC),
    (0x2800, 0x28FF),
)
_SINGLE_CELLS = frozenset(
    chr(code) for start, end in _SINGLE_CELL_RANGES for code in range(start, end + 1)
)


def drawable(stream: TextIO, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> bool:
    """Whether `plain_table` prints exactly what rich would on `stream`.

    rich writes no escape codes to a stream that is not a terminal (unless FORCE_COLOR or
    TTY_COMPATIBLE say it is one), draws this box only for a UTF encoding and not for
    Windows' legacy console, lays out text of one-cell characters as is, and reads headers
    (not cells) as markup and emoji codes: `[` or `:` in one.
    """
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return False
    if sys.platform == "win32":
        return False
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return False
    encoding = getattr(stream, "encoding", "utf-8") or "utf-8"
    if not encoding.lower().startswith("utf"):
        return False
    return all(_SINGLE_CELLS.issuperset(h) and not {"[", ":"} & set(h) for h in headers) and all(
        _SINGLE_CELLS.issuperset(cell) for row in rows for cell in row
    )


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table's lines, each column as wide as its widest text, ending with a newline."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    lines = [
        _rule(_TOP, widths),
        _cells(_HEADER, headers, widths),
        _rule(_HEADER_RULE, widths),
        *(_cells(_ROW, row, widths) for row in rows),
        _rule(_BOTTOM, widths),
    ]
    return "".join(f"{line}\n" for line in lines)


def _rule(box: tuple[str, str, str, str], widths: Sequence[int]) -> str:
    left, fill, cross, right = box
    return left + cross.join(fill * (width + 2) for width in widths) + right


def _cells(box: tuple[str, str, str], texts: Sequence[str], widths: Sequence[int]) -> str:
    left, divider, right = box
    cells = (f" {text.ljust(width)} " for text, width in zip(texts, widths, strict=True))
    return left + divider.join(cells) + right
