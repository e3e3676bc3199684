"""Control characters made visible, for log lines and terminals.

A value that reaches a log line or a terminal (a request path, a step's output) may hold
characters that end the line, forge another one, or drive the terminal (ANSI escapes).
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def escape_controls(text: str) -> str:
    """``text`` with each control character written as its Python escape (``\\n``, ``\\x1b``)."""
    return CONTROL.sub(_escape, text)
