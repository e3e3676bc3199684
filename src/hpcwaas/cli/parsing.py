"""argparse plumbing: the parser class, global options, commands with aliases, value types.

Kept free of httpx, rich and pydantic so that `waas --help` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, NoReturn

OUTPUT_FORMATS = ("text", "json")
GLOBAL_DESTS = frozenset(
    {
        "output",
        "config",
        "api_url",
        "skip_tls_verify",
        "ca_file",
        "ca_path",
        "key_file",
        "cert_file",
        "user",
        "access_token",
    }
)


class UsageError(Exception):
    """The command line is wrong; `parser` is the (sub)command whose usage to show."""

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class UnknownCommand(UsageError):
    """A command name that is none of the parser's commands; ``suggestions`` are the close ones."""

    def __init__(self, word: str, parser: WaasParser, commands: Sequence[str]) -> None:
        super().__init__(f"unknown command {_go_quote(word)} for {_go_quote(parser.prog)}", parser)
        self.suggestions = [name for name in commands if _close(word, name)]


def _go_quote(text: str) -> str:
    """Go's %q of a printable word: in double quotes, with `\\` and `"` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _close(typed: str, name: str) -> bool:
    """cobra's test for a suggestion: within 2 edits (ignoring case), or a prefix of the name."""
    typed, name = typed.lower(), name.lower()
    return name.startswith(typed) or _edit_distance(typed, name) <= 2


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions to turn ``a`` into ``b``."""
    row = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, char_b in enumerate(b, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (char_a != char_b)),
            )
    return row[-1]


def _aliases(action: argparse._SubParsersAction[Any]) -> set[str]:
    return {
        alias
        for parser in action._name_parser_map.values()
        if isinstance(parser, WaasParser)
        for alias in parser.command_aliases
    }


# The words Go's strconv.ParseBool reads, which the original's flags take after `=`.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _go_boolean(option: str, value: str, parser: WaasParser) -> bool:
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    raise UsageError(f"{option} takes true or false, got {value!r}", parser)


class WaasParser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of exiting, and knows its aliases.

    A command's own arguments and subcommands may be added on its first use (`fill`): a
    command line then imports and builds only the commands it names, not all of them.
    """

    command_name: str = "waas"
    command_aliases: tuple[str, ...] = ()
    fill: Callable[[WaasParser], None] | None = None

    def filled(self) -> WaasParser:
        """This parser with its arguments and subcommands added."""
        fill, self.fill = self.fill, None
        if fill is not None:
            fill(self)
        return self

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self.filled()
        words, falses = self._boolean_values(list(sys.argv[1:] if args is None else args))
        parsed, extras = super().parse_known_args(words, namespace)
        for dest in falses:
            setattr(parsed, dest, False)
        return parsed, extras

    def _boolean_values(self, args: list[str]) -> tuple[list[str], set[str]]:
        """Read `--flag=true` and `--flag=false` (also `-f=...`), as the original's flags do.

        argparse's flags take no value: `--flag=true` becomes `--flag`, and the flags whose
        last word was false are returned, for their destination to be set False after parsing.
        """
        flags = {
            option: action.dest
            for action in self._actions
            if action.nargs == 0 and action.const is True
            for option in action.option_strings
        }
        words: list[str] = []
        falses: set[str] = set()
        for index, arg in enumerate(args):
            if arg == "--":
                words.extend(args[index:])
                break
            option, sep, value = arg.partition("=")
            if option not in flags:
                words.append(arg)
                continue
            if not sep or _go_boolean(option, value, self):
                words.append(option)
                falses.discard(flags[option])
            else:
                falses.add(flags[option])
        return words, falses

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # A mistyped command gets the original's message and suggestions (cobra's).
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            raise UnknownCommand(
                value, self, sorted(set(action._name_parser_map) - _aliases(action))
            )
        super()._check_value(action, value)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)

    def format_usage(self) -> str:
        self.filled()
        with self._short_usage():
            return super().format_usage()

    def format_help(self) -> str:
        self.filled()
        with self._short_usage():
            return super().format_help()

    @contextmanager
    def _short_usage(self) -> Iterator[None]:
        """Show `[global options]` in usage lines instead of repeating all ten of them."""
        if self.usage is not None:
            yield
            return
        formatter = self._get_formatter()
        local = [a for a in self._actions if a.dest not in GLOBAL_DESTS]
        formatter.add_usage(None, local, [], prefix="")
        text = formatter.format_help().strip()
        rest = text[len(self.prog) :] if text.startswith(self.prog) else f" {text}"
        self.usage = f"{self.prog} [global options]{rest}".replace("%", "%%")
        try:
            yield
        finally:
            self.usage = None


def add_global_options(parser: argparse.ArgumentParser, *, root: bool) -> None:
    """Add the global options; on subcommands they default to SUPPRESS so earlier values survive.

    argparse copies a subparser's defaults over what the parent parsed, so a copy
    with real defaults would erase `waas -t=T workflows list`'s token.
    """

    def default(value: Any) -> Any:
        return value if root else argparse.SUPPRESS

    # Described once, in `waas --help`; a command's help only points there.
    group = parser.add_argument_group(
        "global options",
        None if root else "-o/--json, --api_url, -t and the others: see `waas --help`",
    )

    def explained(text: str) -> str:
        return text if root else argparse.SUPPRESS

    group.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=default("text"),
        help=explained("output format: text (default) or json"),
    )
    group.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        default=default("text"),
        help=explained("the same as -o json"),
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default(None),
        help=explained("YAML config file (default ~/.waas)"),
    )
    group.add_argument(
        "--api_url",
        metavar="URL",
        default=default(None),
        help=explained("URL of the API (env HW_API_URL; default https://127.0.0.1:9090)"),
    )
    group.add_argument(
        "--skip_tls_verify",
        action="store_true",
        default=default(None),
        help=explained("do not check the server's TLS certificate (env HW_SKIP_TLS_VERIFY)"),
    )
    for name, env, text in (
        ("ca_file", "HW_CA_FILE", "CA certificate file to check the server's certificate"),
        ("ca_path", "HW_CA_PATH", "directory of CA certificates to check the server's certificate"),
        ("key_file", "HW_KEY_FILE", "private key of the client TLS certificate"),
        ("cert_file", "HW_CERT_FILE", "client TLS certificate"),
    ):
        metavar = "DIR" if name == "ca_path" else "FILE"
        group.add_argument(
            f"--{name}",
            metavar=metavar,
            default=default(None),
            help=explained(f"{text} (env {env})"),
        )
    group.add_argument(
        "-u",
        "--user",
        metavar="USER[:PASSWORD]",
        default=default(None),
        help=explained(
            "basic authentication; the password is prompted for when absent (env HW_USER)"
        ),
    )
    group.add_argument(
        "-t",
        "--access_token",
        metavar="TOKEN",
        default=default(None),
        help=explained("access token, if not saved by `waas login` (env HW_ACCESS_TOKEN)"),
    )


def add_command(
    subparsers: Any,
    name: str,
    aliases: Sequence[str],
    help_text: str,
    func: Callable[..., int] | None,
    description: str | None = None,
    fill: Callable[[WaasParser], None] | None = None,
) -> WaasParser:
    """Add a (sub)command with its aliases and the global options; `func` None means a group.

    `fill`, if given, adds the command's arguments (or subcommands), and the global
    options, on its first use.
    """
    parser: WaasParser = subparsers.add_parser(
        name,
        aliases=list(aliases),
        help=help_text,
        description=description or help_text,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.command_name = name
    parser.command_aliases = tuple(aliases)
    # The innermost parser's defaults win, so these name the command that was chosen.
    parser.set_defaults(func=func, command_parser=parser)
    if fill is None:
        add_global_options(parser, root=False)
    else:
        parser.fill = partial(_fill_command, fill)
    return parser


def _fill_command(fill: Callable[[WaasParser], None], command: WaasParser) -> None:
    # The global options too wait for the first use, and come before the command's own as
    # on a command built at once: help and completion list them in the same order.
    add_global_options(command, root=False)
    fill(command)


def add_subcommands(parser: argparse.ArgumentParser) -> Any:
    """The subparsers action of a command group."""
    return parser.add_subparsers(title="commands", metavar="<command>")


def input_pairs(text: str) -> list[tuple[str, str]]:
    """argparse type of `-i`: comma-separated `key=value` pairs, as the original's flag read them.

    Pieces are split on commas with CSV quoting (`'"msg=a,b"'` is one pair); a piece without
    `=` belongs to the value before it, comma included (`tags=x,y` is one pair). An empty
    value gives no pair.
    """
    return _pairs(_csv_pieces(text)) if text else []


def metadata_pairs(text: str) -> list[tuple[str, str]]:
    """argparse type of `-m`: the original's rule, split only when `=` appears twice or more.

    With one `=` the whole text is one pair (surrounding double quotes dropped); with more,
    it is split as `-i` is.
    """
    if text.count("=") == 1:
        return _pairs([text.strip('"')])
    return _pairs(_csv_pieces(text))


def _csv_pieces(text: str) -> list[str]:
    """The comma-separated fields of ``text``; a line break outside quotes stays in its field."""
    import csv
    import io

    pieces: list[str] = []
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise argparse.ArgumentTypeError(
            f"cannot split {text!r} into key=value pairs ({exc}); a value with commas or "
            """quotes goes in double quotes, e.g. '"msg=a, b"'"""
        ) from None
    for number, record in enumerate(records):
        if number:
            # csv ended a record at a line break: it belongs to the field it was in.
            pieces[-1] += "\n" + (record[0] if record else "")
            pieces.extend(record[1:])
        else:
            pieces.extend(record)
    return pieces


def _pairs(pieces: Sequence[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for piece in pieces:
        key, sep, value = piece.partition("=")
        if sep and key:
            pairs.append((key, value))
        elif pairs:
            previous_key, previous_value = pairs[-1]
            pairs[-1] = (previous_key, f"{previous_value},{piece}")
        else:
            raise argparse.ArgumentTypeError(f"expected key=value, got {piece!r}")
    return pairs


def non_negative_int(text: str) -> int:
    """argparse type for an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type for an integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
