"""`waas`: the command-line client of the HPCWaaS API (parser, dispatch, error handling).

Imports here stay light (argparse and our own small modules): a command's module loads
when the command line names it, and httpx, rich and pydantic inside the commands that
need them, so `waas --help` and each command start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from hpcwaas import __version__
from hpcwaas.cli.config import ConfigError
from hpcwaas.cli.parsing import (
    UnknownCommand,
    UsageError,
    WaasParser,
    add_command,
    add_global_options,
    add_subcommands,
)

if TYPE_CHECKING:
    import httpx

    from hpcwaas.cli.context import Context
    from hpcwaas.client.errors import ApiError

DESCRIPTION = """\
A command-line client for HPC Workflows as a Service (HPCWaaS).

Log in once with `waas --api_url <api_url> login` (it saves an access token in
the config file), then:"""

EPILOG = """\
examples:
  waas ssh_keys key-gen
  waas workflows list
  waas workflows trigger -f -i name=value <workflow_id>
  waas environments set-identity <environment> --login <login> --key <key_id>
  waas executions status <execution_id>
  waas executions cancel <execution_id>

Without login, get a token by opening <api_url>/auth/login in a browser and
pass it to each command: waas --api_url <api_url> -t=<access_token> workflows list

Settings come from flags, then HW_* environment variables, then the YAML
config file (~/.waas by default; keys api_url, access_token, user,
skip_tls_verify, ca_file, ca_path, key_file, cert_file).
Run `waas help <command>` for a command's options."""

# 401 details saying the token was valid once (docs/compatibility.md, "Errors"): logging in
# again helps.
STALE_TOKEN_DETAILS = (
    "You are not logged in or your session has expired",
    "Invalid authorization token",
)

# How the API's 404 for an unknown path begins (server/problems.py).
NO_ROUTE = "no route "

# Usage errors exit 1, as the original's (docs/compatibility.md, "Exit codes").
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 1, 130

# The top-level commands, in help's order: (name, aliases, help, module of hpcwaas.cli). The
# module is imported, and its `fill` adds the command's arguments or subcommands, only when a
# command line names the command or its help is shown: a command line compiles and builds
# only its own command (building and compiling them all was a third of `waas --help`).
COMMANDS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("login", (), "Log in and save an access token in the config file", "login"),
    ("logout", (), "Revoke your access token and remove it from the config file", "login"),
    ("whoami", (), "Show who you are logged in as", "login"),
    ("workflows", ("workflow", "wf", "w"), "List, inspect and trigger workflows", "workflows"),
    ("executions", ("execution", "exec", "e"), "Follow and cancel executions", "executions"),
    ("ssh_keys", ("keys", "key", "k"), "Generate and manage your SSH keys", "ssh_keys"),
    (
        "environments",
        ("environment", "env", "envs"),
        "List environments and register your cluster account on them",
        "environments",
    ),
    ("completion", (), "Print a shell completion script", "completion"),
)


def build_parser() -> WaasParser:
    """The `waas` parser tree; each command fills in its arguments on first use."""
    parser = WaasParser(
        prog="waas",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"waas {__version__}")
    add_global_options(parser, root=True)
    parser.set_defaults(func=None, command_parser=parser)
    sub = add_subcommands(parser)
    for name, aliases, help_text, module in COMMANDS:
        add_command(sub, name, aliases, help_text, None, fill=partial(_fill_from, module))
    helper = add_command(sub, "help", (), "Show the help of a command", None)
    helper.add_argument("topic", nargs="*", metavar="command", help="e.g. `workflows trigger`")
    helper.set_defaults(help_topic=True)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run `waas` and return its exit code; `environ` and `transport` are seams for tests."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv), environ, transport)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`waas ... | head`): nothing left to say, and saying it would fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def _run(
    argv: list[str], environ: Mapping[str, str] | None, transport: httpx.BaseTransport | None
) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "help_topic", False):
            _find_command(parser, args.topic).print_help()
            return EXIT_OK
    except UsageError as exc:
        return _usage_error(exc, parser)
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if args.func is None:
        args.command_parser.print_help()
        return EXIT_OK

    from hpcwaas.cli.context import Context

    ctx = Context(args, environ=environ, transport=transport)
    try:
        return int(args.func(ctx))
    except UsageError as exc:
        return _usage_error(exc, args.command_parser)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, never a traceback
        return _report(exc, ctx)
    finally:
        ctx.close()


def _fill_from(module: str, command: WaasParser) -> None:
    importlib.import_module(f"hpcwaas.cli.{module}").fill(command)


def _find_command(parser: argparse.ArgumentParser, words: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of `waas help <words>`, following names and aliases."""
    current = parser
    for word in words:
        if isinstance(current, WaasParser):
            current.filled()
        choices: dict[str, Any] = {}
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                choices = dict(action.choices)
        if word not in choices:
            raise UsageError(f"unknown command {' '.join(words)!r}", current)
        current = choices[word]
    return current


def _usage_error(exc: UsageError, parser: argparse.ArgumentParser) -> int:
    target = exc.parser or parser
    if isinstance(exc, UnknownCommand):
        # cobra's words, which the original printed
        print(f"Error: {exc}", file=sys.stderr)
        if exc.suggestions:
            print("\nDid you mean this?", file=sys.stderr)
            for name in exc.suggestions:
                print(f"\t{name}", file=sys.stderr)
        print(f"\nRun '{target.prog} --help' for usage.", file=sys.stderr)
        return EXIT_USAGE
    sys.stderr.write(target.format_usage())
    print(f"{target.prog}: error: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _report(exc: Exception, ctx: Context) -> int:
    """Print an error as one readable line per problem; return the exit code."""
    from hpcwaas.client.errors import (
        ApiError,
        ConfigurationError,
        HpcwaasError,
        NotAnApi,
        describe_item,
    )

    if isinstance(exc, ApiError):
        for item in exc.errors:
            print(f"Error: {describe_item(item)}", file=sys.stderr)
        if exc.status == 401:
            print(_login_hint(exc, ctx), file=sys.stderr)
        if exc.status == 404 and any(i.detail.startswith(NO_ROUTE) for i in exc.errors):
            # an hpcwaas server, asked under a path that is not the API's
            print(_address_hint(ctx), file=sys.stderr)
        return EXIT_FAILED
    if isinstance(exc, NotAnApi):
        print(f"Error: {exc}", file=sys.stderr)
        print(_address_hint(ctx), file=sys.stderr)
        return EXIT_FAILED
    if isinstance(exc, ConfigurationError):
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, HpcwaasError):
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(exc, EOFError):
        print("Error: no input where a password was expected", file=sys.stderr)
        return EXIT_FAILED
    print(f"Error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
    if os.environ.get("WAAS_DEBUG"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    else:
        print("(set WAAS_DEBUG=1 to see the traceback)", file=sys.stderr)
    return EXIT_FAILED


def _address_hint(ctx: Context) -> str:
    """The hint when --api_url is not the API's address; the portal's /ui/ is a usual slip."""
    url = ctx.settings.api_url.rstrip("/")
    if url.endswith("/ui"):
        base = url[: -len("/ui")]
        return f"Hint: {url}/ is the web portal; the API is at {base}: use --api_url {base}"
    return (
        "Hint: --api_url is the address of the server's API, as the administrator gave it "
        "(e.g. https://host:port), without a path the API does not know"
    )


def _login_hint(exc: ApiError, ctx: Context) -> str:
    """The one hint line of a 401: log in again when the token has expired or is unknown."""
    if any(d in item.detail for item in exc.errors for d in STALE_TOKEN_DETAILS):
        return 'Run "waas login" to log in again.'
    url = ctx.settings.api_url.rstrip("/")
    return (
        f'Hint: run "waas login", or get a token by opening {url}/auth/login in a browser '
        "and pass it with -t=<token>"
    )


if __name__ == "__main__":
    sys.exit(main())
