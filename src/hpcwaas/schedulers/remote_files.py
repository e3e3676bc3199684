"""Reading many small remote files in one command: the wrapper's exit files and log chunks.

One command per poll, whatever the number of files, because every command is an SSH round
trip. Each file's record starts with a marker line no file content can produce: exit codes
are reduced to digits, and file bytes travel as base64 (76-character lines), so the output is
plain ASCII text whatever the files hold (binary, or a UTF-8 character cut at the chunk's end),
and a transport that reads lines of text carries it unchanged. The output ends with an end
marker, so a truncated answer is detected instead of being taken for a short file.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Iterable

from hpcwaas.schedulers.errors import UnexpectedOutput, excerpt

EXIT_MARK = "#hpcwaas-exit"
CHUNK_MARK = "#hpcwaas-chunk"
END_MARK = "#hpcwaas-end"
_END = f"printf '%s\\n' {shlex.quote(END_MARK)}"
_EXIT = shlex.quote(EXIT_MARK)
_CHUNK = shlex.quote(CHUNK_MARK)


def _checked_path(path: str) -> str:
    if not path or "\n" in path or "\r" in path or "\0" in path:
        raise ValueError(f"{path!r} cannot be read by a remote file command")
    return path


def exit_file_command(paths: Iterable[str]) -> str:
    """Print each exit file's code (or ``none`` when the file does not exist yet)."""
    parts: list[str] = []
    for path in paths:
        quoted = shlex.quote(_checked_path(path))
        parts.append(
            f"c=$(head -c 16 -- {quoted} 2>/dev/null | tr -cd 0-9); "
            f"printf '%s %s %s\\n' {_EXIT} \"${{c:-none}}\" {quoted}"
        )
    parts.append(_END)
    return "; ".join(parts)


def exit_wait_command(paths: Iterable[str], seconds: int, step: float = 0.05) -> str:
    """Wait up to ``seconds`` for one of the exit files to appear, then print each one's code
    as ``exit_file_command`` does: the end of a job seen as soon as its wrapper writes it."""
    listed = list(paths)
    found = " || ".join(f"[ -e {shlex.quote(_checked_path(path))} ]" for path in listed)
    wait = (
        f"end=$((SECONDS+{int(seconds)})); "
        f"until {found} || [ $SECONDS -ge $end ]; do sleep {step:g}; done"
    )
    return f"{wait}; {exit_file_command(listed)}"


def parse_exit_files(exit_code: int, stdout: str | bytes, stderr: str | bytes) -> dict[str, int]:
    """Exit codes by path, for the exit files that exist."""
    lines = _lines(exit_code, stdout, stderr, "exit files")
    codes: dict[str, int] = {}
    for line in lines:
        if not line.startswith(EXIT_MARK + " "):
            continue
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1].isdigit():
            codes[parts[2]] = int(parts[1])
    return codes


def read_chunks_command(files: Iterable[tuple[str, int]], limit_bytes: int) -> str:
    """Print at most ``limit_bytes`` of each file from its byte offset (0: from the start)."""
    if limit_bytes < 1:
        raise ValueError("limit_bytes must be positive")
    parts: list[str] = []
    for path, offset in files:
        if offset < 0:
            raise ValueError(f"negative offset {offset} for {path!r}")
        quoted = shlex.quote(_checked_path(path))
        parts.append(
            f"if [ -f {quoted} ] && [ -r {quoted} ]; then "
            f"printf '%s %s %s\\n' {_CHUNK} \"$(wc -c < {quoted} | tr -d ' ')\" {quoted}; "
            f"tail -c +{int(offset) + 1} -- {quoted} | head -c {int(limit_bytes)} | base64; "
            f"else printf '%s missing %s\\n' {_CHUNK} {quoted}; fi"
        )
    parts.append(_END)
    return "; ".join(parts)


def parse_read_chunks(exit_code: int, stdout: str | bytes, stderr: str | bytes) -> dict[str, bytes]:
    """The bytes read from each existing file (empty when nothing new); missing files left out.

    A chunk of exactly ``limit_bytes`` bytes means the file may hold more: read again.
    """
    chunks: dict[str, bytes] = {}
    path: str | None = None
    encoded: list[str] = []
    for line in [*_lines(exit_code, stdout, stderr, "file chunks"), CHUNK_MARK + " end -"]:
        if not line.startswith(CHUNK_MARK + " "):
            if path is None and line.strip():
                raise UnexpectedOutput(f"file chunk without a header: {excerpt(line)}")
            encoded.append(line.strip())
            continue
        if path is not None:
            try:
                chunks[path] = base64.b64decode("".join(encoded), validate=True)
            except (binascii.Error, ValueError):
                raise UnexpectedOutput(f"the chunk of {path} is not valid base64") from None
        parts = line.split(" ", 2)
        path = parts[2] if len(parts) == 3 and parts[1] not in ("missing", "end") else None
        encoded = []
    return chunks


def _lines(exit_code: int, stdout: str | bytes, stderr: str | bytes, what: str) -> list[str]:
    text = stdout.decode("utf-8", "surrogateescape") if isinstance(stdout, bytes) else stdout
    errors = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = text.splitlines()
    if exit_code != 0 or END_MARK not in lines:
        raise UnexpectedOutput(
            f"reading {what} failed (exit code {exit_code}"
            + (", output cut short" if END_MARK not in lines else "")
            + f"): {excerpt(errors)}"
        )
    return lines[: lines.index(END_MARK)]
