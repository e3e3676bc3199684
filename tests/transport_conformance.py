"""What every transport does the same way, one check per operation of the interface.

Each check takes the transport and a directory it may fill (absolute on this host,
relative to the login's home over SSH); tests/unit/test_transport_conformance.py runs them
against the local transport, tests/integration/test_cluster_transport_conformance.py
against the SSH transport on the loopback cluster.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hpcwaas.transports.base import CHUNK_BYTES, Transport
from hpcwaas.transports.errors import FileMissing, TransportError, TransportUnavailable

Check = Callable[[Transport, str], Awaitable[None]]


class Lines:
    """Collects output lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


async def read_all(transport: Transport, path: str) -> bytes:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    await transport.read_file(path, sink)
    return b"".join(chunks)


async def run_captures_output_and_exit_code(transport: Transport, base: str) -> None:
    # octal escapes: the login's shell may be a POSIX sh, whose printf knows no \x
    result = await transport.run("echo out; printf 'caf\\303\\251 \\377'; echo oops >&2; exit 3")
    assert (result.exit_code, result.stderr) == (3, "oops\n")
    assert result.stdout == "out\ncafé \ufffd"
    assert result.stdout_bytes == b"out\ncaf\xc3\xa9 \xff"


async def run_feeds_stdin(transport: Transport, base: str) -> None:
    result = await transport.run("tr a-z A-Z", stdin="hello\n")
    assert (result.exit_code, result.stdout) == (0, "HELLO\n")


async def run_reports_a_signal_as_128_plus_its_number(transport: Transport, base: str) -> None:
    result = await transport.run("kill -TERM $$")
    assert result.exit_code == 128 + 15


async def run_past_its_timeout_is_unavailable(transport: Transport, base: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransportUnavailable) as caught:
        await transport.run("sleep 20", timeout=0.5)
    assert caught.value.retryable
    assert isinstance(caught.value, TransportError)
    assert time.monotonic() - started < 10


async def start_streams_lines_in_cwd_with_env(transport: Transport, base: str) -> None:
    await transport.put_file(f"{base}/work/marker", b"here\n")
    out, err = Lines(), Lines()
    command = await transport.start(
        'cat marker; echo "$GREETING"; echo warn >&2; exit 4',
        cwd=f"{base}/work",
        env={"GREETING": "it's $HOME"},
        on_stdout=out,
        on_stderr=err,
    )
    result = await command.wait()
    assert (result.exit_code, result.killed, result.timed_out) == (4, False, False)
    assert (out.lines, err.lines) == (["here", "it's $HOME"], ["warn"])


async def start_then_kill_ends_the_command(transport: Transport, base: str) -> None:
    await transport.put_file(f"{base}/kill/.keep", b"")
    command = await transport.start(
        "echo started; sleep 30",
        cwd=f"{base}/kill",
        env={},
        on_stdout=Lines(),
        on_stderr=Lines(),
    )
    started = time.monotonic()
    await command.kill(grace=1.0)
    result = await command.wait()
    assert result.killed and result.exit_code != 0
    assert time.monotonic() - started < 15


async def put_file_creates_parents_with_the_mode(transport: Transport, base: str) -> None:
    path = f"{base}/put/deep/job.sh"
    await transport.put_file(path, b"#!/bin/bash\necho hi\n", mode=0o750)
    entry = await transport.stat(path)
    assert entry is not None and (entry.kind, entry.size) == ("file", 20)
    assert entry.mode & 0o777 == 0o750
    await transport.put_file(path, b"replaced\n")
    entry = await transport.stat(path)
    assert entry is not None and entry.mode & 0o777 == 0o600
    assert await read_all(transport, path) == b"replaced\n"


async def write_file_is_all_or_nothing(transport: Transport, base: str) -> None:
    async def chunks(fail: bool) -> AsyncIterator[bytes]:
        yield b"a" * 1000
        if fail:
            raise ValueError("the source broke")
        yield b"b" * 1000

    await transport.write_file(f"{base}/write/whole", chunks(False))
    assert await read_all(transport, f"{base}/write/whole") == b"a" * 1000 + b"b" * 1000
    with pytest.raises(ValueError, match="the source broke"):
        await transport.write_file(f"{base}/write/broken", chunks(True))
    names = [e.relative for e in await transport.walk(f"{base}/write")]
    assert names == ["whole"]  # neither the broken file nor its partial one


async def exists_sees_files_directories_and_dangling_links(transport: Transport, base: str) -> None:
    await transport.put_file(f"{base}/exists/file", b"x")
    await transport.run(f"ln -s nowhere {base}/exists/dangling")
    assert await transport.exists(f"{base}/exists/file")
    assert await transport.exists(f"{base}/exists")
    assert await transport.exists(f"{base}/exists/dangling")
    assert not await transport.exists(f"{base}/exists/none")


async def stat_follows_links_and_says_none_for_nothing(transport: Transport, base: str) -> None:
    await transport.put_file(f"{base}/stat/file", b"12345")
    await transport.run(f"ln -s file {base}/stat/link && ln -s nowhere {base}/stat/dangling")
    file, link = (
        await transport.stat(f"{base}/stat/file"),
        await transport.stat(f"{base}/stat/link"),
    )
    assert file is not None and (file.relative, file.kind, file.size) == ("", "file", 5)
    assert link is not None and (link.kind, link.size) == ("file", 5)
    directory = await transport.stat(f"{base}/stat")
    assert directory is not None and directory.kind == "dir"
    assert await transport.stat(f"{base}/stat/none") is None
    assert await transport.stat(f"{base}/stat/dangling") is None


async def walk_lists_parents_first_without_following_links(transport: Transport, base: str) -> None:
    root = f"{base}/walk"
    for path in ("a/x", "a/b/y", "c/z", "top"):
        await transport.put_file(f"{root}/{path}", path.encode())
    await transport.run(f"ln -s a {root}/link")
    entries = await transport.walk(root)
    kinds = {e.relative: e.kind for e in entries}
    assert kinds == {
        "a": "dir",
        "a/x": "file",
        "a/b": "dir",
        "a/b/y": "file",
        "c": "dir",
        "c/z": "file",
        "top": "file",
        "link": "symlink",
    }
    order = [e.relative for e in entries]
    for relative in order:
        parent = relative.rpartition("/")[0]
        assert not parent or order.index(parent) < order.index(relative), order
    sizes = {e.relative: e.size for e in entries if e.kind == "file"}
    assert sizes == {"a/x": 3, "a/b/y": 5, "c/z": 3, "top": 3}


async def read_file_streams_every_byte(transport: Transport, base: str) -> None:
    data = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)
    await transport.put_file(f"{base}/read/big", data)
    assert await read_all(transport, f"{base}/read/big") == data


async def read_file_of_nothing_is_file_missing(transport: Transport, base: str) -> None:
    with pytest.raises(FileMissing) as caught:
        await read_all(transport, f"{base}/read/none")
    assert not caught.value.retryable
    assert f"{base}/read/none" in str(caught.value)


CHECKS: list[Check] = [
    run_captures_output_and_exit_code,
    run_feeds_stdin,
    run_reports_a_signal_as_128_plus_its_number,
    run_past_its_timeout_is_unavailable,
    start_streams_lines_in_cwd_with_env,
    start_then_kill_ends_the_command,
    put_file_creates_parents_with_the_mode,
    write_file_is_all_or_nothing,
    exists_sees_files_directories_and_dangling_links,
    stat_follows_links_and_says_none_for_nothing,
    walk_lists_parents_first_without_following_links,
    read_file_streams_every_byte,
    read_file_of_nothing_is_file_missing,
]


def parametrized() -> pytest.MarkDecorator:
    """Parametrize a test's ``check`` with every check, named after it."""
    return pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
