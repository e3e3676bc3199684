"""Workflow outputs: files that steps leave in the execution's working directory, read as text."""

from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutputValue:
    """An output's text (None if it could not be read) and a warning for the logs, if any."""

    value: str | None
    warning: str | None = None


def read_output(work_dir: Path, name: str, relative: str, max_bytes: int) -> OutputValue:
    """Read ``relative`` under ``work_dir`` as UTF-8 text of at most ``max_bytes`` bytes.

    Paths that resolve outside the working directory (``..``, absolute, symlinks) are refused.
    """
    base = work_dir.resolve()
    target = (base / relative).resolve()
    if target == base or not target.is_relative_to(base):
        return OutputValue(
            None, f"Output {name}: path {relative!r} is outside the working directory; ignored"
        )
    try:
        # O_NOFOLLOW: the path was checked resolved, a symlink swapped in since is not followed;
        # O_NONBLOCK: a FIFO left behind must not block the engine.
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return OutputValue(None, f"Output {name}: file {relative} not found; its value is null")
    except OSError as exc:
        return OutputValue(None, f"Output {name}: cannot read {relative}: {exc.strerror}")
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return OutputValue(None, f"Output {name}: {relative} is not a regular file; ignored")
        data = file.read(max_bytes + 1)
    return decode_output(name, relative, data, max_bytes)


def decode_output(name: str, relative: str, data: bytes, max_bytes: int) -> OutputValue:
    """An output's bytes (``max_bytes`` + 1 at most, to see a cut) as text."""
    if len(data) <= max_bytes:
        return OutputValue(data.decode("utf-8", errors="replace"))
    # Incremental decoding holds back a character split by the cut instead of mangling it.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data[:max_bytes])
    note = f"[output truncated at {max_bytes} bytes]"
    return OutputValue(
        f"{text}\n{note}",
        f"Output {name}: {relative} is larger than {max_bytes} bytes "
        "(limits.max_output_bytes); truncated",
    )
