"""`waas executions`: status (and follow), logs (and follow), cancel, purge, outputs, list."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from hpcwaas.cli import stored_outputs
from hpcwaas.cli.parsing import (
    WaasParser,
    add_command,
    add_subcommands,
    non_negative_int,
    positive_int,
)

if TYPE_CHECKING:
    from hpcwaas.api.models import ExecutionPublic, ExecutionSummary, LogEntry, StepPublic
    from hpcwaas.cli.context import Context

# Seconds between two status polls of `-f`.
POLL_INTERVAL = 1.0
# Seconds one logs long poll may wait; bounds how late `logs -f` notices an execution that
# ended without writing a last entry.
LOGS_LONG_POLL = 10.0
LOGS_PAGE_SIZE = 1000
DEBUG_LEVELS = 1 | 2 | 4 | 8
DEFAULT_LEVELS = 2 | 4 | 8
# A follow loop may run for hours: a dropped connection or a brief outage must not end it.
FOLLOW_RETRIES = 5
RETRY_BASE_DELAY = 1.0

T = TypeVar("T")


def fill(group: WaasParser) -> None:
    """Add the subcommands of `executions`."""
    sub = add_subcommands(group)

    status = add_command(
        sub, "status", ("stat", "get", "g", "s"), "Show the status of an execution", run_status
    )
    status.add_argument("execution_id", metavar="execution-id")
    status.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="poll until the execution ends; exit 1 if it ends FAILED or CANCELLED",
    )

    logs = add_command(sub, "logs", ("log", "l"), "Show the logs of an execution", run_logs)
    logs.add_argument("execution_id", metavar="execution-id")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="wait for new entries until the execution ends"
    )
    logs.add_argument("-d", "--debug", action="store_true", help="include DEBUG entries")
    logs.add_argument(
        "--from",
        dest="from_index",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="skip the first N entries",
    )

    cancel = add_command(
        sub, "cancel", ("delete", "del", "d", "c"), "Cancel one or more executions", run_cancel
    )
    cancel.add_argument("execution_ids", nargs="+", metavar="execution-id")

    purge = add_command(
        sub,
        "purge",
        (),
        "Remove the data of finished executions now",
        run_purge,
        description="Remove the working directories (on the server and the cluster), logs and "
        "stored output files of one or more finished executions, before the server's "
        "retention would. The executions stay listed with their status.",
    )
    purge.add_argument("execution_ids", nargs="+", metavar="execution-id")

    stored_outputs.register(sub)

    listing = add_command(sub, "list", ("ls",), "List your executions, newest first", run_list)
    listing.add_argument(
        "--limit", type=positive_int, metavar="N", help="show at most N executions"
    )
    listing.add_argument(
        "--all",
        dest="all_users",
        action="store_true",
        help="every user's executions, with their owner (operators only)",
    )


def exit_code(execution: ExecutionPublic) -> int:
    """0 for SUCCEEDED, 1 for FAILED or CANCELLED, so scripts can tell."""
    return 0 if execution.status == "SUCCEEDED" else 1


def status_line(execution: ExecutionPublic) -> str:
    """The original's status line."""
    return f"Execution: ID: {execution.id}, Status: {execution.status.value}"


def _step_line(step: StepPublic) -> str:
    details = [f"Slurm job {step.job_id}"] if step.job_id else []
    if step.environment_id is not None:  # not the workflow's environment
        where = f"on {step.environment_id}"
        details = [f"{details[0]} {where}"] if details else [where]
    if step.exit_code is not None:
        details.append(f"exit code {step.exit_code}")
    suffix = f" ({', '.join(details)})" if details else ""
    line = f"  Step {step.name}: {step.state.value}{suffix}"
    if step.accounting is not None:  # what sacct kept of its job
        line += f"\n    Slurm accounting: {step.accounting.summary()}"
    return line


def _document(execution: ExecutionPublic) -> dict[str, Any]:
    return execution.model_dump(mode="json", exclude_none=True)


def print_status(ctx: Context, execution: ExecutionPublic) -> None:
    """The status line, then steps, error and outputs as additive lines."""
    out = ctx.out
    if out.json:
        out.document(_document(execution))
        return
    out.line(status_line(execution))
    for step in execution.steps or []:
        out.line(_step_line(step))
    _print_outcome(ctx, execution)


def _print_outcome(ctx: Context, execution: ExecutionPublic) -> None:
    from hpcwaas.cli.output import rfc3339

    if execution.error:
        ctx.out.line(f"  Error: {execution.error}")
    for kind, removal in (execution.data_removed or {}).items():
        who = "by retention" if removal.by == "retention" else f"by {removal.by}"
        ctx.out.line(f"  Data removed: {kind.replace('_', ' ')} ({who} on {rfc3339(removal.at)})")
    for name, value in (execution.outputs or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        if "\n" in text.rstrip("\n"):
            # A file's content: one indented block, so it cannot be mistaken for our lines.
            ctx.out.line(f"  Output {name}:")
            for line in text.rstrip("\n").splitlines():
                ctx.out.line(f"    {line}")
        else:
            ctx.out.line(f"  Output {name}: {text.rstrip()}")


def retrying(ctx: Context, read: Callable[[], T]) -> T:
    """Run a read-only request, retrying transient failures (network, 429, 502-504) with backoff."""
    from hpcwaas.client.errors import ConnectionFailed, ServerError, TooManyRequests

    for attempt in range(FOLLOW_RETRIES + 1):
        try:
            return read()
        except (ConnectionFailed, TooManyRequests, ServerError) as exc:
            transient = not isinstance(exc, ServerError) or exc.status in (502, 503, 504)
            if not transient or attempt == FOLLOW_RETRIES:
                raise
            delay = getattr(exc, "retry_after", None) or RETRY_BASE_DELAY * min(2**attempt, 30)
            ctx.out.note(f"Warning: {exc}; retrying in {delay:g}s")
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def follow_status(ctx: Context, execution_id: str) -> int:
    """Poll until a terminal status, printing each change; return the exit code for it.

    On a terminal, stderr shows the elapsed time and current step while it waits.
    """
    from hpcwaas.cli.progress import Progress, interrupted_note, waiting_line

    client = ctx.client()
    progress = Progress(ctx.out.stderr)
    shown_status: str | None = None
    shown_steps: dict[str, str] = {}
    try:
        while True:
            execution = retrying(ctx, partial(client.get_execution, execution_id))
            steps = {step.name: step.state.value for step in execution.steps or []}
            if execution.status != shown_status or steps != shown_steps:
                progress.clear()
                _print_changes(ctx, execution, shown_status, shown_steps)
                shown_status, shown_steps = execution.status, steps
            if execution.status.terminal:
                return exit_code(execution)
            # The line is redrawn each second: the elapsed time moves between two polls.
            waited = 0.0
            while True:
                progress.show(waiting_line(execution))
                step = min(1.0, POLL_INTERVAL - waited)
                if step <= 0:
                    break
                time.sleep(step)
                waited += step
    except KeyboardInterrupt:
        progress.clear()
        ctx.out.note(interrupted_note(execution_id, "status"))
        raise
    finally:
        progress.clear()


def _print_changes(
    ctx: Context, execution: ExecutionPublic, status: str | None, steps: dict[str, str]
) -> None:
    if ctx.out.json:
        ctx.out.document(_document(execution))
        return
    if execution.status != status:
        ctx.out.line(status_line(execution))
    for step in execution.steps or []:
        if steps.get(step.name) != step.state.value:
            ctx.out.line(_step_line(step))
    if execution.status.terminal:
        _print_outcome(ctx, execution)


def print_log_entry(ctx: Context, entry: LogEntry) -> None:
    """`<LEVEL>: [<timestamp>] <content>`."""
    from hpcwaas.cli.output import LEVEL_COLORS, rfc3339

    out = ctx.out
    level = out.paint(entry.level, LEVEL_COLORS.get(entry.level.upper(), ""))
    out.line(level, f": [{rfc3339(entry.timestamp)}] {entry.content}")


def stream_logs(ctx: Context, execution_id: str, start: int, levels: int, follow: bool) -> None:
    """Print entries from `start`; with `follow`, until the execution ends and none remain.

    In json mode each answer that brings entries (and the first, even empty) is printed as
    the API's `{"logs", "total_results", "from"}` object, as the original printed its one.
    """
    try:
        _stream_logs(ctx, execution_id, start, levels, follow)
    except KeyboardInterrupt:
        if follow:
            from hpcwaas.cli.progress import interrupted_note

            ctx.out.note(interrupted_note(execution_id, "logs"))
        raise


def _stream_logs(ctx: Context, execution_id: str, start: int, levels: int, follow: bool) -> None:
    client = ctx.client()
    position = start
    wait = LOGS_LONG_POLL if follow else 0.0
    draining = False
    first = True
    while True:
        page = retrying(
            ctx, partial(client.logs, execution_id, position, LOGS_PAGE_SIZE, wait, levels)
        )
        if not ctx.out.json:
            for entry in page.logs:
                print_log_entry(ctx, entry)
        elif page.logs or first:
            ctx.out.document(page.model_dump(mode="json", exclude_none=True))
        first = False
        # The server's `from` is an offset into the level-filtered entries: advance by what came.
        position += len(page.logs)
        caught_up = not page.logs or position >= page.total_results
        if not caught_up:
            continue
        if not follow or draining:
            return
        if retrying(ctx, partial(client.get_execution, execution_id)).status.terminal:
            # Entries written just before the final status may not have been served yet.
            draining, wait = True, 0.0


def run_status(ctx: Context) -> int:
    """`executions status <id> [-f]`."""
    args = ctx.args
    if args.follow:
        return follow_status(ctx, args.execution_id)
    print_status(ctx, ctx.client().get_execution(args.execution_id))
    return 0


def run_logs(ctx: Context) -> int:
    """`executions logs <id> [-f] [-d] [--from N]`."""
    args = ctx.args
    levels = DEBUG_LEVELS if args.debug else DEFAULT_LEVELS
    stream_logs(ctx, args.execution_id, args.from_index, levels, args.follow)
    return 0


def run_cancel(ctx: Context) -> int:
    """`executions cancel <id>...`: one line per ID, a summary, exit 1 if any failed."""

    def cancel(execution_id: str) -> str:
        ctx.client().cancel(execution_id)
        return f'Cancelled execution "{execution_id}"'

    return _each_execution(
        ctx,
        cancel,
        key="cancelled",
        failure=lambda execution_id: f'Failed to cancel execution "{execution_id}"',
        done=lambda n: f"Successfully cancelled {n} executions...",
        failed=lambda n, total: f"Failed to cancel {n} of {total} executions.",
    )


def run_purge(ctx: Context) -> int:
    """`executions purge <id>...`: one line per ID, a summary, exit 1 if any failed."""

    def purge(execution_id: str) -> str:
        execution = ctx.client().remove_execution_data(execution_id)
        kinds = ", ".join(k.replace("_", " ") for k in execution.data_removed or {}) or "nothing"
        return f'Removed the data of execution "{execution_id}" ({kinds})'

    return _each_execution(
        ctx,
        purge,
        key="purged",
        failure=lambda execution_id: f'Failed to remove the data of execution "{execution_id}"',
        done=lambda n: f"Removed the data of {n} executions.",
        failed=lambda n, total: f"Failed to remove the data of {n} of {total} executions.",
    )


def _each_execution(
    ctx: Context,
    act: Callable[[str], str],
    *,
    key: str,
    failure: Callable[[str], str],
    done: Callable[[int], str],
    failed: Callable[[int, int], str],
) -> int:
    """Run ``act`` on each ID given: its line or the error, a summary, exit 1 if any failed."""
    from hpcwaas.client.errors import HpcwaasError

    out = ctx.out
    succeeded: list[str] = []
    errors: list[dict[str, Any]] = []
    for execution_id in ctx.args.execution_ids:
        try:
            line = act(execution_id)
        except HpcwaasError as exc:
            errors.append({"id": execution_id, "error": str(exc)})
            out.note(f"{failure(execution_id)}: {exc}")
            continue
        succeeded.append(execution_id)
        out.line(line)
    if out.json:
        out.document({key: succeeded, "failed": errors})
    if succeeded:
        out.line(done(len(succeeded)))
    if errors:
        out.note(failed(len(errors), len(ctx.args.execution_ids)))
        return 1
    return 0


def run_list(ctx: Context) -> int:
    """`executions list [--limit N] [--all]`: every page unless limited."""
    from hpcwaas.cli.output import rfc3339

    client = ctx.client()
    limit: int | None = ctx.args.limit
    all_users: bool = ctx.args.all_users
    executions: list[ExecutionSummary] = []
    cursor: str | None = None
    while True:
        page = client.list_executions(
            limit=limit and limit - len(executions), cursor=cursor, all_users=all_users
        )
        executions.extend(page.executions)
        cursor = page.next_cursor
        if not cursor or (limit is not None and len(executions) >= limit):
            break
    executions = executions[:limit] if limit is not None else executions
    if ctx.out.json:
        ctx.out.document([e.model_dump(mode="json", exclude_none=True) for e in executions])
        return 0
    if not executions:
        ctx.out.line("No executions found.")
        return 0
    headers = ["Execution ID", "Workflow ID", "Status", "Created", "Ended"]
    rows = [
        [e.id, e.workflow_id, e.status.value, rfc3339(e.created_at), _maybe(e.ended_at)]
        for e in executions
    ]
    if all_users:
        headers.append("Owner")
        for row, execution in zip(rows, executions, strict=True):
            row.append(execution.owner or "-")
    ctx.out.table(headers, rows, (0, 1, 5) if all_users else (0, 1))
    return 0


def _maybe(moment: Any) -> str:
    from hpcwaas.cli.output import rfc3339

    return rfc3339(moment) if moment is not None else "-"


def add_follow_args(parser: argparse.ArgumentParser) -> None:
    """The follow flags of `workflows trigger` (defined here, next to the loops they run)."""
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="follow the status until the execution ends; exit 1 if FAILED or CANCELLED",
    )
    parser.add_argument(
        "-l",
        "--logs",
        action="store_true",
        help="follow the logs until the execution ends, then show its final status",
    )
