"""`hpcwaas-api retention run`: one retention sweep now, with the server's settings."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Coroutine
from typing import Any

RunDb = Callable[[Any, Callable[[Any], Coroutine[Any, Any, int]]], int]


def add_retention_commands(
    sub: Any, command: Callable[[str, str, Any], argparse.ArgumentParser]
) -> None:
    """Add `retention run` to the subcommands ``sub`` of `hpcwaas-api`."""
    retention = sub.add_parser(
        "retention", help="removal of finished executions' data"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)
    run = command(
        "run",
        "sweep once now: remove the data that the retention settings say is due, print counts",
        retention,
    )
    run.add_argument("--json", action="store_true", help="print the counts as one JSON object")


def retention_run(
    settings: Any, args: argparse.Namespace, run_db: RunDb, error: type[Exception]
) -> int:
    """Run one sweep under the `retention` lease (refused while a server is sweeping)."""

    async def work(db: Any) -> int:
        from hpcwaas.engine.data_removal import DataRemover
        from hpcwaas.engine.retention import RetentionSweeper, SweepBusy
        from hpcwaas.secrets.factory import close_keystore, open_keystore

        keystore = open_keystore(settings, db)
        remover = DataRemover(db, settings, keystore)
        try:
            counts = await RetentionSweeper(db, settings, remover).sweep()
        except SweepBusy as busy:
            raise error(f"{busy}; try again once that sweep has ended") from None
        finally:
            await remover.close()
            await close_keystore(keystore)
        if args.json:
            print(json.dumps(counts.as_details(), sort_keys=True))
        else:
            print(f"removed {counts.summary()}")
        return 1 if counts.left else 0

    return run_db(settings, work)
