"""`hpcwaas-api`: run the server; administer tokens, accounts, the database, retention; read the
audit log."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from hpcwaas import __version__

EXIT_USAGE = 2

log = logging.getLogger("hpcwaas.server")


class AdminError(Exception):
    """A failure to report in one line, without a traceback."""


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Subcommands repeat the global options with SUPPRESS defaults, so that a value
    # given before the subcommand is not overwritten by the subparser's default.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", type=Path, default=default, help="YAML config file")
    parser.add_argument(
        "--data_dir", type=Path, default=default, help="where the embedded default keeps its data"
    )
    parser.add_argument(
        "-l", "--listen_address", default=default, help="host:port (default 127.0.0.1:9090)"
    )
    parser.add_argument(
        "--log_level",
        default=argparse.SUPPRESS if suppress else "info",
        choices=["debug", "info", "warning", "error"],
        help="server log level",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpcwaas-api",
        description="The hpcwaas server. With no subcommand, serve the REST API.",
    )
    parser.add_argument("--version", action="version", version=f"hpcwaas {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, parent: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
        _global_options(p, suppress=True)
        return p

    command("serve", "serve the REST API (the default)")

    tokens = sub.add_parser("tokens", help="bearer tokens for the API").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    issue = command("issue", "issue a token and print it alone on stdout", tokens)
    issue.add_argument("--user", required=True, help="the user the token identifies")
    issue.add_argument("--ttl", default="24h", help="lifetime: 30m, 24h, 7d... (default 24h)")
    issue.add_argument("--description", help="a note shown by `tokens list`")
    tlist = command("list", "list tokens (never their secret)", tokens)
    tlist.add_argument("--user", help="only this user's tokens")
    revoke = command("revoke", "revoke tokens by ID, or all of a user's", tokens)
    revoke.add_argument("token_ids", nargs="*", metavar="TOKEN_ID")
    revoke.add_argument("--user", help="revoke every token of this user")

    users = sub.add_parser("users", help="local password accounts").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    add = command("add", "create an account or set its password (prompted)", users)
    add.add_argument("name")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    command("list", "list local accounts", users)
    remove = command("remove", "remove an account's password and revoke its tokens", users)
    remove.add_argument("name")
    hash_cmd = command("hash", "print an argon2 hash to put in basic_auth.accounts", users)
    hash_cmd.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    command("upgrade", "create or upgrade the database schema", db)

    from hpcwaas.server.admin_audit import add_audit_commands

    add_audit_commands(sub, command)
    from hpcwaas.server.admin_catalog import add_catalog_commands

    add_catalog_commands(sub, command)
    from hpcwaas.server.admin_secrets import add_secrets_commands

    add_secrets_commands(sub, command)
    from hpcwaas.server.admin_retention import add_retention_commands

    add_retention_commands(sub, command)
    from hpcwaas.server.admin_deployments import add_deployments_commands

    add_deployments_commands(sub, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from hpcwaas.logging_setup import configure_logging

    # Text until the settings say otherwise (a config error is logged in text).
    configure_logging(args.log_level, "text")
    try:
        from hpcwaas.settings import load_settings

        settings = load_settings(
            args.config, data_dir=args.data_dir, listen_address=args.listen_address
        )
        if settings.log_format != "text":
            configure_logging(args.log_level, settings.log_format)
        handler = _HANDLERS.get((args.command or "serve", getattr(args, "action", None)))
        if handler is None:
            parser.print_help()
            return EXIT_USAGE
        return handler(settings, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from hpcwaas.secrets.base import KeyStoreUnavailable
        from hpcwaas.server.admin_catalog import NoRunningServer
        from hpcwaas.settings import ConfigError
        from hpcwaas.store.database import DatabaseUnavailable, SchemaError

        errors = (
            AdminError
            | ConfigError
            | SchemaError
            | DatabaseUnavailable
            | KeyStoreUnavailable
            | NoRunningServer
        )
        if isinstance(exc, errors):
            print(f"hpcwaas-api: {exc}", file=sys.stderr)
            return 1
        logging.getLogger("hpcwaas").exception("unexpected error")
        return 1


def _serve(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.settings import parse_listen_address

    host, port = parse_listen_address(settings.listen_address)
    ssl_context = None
    if settings.tls is not None:
        from hpcwaas.server.tls import server_ssl_context

        # Checked before anything starts: a bad file stops the server with one line.
        ssl_context = server_ssl_context(settings.tls)
    scheme = "https" if ssl_context is not None else "http"
    if settings.embedded_default:
        database = "SQLite" if settings.database_url is None else "the database at database_url"
        print(
            f"hpcwaas {__version__}: development default (no --config): {database} and the "
            f"embedded key store in {settings.data_dir}; environment `local` runs steps on this "
            "host.\n"
            f"Serving on {scheme}://{settings.listen_address}  "
            "(get a token: hpcwaas-api tokens issue --user NAME)",
            file=sys.stderr,
            flush=True,
        )
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_run_server(settings, host, port, args.log_level, ssl_context))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the server extra has it), else asyncio's.

    uvloop roughly halves the event loop's share of each request's CPU time.
    """
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _server_class(shutting_down: asyncio.Event, drain: Callable[[], None]) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """On a stop, starts no execution more, and ends long polls and event streams first
        (they would hold the shutdown up); then uvicorn lets requests in flight finish."""

        async def shutdown(self, sockets: Any = None) -> None:
            drain()
            shutting_down.set()
            await super().shutdown(sockets)

    return Server


async def _run_server(
    settings: Any, host: str, port: int, log_level: str, ssl_context: ssl.SSLContext | None
) -> int:
    """Start the runtime (a failure is one line, not a traceback), serve, then stop it."""
    import signal

    import uvicorn

    from hpcwaas.server.app import create_app
    from hpcwaas.server.catalog_reload import CatalogReloader, remove_pid_file, write_pid_file
    from hpcwaas.server.longpoll import shutdown_event
    from hpcwaas.server.protocol import protocol_class
    from hpcwaas.server.runtime import start_runtime, stop_runtime

    runtime = await start_runtime(settings)
    pid_path = write_pid_file(settings.data_dir)
    # The reloader belongs to this process (its pid file, its SIGHUP), not to the runtime.
    reloader = CatalogReloader(runtime.live_catalog, runtime.db, settings.catalog_watch_seconds)
    reloader.start()
    # `hpcwaas-api catalog reload` sends SIGHUP: reload the catalog, do not stop.
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.reload_soon, "SIGHUP")
    try:
        app = create_app(settings, runtime)
        # Everything built so far lives as long as the process: out of the collector's sight,
        # a full collection under load no longer walks it (pauses of hundreds of ms before).
        gc.collect()
        gc.freeze()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            log_config=None,  # keep the one log format set up in main()
            # Caps the size and time of request heads and bodies, and the connections.
            http=protocol_class(settings.limits),
            access_log=False,  # one access line per request, from our middleware
            server_header=False,
            # A slow client cannot hold a stopping replica up longer than this.
            timeout_graceful_shutdown=settings.shutdown_drain_seconds,
            # uvicorn would build its own context from file names; ours carries the checks
            # and options of the `tls:` settings (minimum version, client certificates).
            ssl_context_factory=(lambda *_: ssl_context) if ssl_context is not None else None,
        )
        _log_listening(host, port, settings.tls)
        server = _server_class(shutdown_event(app), runtime.engine.drain)(config)
        # uvicorn re-raises the stop signal once it has shut down; with these handlers that
        # is a no-op, so the engine below still stops its steps and records why.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)
        await server.serve()
        return 0 if server.started else 1
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        remove_pid_file(pid_path)
        await reloader.stop()
        await stop_runtime(runtime)


def _log_listening(host: str, port: int, tls: Any) -> None:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls is None:
        log.info("serving on http://%s", where)
        return
    clients = (
        f"client certificates required (CA {tls.client_ca_file})"
        if tls.client_ca_file
        else "no client certificates"
    )
    log.info(
        "serving on https://%s (certificate %s, TLS %s or later, %s)",
        where,
        tls.cert_file,
        tls.minimum_version,
        clients,
    )


def _run_db(
    settings: Any, work: Callable[[Any], Coroutine[Any, Any, int]], *, upgrade: bool = False
) -> int:
    """Open the database (creating its schema if empty, upgrading it if asked), run ``work``."""
    from hpcwaas.store.database import Database

    async def runner() -> int:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = Database(
            settings.effective_database_url,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
        try:
            outcome = await db.prepare_schema(allow_upgrade=True if upgrade else None)
            if upgrade:
                print(f"database schema {outcome}")
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(runner())


def _tokens_issue(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.api.durations import parse_duration
    from hpcwaas.auth.tokens import issue_token

    try:
        seconds = parse_duration(args.ttl)
    except ValueError as exc:
        raise AdminError(f"--ttl: {exc}") from None
    if seconds <= 0:
        raise AdminError("--ttl must be positive, like 30m, 24h or 7d")
    user = args.user.strip()
    if not user:
        raise AdminError("--user must not be empty")
    _check_length("--user", user, MAX_USER_ID)
    if args.description is not None:
        _check_length("--description", args.description, MAX_TOKEN_DESCRIPTION)

    async def work(db: Any) -> int:
        from hpcwaas.services.audit import record_cli_event
        from hpcwaas.store.audit import AuditAction

        token, record = await issue_token(db, user, timedelta(seconds=seconds), args.description)
        await record_cli_event(
            db,
            AuditAction.TOKEN_ISSUE,
            record.id,
            details={
                "user": user,
                "expires_at": record.expires_at.isoformat(),
                "description": args.description,
            },
        )
        print(token)
        print(
            f"token {record.id} for {user}, expires {record.expires_at:%Y-%m-%d %H:%M} UTC",
            file=sys.stderr,
        )
        return 0

    return _run_db(settings, work)


def _tokens_list(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.store import users as user_store

    async def work(db: Any) -> int:
        async with db.read() as conn:
            records = await user_store.list_tokens(conn, args.user)
        rows = [
            (
                r.id,
                r.user_id,
                f"{r.created_at:%Y-%m-%d %H:%M}",
                f"{r.expires_at:%Y-%m-%d %H:%M}",
                "revoked" if r.revoked_at else ("active" if r.active else "expired"),
                r.description or "",
            )
            for r in records
        ]
        _print_table(("ID", "USER", "CREATED", "EXPIRES", "STATE", "DESCRIPTION"), rows)
        return 0

    return _run_db(settings, work)


def _tokens_revoke(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.store import users as user_store

    if not args.token_ids and not args.user:
        raise AdminError("name the tokens to revoke (their IDs from `tokens list`) or --user NAME")

    async def work(db: Any) -> int:
        from hpcwaas.services.audit import record_cli_event
        from hpcwaas.store.audit import AuditAction, Outcome

        failed = 0
        async with db.write() as conn:
            for token_id in args.token_ids:
                if await user_store.revoke_token(conn, token_id):
                    print(f"revoked token {token_id}")
                    await record_cli_event(db, AuditAction.TOKEN_REVOKE, token_id, conn=conn)
                else:
                    print(f"no active token {token_id}", file=sys.stderr)
                    await record_cli_event(
                        db,
                        AuditAction.TOKEN_REVOKE,
                        token_id,
                        outcome=Outcome.FAILURE,
                        details={"reason": "no active token with this ID"},
                        conn=conn,
                    )
                    failed += 1
            if args.user:
                # Listed first (same transaction) so that each revoked token gets its event.
                unrevoked = [
                    t for t in await user_store.list_tokens(conn, args.user) if t.revoked_at is None
                ]
                count = await user_store.revoke_user_tokens(conn, args.user)
                for token in unrevoked:
                    await record_cli_event(
                        db,
                        AuditAction.TOKEN_REVOKE,
                        token.id,
                        details={"user": args.user},
                        conn=conn,
                    )
                print(f"revoked {count} token(s) of {args.user}")
        return 1 if failed else 0

    return _run_db(settings, work)


# The columns' sizes (store/tables.py): PostgreSQL refuses longer values where SQLite keeps them.
MAX_USER_ID = 255
MAX_TOKEN_DESCRIPTION = 255


def _check_length(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise AdminError(f"{what} has {len(value)} characters; at most {limit} are allowed")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise AdminError("the two passwords differ")
    if len(password) < 8:
        raise AdminError("the password must have at least 8 characters")
    return password


def _users_add(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.auth.passwords import hash_password
    from hpcwaas.store import users as user_store

    name = args.name.strip()
    if not name or ":" in name:
        raise AdminError("the account name must be non-empty and contain no ':'")
    _check_length("the account name", name, MAX_USER_ID)
    password_hash = hash_password(_read_password(args.password_stdin))

    async def work(db: Any) -> int:
        async with db.write() as conn:
            await user_store.set_password_hash(conn, name, password_hash)
        print(f"account {name} ready: log in at /auth/login")
        return 0

    return _run_db(settings, work)


def _users_list(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.store import users as user_store

    async def work(db: Any) -> int:
        async with db.read() as conn:
            accounts = await user_store.list_local_accounts(conn)
        _print_table(("USER", "CREATED"), [(u, f"{c:%Y-%m-%d %H:%M}") for u, c in accounts])
        return 0

    return _run_db(settings, work)


def _users_remove(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.store import users as user_store

    async def work(db: Any) -> int:
        async with db.write() as conn:
            removed = await user_store.remove_password(conn, args.name)
            revoked = await user_store.revoke_user_tokens(conn, args.name)
        if not removed:
            raise AdminError(f"no local account {args.name!r}")
        print(f"account {args.name} removed; {revoked} token(s) revoked")
        return 0

    return _run_db(settings, work)


def _users_hash(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.auth.passwords import hash_password

    print(hash_password(_read_password(args.password_stdin)))
    return 0


def _db_upgrade(settings: Any, args: argparse.Namespace) -> int:
    async def nothing_more(db: Any) -> int:
        return 0

    return _run_db(settings, nothing_more, upgrade=True)


def _audit_list(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.server.admin_audit import audit_list

    return audit_list(settings, args, _run_db, AdminError)


def _workflows_validate(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.server.admin_catalog import validate_command

    return validate_command(settings, args)


def _secrets_put(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.server.admin_secrets import secrets_put

    return secrets_put(settings, args, _run_db, AdminError)


def _retention_run(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.server.admin_retention import retention_run

    return retention_run(settings, args, _run_db, AdminError)


def _catalog_reload(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.server.admin_catalog import reload_command

    return reload_command(settings, args)


def _print_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    for row in (headers, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _deployments(settings: Any, args: argparse.Namespace) -> int:
    from hpcwaas.server.admin_deployments import deployments_command

    return deployments_command(settings, args, _run_db, AdminError)


_HANDLERS: dict[tuple[str, str | None], Callable[[Any, argparse.Namespace], int]] = {
    ("serve", None): _serve,
    ("tokens", "issue"): _tokens_issue,
    ("tokens", "list"): _tokens_list,
    ("tokens", "revoke"): _tokens_revoke,
    ("users", "add"): _users_add,
    ("secrets", "put"): _secrets_put,
    ("users", "list"): _users_list,
    ("users", "remove"): _users_remove,
    ("users", "hash"): _users_hash,
    ("db", "upgrade"): _db_upgrade,
    ("audit", "list"): _audit_list,
    ("workflows", "validate"): _workflows_validate,
    ("catalog", "reload"): _catalog_reload,
    ("retention", "run"): _retention_run,
    **{("deployments", action): _deployments for action in ("list", "show", "logs", "run")},
}


if __name__ == "__main__":
    sys.exit(main())
