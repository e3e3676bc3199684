"""`hpcwaas-api deployments list|show|logs|run`: the applications' deployments.

``run`` records a new PENDING deployment; the running server's engine starts it (at once
with PostgreSQL's notifications, else within its sweep of a few seconds).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any

RunDb = Callable[[Any, Callable[[Any], Coroutine[Any, Any, int]]], int]


def add_deployments_commands(
    sub: Any, command: Callable[[str, str, Any], argparse.ArgumentParser]
) -> None:
    """Add `deployments list|show|logs|run` to the subcommands ``sub`` of `hpcwaas-api`."""
    deployments = sub.add_parser(
        "deployments", help="applications' deployments (their deployment: steps)"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)
    listed = command("list", "every deployment: application, environment, status", deployments)
    listed.add_argument("--json", action="store_true", help="one JSON object per line")
    for name, text in (
        ("show", "one deployment: status, execution ID, error, when"),
        ("logs", "the log of a deployment's execution"),
        ("run", "run a deployment again now (the server's engine starts it)"),
    ):
        one = command(name, text, deployments)
        one.add_argument("application")
        one.add_argument("environment")
        if name == "show":
            one.add_argument("--json", action="store_true", help="as a JSON object")


def deployments_command(
    settings: Any, args: argparse.Namespace, run_db: RunDb, error: type[Exception]
) -> int:
    """Run `deployments <action>`; a refusal is ``error`` with the service's message."""

    async def work(db: Any) -> int:
        from hpcwaas.services import deployments
        from hpcwaas.services.audit import AuditRecorder
        from hpcwaas.services.errors import ServiceError
        from hpcwaas.store.audit import CLI_ACTOR, CLI_SOURCE

        try:
            if args.action == "list":
                for record in await deployments.list_deployments(db):
                    print(_line(record, as_json=args.json))
                return 0
            if args.action == "run":
                from hpcwaas.server.admin_catalog import configured_catalog

                catalog = configured_catalog(settings, list(settings.catalog_dirs))
                audit = AuditRecorder(db, CLI_SOURCE, None)
                execution_id = await deployments.run_deployment(
                    audit, settings, catalog, args.application, args.environment, CLI_ACTOR
                )
                print(execution_id)
                return 0
            record = await deployments.get_deployment(db, args.application, args.environment)
        except ServiceError as exc:
            raise error(str(exc)) from None
        if args.action == "show":
            print(_show(record, as_json=args.json))
            return 0
        await _print_logs(db, record.execution_id)
        return 0

    return run_db(settings, work)


def _line(record: Any, *, as_json: bool) -> str:
    if as_json:
        return _show(record, as_json=True)
    return (
        f"{record.application}\t{record.environment}\t{record.status.value}\t"
        f"{record.execution_id}\t{record.requested_at.isoformat()}"
    )


def _show(record: Any, *, as_json: bool) -> str:
    values = {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in asdict(record).items()
    }
    values["status"] = record.status.value
    if as_json:
        return json.dumps(values, sort_keys=True)
    return "\n".join(f"{key}: {'' if value is None else value}" for key, value in values.items())


async def _print_logs(db: Any, execution_id: str) -> None:
    from hpcwaas.api.states import LogLevel
    from hpcwaas.controls import escape_controls
    from hpcwaas.store import logs

    async with db.read() as conn:
        entries, _ = await logs.read(conn, execution_id, LogLevel.default_mask(), 0, None)
    for entry in entries:
        step = f" [{entry.step}]" if entry.step else ""
        print(
            f"{entry.timestamp.isoformat()} {entry.level.name}{step} "
            f"{escape_controls(entry.content)}"
        )
