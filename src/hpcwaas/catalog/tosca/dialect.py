"""The PyCOMPSs plugin's dialect: a property's text read as the words of a shell command line.

The original plugin joined ``qos``, ``python_interpreter``, ``extra_compss_opts``, the
container options, the command and the arguments into one ``bash -c`` line, after exporting
every workflow input as an environment variable. So topologies carry shell text in those
properties: quotes (``"\\"-e\\""``), several words in one argument (``"--hpc mn4"``) and
``$name`` / ``${name}`` naming an input.

``split_words`` reads the author's literal text as a POSIX shell would (blanks separate words;
single quotes, double quotes and backslashes quote), and keeps each ``$name`` / ``${name}``
(outside single quotes) as a ``Variable`` part of its word. ``word_template`` turns a word
into our template text: a variable becomes one ``{{ ... }}`` expression, whose value is
inserted into its word byte for byte, never split or read as shell text again. Shell syntax
that would run something or redirect (``$(...)``, backticks, ``;``, ``|``, ``>``...) and
parameter expansions other than a plain name (``${x:-y}``) are refused: a ``DialectError``
says which.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# What shlex.quote leaves alone: such literal text needs no quoting in a command.
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLANKS = " \t\n"
_OPERATORS = ";&|<>()`"
# In double quotes, a backslash quotes only these (POSIX); elsewhere it stays.
_DOUBLE_QUOTE_ESCAPES = '$`"\\\n'


@dataclass(frozen=True)
class Variable:
    """``$name`` or ``${name}`` in the text: the value of ``name`` goes there."""

    name: str


Word = tuple[str | Variable, ...]


class DialectError(ValueError):
    """The text uses shell syntax that is not read here (the message says which)."""


def split_words(text: str) -> list[Word]:
    """The words of ``text`` as a POSIX shell splits them, ``$name`` kept as variables."""
    words: list[Word] = []
    parts: list[str | Variable] = []
    literal: list[str] = []
    started = False  # a word is open, even if empty so far ("" is an empty word)
    quote = ""  # "'" or '"' while inside quotes
    i = 0

    def flush_literal() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    while i < len(text):
        char = text[i]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                literal.append(char)
            i += 1
            continue
        if char == "\\":
            following = text[i + 1 : i + 2]
            if following == "\n":  # a line continuation
                i += 2
                continue
            if quote == '"' and following not in _DOUBLE_QUOTE_ESCAPES:
                literal.append(char)  # stays, as in the shell
                i += 1
                continue
            if not following:
                raise DialectError("ends with a lone backslash")
            literal.append(following)
            started = True
            i += 2
            continue
        if char == "$":
            variable, length = _variable(text, i)
            if variable is None:
                literal.append("$")  # a lone $ is literal in the shell
            else:
                flush_literal()
                parts.append(variable)
            started = True
            i += length
            continue
        if quote == '"':
            if char == '"':
                quote = ""
            elif char == "`":
                raise DialectError("uses backticks (command substitution), which is not run here")
            else:
                literal.append(char)
            i += 1
            continue
        if char in _BLANKS:
            if started:
                flush_literal()
                words.append(tuple(parts))
                parts = []
                started = False
            i += 1
            continue
        if char in "'\"":
            quote = char
            started = True
            i += 1
            continue
        if char == "`":
            raise DialectError("uses backticks (command substitution), which is not run here")
        if char in _OPERATORS:
            raise DialectError(
                f"uses the shell operator {char!r}, which is not run here: only words, "
                "quotes and $name are read"
            )
        if char == "#" and not started:
            raise DialectError("uses '#', which starts a shell comment: quote it if it is text")
        literal.append(char)
        started = True
        i += 1
    if quote:
        raise DialectError(f"has an unclosed {quote} quote")
    if started:
        flush_literal()
        words.append(tuple(parts))
    return words


def _variable(text: str, start: int) -> tuple[Variable | None, int]:
    """The variable at ``text[start] == '$'`` and the length read; None for a literal ``$``."""
    rest = text[start + 1 :]
    if rest.startswith("("):
        raise DialectError("uses $(...) (command substitution), which is not run here")
    if rest.startswith("{"):
        end = rest.find("}")
        inner = rest[1:end] if end > 0 else rest[1:]
        if end < 0 or not _NAME.fullmatch(inner):
            raise DialectError(
                f"uses ${{{inner}...}}: only ${{name}} and $name naming an input are read"
            )
        return Variable(inner), end + 2
    match = _NAME.match(rest)
    if match is None:
        return None, 1
    return Variable(match.group(0)), match.end() + 1


def variables(words: list[Word]) -> list[str]:
    """The names of the variables the words use, in order, once each."""
    return list(dict.fromkeys(p.name for w in words for p in w if isinstance(p, Variable)))


def word_template(word: Word, expression: Callable[[str], str]) -> str:
    """Our template text for one word; ``expression(name)`` gives a variable's expression.

    Literal text that a shell would need quoted is written as a string expression, so that it
    stays one word where values are quoted; plain text is written as is.
    """
    text: list[str] = []
    for part in word:
        if isinstance(part, Variable):
            text.append("{{ " + expression(part.name) + " }}")
        elif _PLAIN.fullmatch(part):
            text.append(part)
        else:
            text.append("{{ " + repr(part) + " }}")
    return "".join(text) if text else "{{ '' }}"


def literal_word(word: Word) -> str | None:
    """The word's text when it holds no variable, else None."""
    if any(isinstance(p, Variable) for p in word):
        return None
    return "".join(p for p in word if isinstance(p, str))
