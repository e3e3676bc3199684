"""`waas executions outputs <id> [--download DIR]`: everything an execution gives back.

"Outputs" means one thing, here as in the portal's downloads: the workflow's `outputs:`
(small text files, shown by `executions status` too), then the files its stage_out steps
stored. The text ones download as `<name>.txt` (`.json` for a value that is not text).
"""

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


NONE = "This execution has no outputs."


class TextOutput:
    """One of the workflow's `outputs:`, as a file to list and download."""

    def __init__(self, name: str, value: Any) -> None:
        import hashlib
        import json

        text = isinstance(value, str)
        self.name = name
        self.data = (value if text else json.dumps(value, indent=2)).encode("utf-8")
        self.file_name = f"{name}{'.txt' if text else '.json'}"
        self.media_type = "text/plain" if text else "application/json"
        self.sha256 = hashlib.sha256(self.data).hexdigest()

    def listed(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": len(self.data),
            "sha256": self.sha256,
            "media_type": self.media_type,
            "file_name": self.file_name,
        }


def run(ctx: Context) -> int:
    """List the outputs (a table, or JSON); with --download, save them and print the paths."""
    client = ctx.client()
    execution_id: str = ctx.args.execution_id
    execution = client.get_execution(execution_id)
    texts = [TextOutput(name, value) for name, value in (execution.outputs or {}).items()]
    listing = client.list_outputs(execution_id).outputs
    directory: Path | None = ctx.args.download
    if directory is None:
        if ctx.out.json:
            documents = [t.listed() for t in texts]
            ctx.out.document(documents + [o.model_dump(mode="json") for o in listing])
        elif not texts and not listing:
            ctx.out.line(NONE)
        else:
            rows = [[t.name, human_size(len(t.data)), t.sha256] for t in texts]
            rows += [[o.name, human_size(o.size), o.sha256] for o in listing]
            ctx.out.table(["Name", "Size", "SHA-256"], rows, (0, 2))
        return 0
    saved: list[dict[str, Any]] = []
    for text in texts:
        saved.append(_save_text(text, directory))
        if not ctx.out.json:
            ctx.out.line(saved[-1]["path"])
    for output in listing:
        done = client.download_output(execution_id, output.name, directory, output.sha256)
        saved.append(
            {"name": output.name, "path": str(done.path), "size": done.size, "sha256": done.sha256}
        )
        if not ctx.out.json:
            ctx.out.line(str(done.path))
    if ctx.out.json:
        ctx.out.document(saved)
    elif not saved:
        ctx.out.note(NONE)
    return 0


def _save_text(text: TextOutput, directory: Path) -> dict[str, Any]:
    from hpcwaas.client.downloads import OutputFile

    target = OutputFile(text.name, directory, text.file_name)
    target.write(text.data)
    done = target.finish(text.sha256)
    return {"name": text.name, "path": str(done.path), "size": done.size, "sha256": done.sha256}
