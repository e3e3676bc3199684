"""`hpcwaas-api secrets put PATH KEY`: store one value in the key store for workflows' secrets:.

The value is read from standard input, never from the command line (which other users of the
host can see) and never printed. Other keys of the entry at PATH are kept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from hpcwaas.catalog.checks import key_store_path_problem

RunDb = Callable[[Any, Callable[[Any], Coroutine[Any, Any, int]]], int]


def add_secrets_commands(
    sub: Any, command: Callable[[str, str, Any], argparse.ArgumentParser]
) -> None:
    """Add `secrets put` to the subcommands ``sub`` of `hpcwaas-api`."""
    secrets = sub.add_parser("secrets", help="values of the key store").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    put = command("put", "store a value (read from standard input) at PATH under KEY", secrets)
    put.add_argument("path", metavar="PATH", help="the entry's path, e.g. apps/demo/db")
    put.add_argument("key", metavar="KEY", help="the field of the entry, e.g. password")


def secrets_put(
    settings: Any, args: argparse.Namespace, run_db: RunDb, error: type[Exception]
) -> int:
    """Store the value read from standard input; print where, never the value."""
    problem = key_store_path_problem(args.path)
    if problem is not None:
        raise error(f"{problem}; use another, e.g. apps/demo/db")
    if not args.key:
        raise error("KEY must not be empty, e.g. password")
    value = sys.stdin.read()
    value = value[:-1] if value.endswith("\n") else value  # the newline of `echo` or a prompt
    if not value:
        raise error('no value on standard input; e.g. `printf %s "$VALUE" | hpcwaas-api ...`')

    async def work(db: Any) -> int:
        from hpcwaas.secrets.factory import close_keystore, open_keystore

        store = open_keystore(settings, db)
        try:
            entry = dict(await store.get(args.path) or {})
            entry[args.key] = value
            await store.put(args.path, entry)
        finally:
            await close_keystore(store)
        print(f"stored key {args.key} at {args.path} ({len(entry)} key(s) in the entry)")
        return 0

    return run_db(settings, work)
