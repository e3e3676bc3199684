"""`hpcwaas-api audit list`: read the audit log, filtered, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hpcwaas.store.audit import (
    AuditAction,
    AuditEvent,
    AuditFilters,
    AuditPage,
    Outcome,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
SINCE_HELP = "like 2026-11-25T10:00Z (UTC when no zone is given), or a duration back from now: 2h"


class AuditArgumentError(ValueError):
    """A bad option of `audit list`; the message says what was wrong and what fits."""


def add_audit_commands(
    sub: Any, command: Callable[[str, str, Any], argparse.ArgumentParser]
) -> None:
    """Add `audit list` to the subcommands ``sub`` of `hpcwaas-api`."""
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    listing = command("list", "list audit events, newest first", audit)
    listing.add_argument("--user", help="only events whose actor is this user ID (or operator)")
    listing.add_argument(
        "--action",
        dest="event_action",
        metavar="ACTION",
        help="only this action: " + ", ".join(a.value for a in AuditAction),
    )
    listing.add_argument("--target", help="only events about this execution, key, token...")
    listing.add_argument("--outcome", choices=[o.value for o in Outcome], help="success or failure")
    listing.add_argument("--since", help=f"only events at or after this time, {SINCE_HELP}")
    listing.add_argument("--until", help=f"only events before this time, {SINCE_HELP}")
    listing.add_argument(
        "--limit",
        default=str(DEFAULT_LIMIT),
        help=f"at most this many events (1 to {MAX_LIMIT}, default {DEFAULT_LIMIT})",
    )
    listing.add_argument("--cursor", help="continue after a previous page (printed on stderr)")
    listing.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="a table, or JSON lines"
    )


def parse_when(option: str, text: str, now: datetime) -> datetime:
    """A time given as ISO 8601 (UTC when naive) or as a duration before ``now``."""
    from hpcwaas.api.durations import parse_duration

    value = text.strip()
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise AuditArgumentError(
            f"{option} {text!r} is neither a time nor a duration: give a time {SINCE_HELP}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def filters_from(args: argparse.Namespace, now: datetime) -> tuple[AuditFilters, AuditPage]:
    """The query the options ask for, or AuditArgumentError naming the bad option."""
    actions = {a.value for a in AuditAction}
    if args.event_action is not None and args.event_action not in actions:
        raise AuditArgumentError(
            f"--action {args.event_action!r} is not an audit action: use one of "
            + ", ".join(sorted(actions))
        )
    try:
        limit = int(args.limit)
    except ValueError:
        raise AuditArgumentError(f"--limit must be a whole number, got {args.limit!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise AuditArgumentError(f"--limit must be between 1 and {MAX_LIMIT}, got {limit}")
    since = None if args.since is None else parse_when("--since", args.since, now)
    until = None if args.until is None else parse_when("--until", args.until, now)
    if since is not None and until is not None and until <= since:
        raise AuditArgumentError("--until must be later than --since")
    filters = AuditFilters(
        actor=args.user,
        action=args.event_action,
        target=args.target,
        outcome=args.outcome,
        since=since,
        until=until,
    )
    return filters, AuditPage(limit=limit, cursor=args.cursor)


def _details_text(details: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items() if v is not None)


def print_events(events: list[AuditEvent], output: str) -> None:
    """JSON lines, or a table whose IDs are never cut (other columns wrap on a terminal)."""
    if output == "json":
        for event in events:
            print(json.dumps(event.to_json(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for header, whole in (
        ("TIME (UTC)", True),
        ("ACTOR", False),
        ("ACTION", True),
        ("TARGET", True),
        ("SOURCE", True),
        ("OUTCOME", True),
        ("REQUEST ID", True),
        ("DETAILS", False),
    ):
        if whole:
            table.add_column(header, no_wrap=True, overflow="ignore")
        else:
            table.add_column(header, overflow="fold")
    for e in events:
        cells = (
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.actor,
            e.action,
            e.target or "",
            e.source,
            e.outcome,
            e.request_id or "",
            _details_text(e.details),
        )
        # Text cells: a user name like "[red]" prints as is, not as rich markup.
        table.add_row(*(Text(c) for c in cells))
    terminal = sys.stdout.isatty()
    # A pipe has no width: lay the table out at its natural size, nothing wrapped.
    console = Console(
        file=sys.stdout, width=None if terminal else 100_000, no_color=not terminal, highlight=False
    )
    console.print(table, soft_wrap=not terminal)


def audit_list(settings: Any, args: argparse.Namespace, run_db: Any, error: type[Exception]) -> int:
    """Run `audit list`: query through the one query function, print, say if there is more."""
    from hpcwaas.services.audit import list_events
    from hpcwaas.store.pagination import BadCursor

    try:
        filters, page = filters_from(args, datetime.now(UTC))
    except AuditArgumentError as exc:
        raise error(str(exc)) from None

    async def work(db: Any) -> int:
        try:
            events, next_cursor = await list_events(db, filters, page)
        except BadCursor as exc:
            raise error(f"--cursor: {exc}") from None
        print_events(events, args.output)
        if not events:
            print("no audit events match", file=sys.stderr)
        if next_cursor:
            print(f"more events: add --cursor {next_cursor}", file=sys.stderr)
        return 0

    result: int = run_db(settings, work)
    return result
