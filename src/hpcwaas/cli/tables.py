"""Tables for pipes and files, in the original client's layout, so scripts that cut its
columns keep working.

The original `waas` (Go) draws its tables with pterm (v0.12): a header row, a rule of `*`
under it, the rows, a rule of `-` between two rows; cells padded to their column's width
(counted in characters) and joined by ` | `. It puts a box around that on every stream;
here pipes and files get the table without the box, terminals get rich's table. Nothing
of rich is imported for a pipe (a listing command starts faster).
"""

from __future__ import annotations

from collections.abc import Sequence

SEPARATOR = " | "


def piped_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table's lines in the original's layout, ending with a newline."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    width = sum(widths) + len(SEPARATOR) * (len(widths) - 1)

    def line(cells: Sequence[str]) -> str:
        return SEPARATOR.join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    lines = [line(headers), "*" * width]
    for index, row in enumerate(rows):
        if index:
            lines.append("-" * width)
        lines.append(line(row))
    return "".join(f"{text}\n" for text in lines)
