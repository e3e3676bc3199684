"""Control characters made visible, for log lines and terminals.

A value that reaches a log line or a terminal (a request path, a step's output) may hold
characters that end the line, forge another one, or drive the terminal (ANSI escapes).
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same but the tab, which only moves a terminal's cursor to the next column stop.
_TERMINAL_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def escape_controls(text: str) -> str:
    """``text`` with each control character written as its Python escape (``\\n``, ``\\x1b``)."""
    return CONTROL.sub(_escape, text)


def escape_for_terminal(text: str) -> str:
    """``text`` for a terminal: control characters escaped as by escape_controls, tabs kept."""
    return _TERMINAL_CONTROL.sub(_escape, text)
