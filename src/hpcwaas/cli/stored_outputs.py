"""`waas executions outputs <id> [--download DIR]`: the files stage_out steps stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpcwaas.cli.parsing import add_command

if TYPE_CHECKING:
    from pathlib import Path

    from hpcwaas.cli.context import Context


def _directory(text: str) -> Path:
    # pathlib loads only for a command that downloads: every `waas` start parses this parser.
    from pathlib import Path

    return Path(text)


def register(sub: Any) -> None:
    """Add `outputs` under `executions`."""
    outputs = add_command(
        sub, "outputs", ("output", "out", "o"), "List or download an execution's files", run
    )
    outputs.add_argument("execution_id", metavar="execution-id")
    outputs.add_argument(
        "--download",
        metavar="DIR",
        type=_directory,
        help="download every file into DIR, checking its SHA-256, and print the paths",
    )


def human_size(size: int) -> str:
    """Sizes for the table: bytes below 1 KiB, else one decimal and a binary unit."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def run(ctx: Context) -> int:
    """List the outputs (a table, or JSON); with --download, save them and print the paths."""
    client = ctx.client()
    execution_id: str = ctx.args.execution_id
    listing = client.list_outputs(execution_id).outputs
    directory: Path | None = ctx.args.download
    if directory is None:
        if ctx.out.json:
            ctx.out.document([o.model_dump(mode="json") for o in listing])
        elif not listing:
            ctx.out.line("No outputs stored for this execution.")
        else:
            rows = [[o.name, human_size(o.size), o.sha256] for o in listing]
            ctx.out.table(["Name", "Size", "SHA-256"], rows, (0, 2))
        return 0
    saved: list[dict[str, Any]] = []
    for output in listing:
        done = client.download_output(execution_id, output.name, directory, output.sha256)
        saved.append(
            {"name": output.name, "path": str(done.path), "size": done.size, "sha256": done.sha256}
        )
        if not ctx.out.json:
            ctx.out.line(str(done.path))
    if ctx.out.json:
        ctx.out.document(saved)
    elif not listing:
        ctx.out.note("No outputs stored for this execution.")
    return 0
