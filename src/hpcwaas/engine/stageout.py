"""stage_out: a file or directory of the execution's place, copied into the result store.

A file is copied as it is; a directory becomes one ``<output>.tar.gz`` (symlinks and special
files inside are left out, and the log says so). Either way the copy is counted and hashed
on the way into the store and recorded in ``execution_outputs``.
"""

from __future__ import annotations

import mimetypes
import posixpath
import time
from collections.abc import Callable
from datetime import UTC, datetime

from hpcwaas.api.states import LogLevel
from hpcwaas.catalog.kinds.transfers import DATA_CATALOGUE_KEYS, StageOutPlan, TransferError
from hpcwaas.engine.archive import TarGzStream
from hpcwaas.engine.placefiles import PlaceFiles
from hpcwaas.engine.resultstore import ResultStore, ResultWriter
from hpcwaas.engine.stagein import human_size
from hpcwaas.store import outputs as output_store
from hpcwaas.store.database import Database
from hpcwaas.store.outputs import StoredOutput
from hpcwaas.transports.base import FileEntry

Emit = Callable[[LogLevel, str], None]
ARCHIVE_MEDIA_TYPE = "application/gzip"


async def stage_out(
    plan: StageOutPlan,
    files: PlaceFiles,
    store: ResultStore,
    db: Database,
    execution_id: str,
    emit: Emit,
) -> StoredOutput:
    """Copy ``plan.source_path`` into the store and record it; TransferError says why not."""
    source = files.resolve(plan.source_path)
    entry = await files.entry(source)
    if entry is None:
        raise TransferError(f"{plan.source_path} does not exist")
    if entry.kind not in ("file", "dir"):
        raise TransferError(f"{plan.source_path} is neither a file nor a directory")
    directory = entry.kind == "dir"
    file_name = plan.file_name(directory)
    started = time.monotonic()
    writer = store.writer(execution_id, plan.output, file_name, plan.max_bytes)
    try:
        if directory:
            await _archive(plan, files, source, entry, writer, emit)
        else:
            await files.read(source, writer.write)
        stored = writer.commit()
    except BaseException:
        writer.discard()
        raise
    media_type = (
        ARCHIVE_MEDIA_TYPE
        if directory
        else mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    )
    output = StoredOutput(
        execution_id=execution_id,
        name=plan.output,
        size=stored.size,
        sha256=stored.sha256,
        media_type=media_type,
        metadata=plan.metadata,
        path=stored.relative,
        created_at=datetime.now(UTC),
    )
    async with db.write() as conn:
        await output_store.record_output(conn, output)
    seconds = time.monotonic() - started
    what = "directory (as tar.gz)" if directory else "file"
    emit(
        LogLevel.INFO,
        f"Stored output {plan.output}: {what} {plan.source_path}, {human_size(stored.size)} "
        f"({stored.size} bytes) in {seconds:.1f} s, SHA-256 {stored.sha256}",
    )
    catalogue = [key for key in DATA_CATALOGUE_KEYS if key in plan.metadata]
    if catalogue:
        emit(
            LogLevel.INFO,
            f"Output {plan.output}: metadata {', '.join(catalogue)} is for a data catalogue; "
            "none is configured on this server, so it is kept with the output only",
        )
    return output


async def _archive(
    plan: StageOutPlan,
    files: PlaceFiles,
    source: str,
    root: FileEntry,
    writer: ResultWriter,
    emit: Emit,
) -> None:
    top = posixpath.basename(source.rstrip("/")) or plan.output
    archive = TarGzStream(writer.write)
    await archive.directory(top, root.mode, root.mtime)
    skipped: list[FileEntry] = []
    for entry in await files.walk(source):
        name = f"{top}/{entry.relative}"
        if entry.kind == "dir":
            await archive.directory(name, entry.mode, entry.mtime)
        elif entry.kind == "file":
            await archive.start_file(name, entry.size, entry.mode, entry.mtime)
            await files.read(posixpath.join(source, entry.relative), archive.data)
            await archive.end_file()
        else:
            skipped.append(entry)
    await archive.close()
    if skipped:
        names = ", ".join(e.relative for e in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        emit(
            LogLevel.WARN,
            f"Output {plan.output}: {len(skipped)} symlink(s) or special file(s) left out "
            f"of the archive: {names}",
        )
