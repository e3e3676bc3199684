"""Where the ``{{ ... }}`` of a shell template stand in its shell syntax; which places are unsafe.

Every value is rendered as one shell-quoted word (``shlex.quote``), which holds only where the shell
reads the rendered text as words of a command: outside any quotes of the template, at the top level
of the script. Inside the template's own double quotes the value's single quotes are literal and
``$(...)`` in it runs; inside single quotes the value's quotes close the template's, leaving the
value unquoted; in a here-document, backticks, ``$((...))``... the shell parses it again. So a
shell template (a shell step's ``run``, a Slurm step's ``script``) may use an expression only
there, unless it is marked ``| raw`` (inserted as is, on purpose).

The check reads the template's text, without its ``{% %}`` statements and ``{# #}`` comments,
with a small state machine of the shell's quoting: outside quotes, in single quotes, double
quotes, ``$'...'``, ``$(...)``, backticks, ``$((...))``, ``${...}``, a comment, a here-document
body (``<<EOF``, ``<<-EOF``, ``<<'EOF'``); backslash escapes are followed. Jinja statements are
not evaluated: both branches of an ``{% if %}`` are read in turn, as text.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError

from hpcwaas.catalog.render import is_raw, template_tokens

# Stands for one expression in the scanned text; which one is known by its position.
_MARK = "\ue000"
# Blanks and the shell's metacharacters: they end a word (a here-document delimiter), and a
# word starts after them (a `#` there starts a comment, `((` an arithmetic command).
_BREAKS = " \t\n;&|()<>"

_QUOTES_HINT = (
    "remove the quotes around it: every value is already passed as one quoted word "
    '(write "text "{expr}" more" to join it to text)'
)
_VARIABLE_HINT = (
    "assign the value to a variable first, on a line of its own ({assign}), "
    "then write {use} there: the shell does not parse a variable's content again"
)
# place -> (why the place is unsafe, hint); {expr}, {assign} and {use} are filled in.
_PLACES: dict[str, tuple[str, str]] = {
    "double quotes": (
        "is inside double quotes, where the shell would still expand $(...) and backticks "
        "in its value",
        _QUOTES_HINT,
    ),
    "single quotes": (
        "is inside single quotes, which the quotes around its value would close, leaving the "
        "value unquoted: $(...) in it would run",
        _QUOTES_HINT,
    ),
    "ansi quotes": (
        "is inside $'...' quotes, which the quotes around its value would close, leaving the "
        "value unquoted: $(...) in it would run",
        _QUOTES_HINT,
    ),
    "heredoc": (
        "is inside a here-document, where the shell would expand $(...) and backticks in its value",
        _VARIABLE_HINT,
    ),
    "quoted heredoc": (
        "is inside a here-document with a quoted delimiter, where its value would keep its quotes",
        "assign the value to a variable first, on a line of its own ({assign}), then write {use} "
        "in a here-document whose delimiter is not quoted (<<EOF, not <<'EOF'): the shell does "
        "not parse a variable's content again",
    ),
    "command substitution": (
        "is inside a command substitution $(...) or <(...), where the shell parses its value "
        "again; a value is only accepted as a word of the script's own commands",
        _VARIABLE_HINT,
    ),
    "backticks": (
        "is inside backticks, where a backtick or a backslash in its value would end or change "
        "the command",
        _VARIABLE_HINT,
    ),
    "arithmetic": (
        "is inside an arithmetic expression $((...)) or ((...)), where the shell would expand "
        "$(...) in its value",
        "assign the value to a variable first, on a line of its own ({assign}), then write "
        "$(( {name} ... )) there, for an integer input only: bash evaluates the text of a "
        "variable used in arithmetic",
    ),
    "parameter expansion": (
        "is inside a parameter expansion ${...}, where the shell may keep its quotes and "
        "expand $(...) in its value",
        _VARIABLE_HINT,
    ),
    "comment": (
        "is inside a shell comment, which a newline in its value would end: the rest of the "
        "value would run as commands",
        "take it out of the comment, or write the comment as a Jinja comment {{# ... #}}, "
        "which is not rendered",
    ),
    "backslash": (
        "comes right after a backslash, which would make the opening quote of its value "
        "literal: the rest of the value would be read unquoted",
        "remove the backslash: the value is already one quoted word",
    ),
    "dollar": (
        "comes right after a $, which would make the shell read its value as a variable name "
        "or a $'...' string",
        "remove the $, or write \\$ for a literal dollar sign: the value is already one "
        "quoted word",
    ),
}
# The place an expression is in, for each kind of frame; None: safe.
_FRAME_PLACES: dict[str, str | None] = {
    "top": None,
    "single": "single quotes",
    "double": "double quotes",
    "ansi": "ansi quotes",
    "command": "command substitution",
    "backticks": "backticks",
    "arithmetic": "arithmetic",
    "parameter": "parameter expansion",
    "comment": "comment",
}
# Frames whose text the shell reads as commands.
_CODE = frozenset({"top", "command", "backticks"})
_SIMPLE_NAME = re.compile(r"\{\{ (?:inputs|execution)\.([A-Za-z_][A-Za-z0-9_]*) \}\}")


@dataclass(frozen=True)
class Misplaced:
    """An expression where its quoting would not hold: the line in the template, why, a fix."""

    line: int
    expression: str
    message: str
    hint: str


def misplaced_expressions(template: str, list_inputs: Collection[str] = ()) -> list[Misplaced]:
    """Every expression of a shell template that is not a word of a top-level command.

    ``list_inputs`` names the inputs of type list, for which the hint suggests an array. A
    template Jinja cannot read gives nothing here (its syntax error is reported elsewhere).
    """
    try:
        text, expressions = _skeleton(template)
    except TemplateSyntaxError:
        return []
    scanner = _Scanner(text, expressions)
    scanner.scan()
    found: list[Misplaced] = []
    for position, place in scanner.found:
        expression = expressions[position]
        why, hint = _PLACES[place]
        found.append(
            Misplaced(
                expression.line,
                expression.source,
                f"{expression.source} {why}",
                _fill(hint, expression.source, list_inputs, heredoc="heredoc" in place),
            )
        )
    return found


def _fill(hint: str, source: str, list_inputs: Collection[str], heredoc: bool) -> str:
    match = _SIMPLE_NAME.fullmatch(source)
    name = match.group(1) if match else "value"
    if match and source.startswith("{{ inputs.") and name in list_inputs:
        assign = f"{name}=({source})"
        use = f"${{{name}[*]}}" if heredoc else f'"${{{name}[@]}}"'
    else:
        assign = f"{name}={source}"
        use = f"${name}" if heredoc else f'"${name}"'
    return hint.format(expr=source, assign=assign, use=use, name=name)


@dataclass(frozen=True)
class _Expression:
    line: int
    source: str  # normalized: "{{ inputs.x }}"
    raw: bool


def _skeleton(template: str) -> tuple[str, dict[int, _Expression]]:
    """The template's text with each expression replaced by one mark, and the marks' expressions.

    Statements and comments are left out (they render to nothing, or to text the check cannot
    know); the line of each expression is kept.
    """
    parts: list[str] = []
    length = 0
    expressions: dict[int, _Expression] = {}
    tokens = template_tokens(template)
    for line, kind, value in tokens:
        if kind == "data":
            parts.append(value)
            length += len(value)
        elif kind == "variable_begin":
            source: list[str] = []
            for _, inner_kind, inner_value in tokens:
                if inner_kind == "variable_end":
                    break
                source.append(inner_value)
            expression = " ".join("".join(source).split())
            expressions[length] = _Expression(line, f"{{{{ {expression} }}}}", is_raw(expression))
            parts.append(_MARK)
            length += 1
    return "".join(parts), expressions


@dataclass
class _Frame:
    kind: str
    depth: int = 0  # open parentheses inside $(...) or $((...))


@dataclass(frozen=True)
class _Heredoc:
    delimiter: str
    strip_tabs: bool  # <<-
    quoted: bool  # <<'EOF', <<"EOF", <<\EOF: the body is not expanded


class _Scanner:
    """One pass over a template's text, recording each expression found in an unsafe place."""

    def __init__(self, text: str, expressions: dict[int, _Expression]) -> None:
        self.text = text
        self.expressions = expressions
        self.stack = [_Frame("top")]
        self.pending: list[_Heredoc] = []
        self.found: list[tuple[int, str]] = []

    def scan(self) -> None:
        text = self.text
        i = 0
        while i < len(text):
            frame = self.stack[-1]
            if i in self.expressions:
                self._found(i, _FRAME_PLACES[frame.kind])
                i += 1
            elif frame.kind == "single":
                if text[i] == "'":
                    self.stack.pop()
                i += 1
            elif frame.kind == "comment":
                if text[i] == "\n":
                    self.stack.pop()
                    i = self._newline(i)
                else:
                    i += 1
            elif text[i] == "\\":
                # the next character is escaped: an expression there loses its opening quote
                if i + 1 in self.expressions:
                    place = _FRAME_PLACES[frame.kind]
                    self._found(i + 1, "backslash" if place is None else place)
                i += 2
            elif frame.kind == "ansi":
                if text[i] == "'":
                    self.stack.pop()
                i += 1
            elif frame.kind == "double":
                i = self._in_double_quotes(i)
            else:
                i = self._in_code(i, frame)

    def _found(self, position: int, place: str | None) -> None:
        if place is not None and not self.expressions[position].raw:
            self.found.append((position, place))

    def _in_double_quotes(self, i: int) -> int:
        char = self.text[i]
        if char == '"':
            self.stack.pop()
            return i + 1
        if char == "`":
            self.stack.append(_Frame("backticks"))
            return i + 1
        if char == "$":
            return self._dollar(i, code=False)
        return i + 1

    def _in_code(self, i: int, frame: _Frame) -> int:
        """A character of text the shell reads as commands, or inside $((...)) or ${...}."""
        text = self.text
        char = text[i]
        ahead = text[i : i + 3]
        if char == "'":
            self.stack.append(_Frame("single"))
        elif char == '"':
            self.stack.append(_Frame("double"))
        elif char == "$":
            return self._dollar(i, code=True)
        elif char == "`":
            if frame.kind == "backticks":
                self.stack.pop()
            else:
                self.stack.append(_Frame("backticks"))
        elif frame.kind == "parameter":
            if char == "}":
                self.stack.pop()
        elif frame.kind == "arithmetic":
            return self._in_arithmetic(i, frame)
        elif char == "\n":
            return self._newline(i)
        elif char == "#" and self._word_starts(i):
            self.stack.append(_Frame("comment"))
        elif ahead.startswith("<<") and not ahead.startswith("<<<"):
            return self._heredoc(i + 2)
        elif ahead.startswith("<<<"):
            return i + 3
        elif ahead[:2] in ("<(", ">("):
            self.stack.append(_Frame("command"))
            return i + 2
        elif ahead.startswith("((") and self._word_starts(i):
            self.stack.append(_Frame("arithmetic"))
            return i + 2
        elif frame.kind == "command" and char == "(":
            frame.depth += 1
        elif frame.kind == "command" and char == ")":
            if frame.depth == 0:
                self.stack.pop()
            else:
                frame.depth -= 1
        return i + 1

    def _in_arithmetic(self, i: int, frame: _Frame) -> int:
        char = self.text[i]
        if char == "(":
            frame.depth += 1
        elif char == ")":
            if frame.depth > 0:
                frame.depth -= 1
            else:
                self.stack.pop()
                return i + 2 if self.text.startswith(")", i + 1) else i + 1
        return i + 1

    def _dollar(self, i: int, code: bool) -> int:
        """``$`` at ``i``: maybe the start of $(...), $((...)), ${...}, $'...' or $"..."."""
        text = self.text
        after = i + 1
        if after in self.expressions:
            if code:
                self._found(after, "dollar")
                return after + 1
            return after  # inside quotes: reported for the quotes
        if text.startswith("((", after):
            self.stack.append(_Frame("arithmetic"))
            return after + 2
        if text.startswith("(", after):
            self.stack.append(_Frame("command"))
            return after + 1
        if text.startswith("{", after):
            self.stack.append(_Frame("parameter"))
            return after + 1
        if code and text.startswith("'", after):
            self.stack.append(_Frame("ansi"))
            return after + 1
        if code and text.startswith('"', after):
            self.stack.append(_Frame("double"))
            return after + 1
        return after

    def _word_starts(self, i: int) -> bool:
        return i == 0 or self.text[i - 1] in _BREAKS

    def _heredoc(self, i: int) -> int:
        """After ``<<``: read the delimiter word; the body starts after the end of the line."""
        text = self.text
        strip_tabs = text.startswith("-", i)
        if strip_tabs:
            i += 1
        while i < len(text) and text[i] in " \t":
            i += 1
        word: list[str] = []
        quoted = False
        while i < len(text) and text[i] not in _BREAKS:
            char = text[i]
            if i in self.expressions:
                self._found(i, "heredoc")
                i += 1
            elif char in "'\"":
                quoted = True
                close = text.find(char, i + 1)
                close = len(text) if close == -1 else close
                word.append(text[i + 1 : close])
                i = close + 1
            elif char == "\\":
                quoted = True
                word.append(text[i + 1 : i + 2])
                i += 2
            else:
                word.append(char)
                i += 1
        if word:
            self.pending.append(_Heredoc("".join(word), strip_tabs, quoted))
        return i

    def _newline(self, i: int) -> int:
        """The newline at ``i`` ends a command line: the bodies of its here-documents follow."""
        i += 1
        for heredoc in self.pending:
            i = self._heredoc_body(i, heredoc)
        self.pending.clear()
        return i

    def _heredoc_body(self, i: int, heredoc: _Heredoc) -> int:
        text = self.text
        place = "quoted heredoc" if heredoc.quoted else "heredoc"
        while i < len(text):
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            line = text[i:end]
            if (line.lstrip("\t") if heredoc.strip_tabs else line) == heredoc.delimiter:
                return end + 1
            for position in range(i, end):
                if position in self.expressions:
                    self._found(position, place)
            i = end + 1
        return len(text)
