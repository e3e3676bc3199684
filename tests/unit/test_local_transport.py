"""The local transport: real subprocesses, each in its own process group."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from hpcwaas.transports.lines import MAX_LINE_BYTES, LineSplitter
from hpcwaas.transports.local import LocalTransport


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


class Collector:
    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    async def __call__(self, line: str) -> None:
        self.lines.append((time.monotonic(), line))

    @property
    def text(self) -> list[str]:
        return [line for _, line in self.lines]


async def _run(tmp_path: Path, command: str, **kwargs: object):
    out, err = Collector(), Collector()
    started = await LocalTransport().start(
        command,
        cwd=tmp_path,
        env=kwargs.pop("env", {}),  # type: ignore[arg-type]
        on_stdout=out,
        on_stderr=err,
        **kwargs,  # type: ignore[arg-type]
    )
    return await started.wait(), out, err


async def _wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text().strip()):
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


async def test_exit_code_and_both_streams_are_reported(tmp_path: Path) -> None:
    result, out, err = await _run(tmp_path, "echo out; echo err >&2; exit 3")
    assert result.exit_code == 3
    assert not result.killed and not result.timed_out
    assert out.text == ["out"]
    assert err.text == ["err"]


async def test_lines_reach_the_callback_while_the_command_still_runs(tmp_path: Path) -> None:
    start = time.monotonic()
    result, out, _ = await _run(tmp_path, "echo first; sleep 1; echo second")
    assert result.exit_code == 0
    (first_at, first), (second_at, second) = out.lines
    assert (first, second) == ("first", "second")
    assert first_at - start < 0.6
    assert second_at - first_at > 0.8


async def test_last_line_without_newline_and_crlf_are_delivered_cleanly(tmp_path: Path) -> None:
    _, out, _ = await _run(tmp_path, r"printf 'a\r\nb'")
    assert out.text == ["a", "b"]


async def test_over_long_line_is_split_into_capped_pieces(tmp_path: Path) -> None:
    _, out, _ = await _run(tmp_path, "head -c 200000 /dev/zero | tr '\\0' a; echo; echo end")
    lengths = [len(line) for line in out.text]
    assert lengths == [MAX_LINE_BYTES] * 3 + [200000 - 3 * MAX_LINE_BYTES, 3]


async def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    _, out, _ = await _run(tmp_path, r"printf '\xff\xfeok\n'; echo 'é'")
    assert out.text == ["\ufffd\ufffdok", "é"]


def test_splitter_never_cuts_a_utf8_character_in_two() -> None:
    splitter = LineSplitter(limit=4)
    lines = splitter.feed("abcé".encode() + b"xyz\n")  # é is 2 bytes, across the 4-byte cut
    assert lines == ["abc", "éxy", "z"]
    assert splitter.close() == []


async def test_command_sees_a_minimal_environment_not_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPCWAAS_TEST_SECRET", "s3cret")
    _, out, _ = await _run(tmp_path, "env | sort", env={"STEP_VALUE": "x"})
    names = {line.split("=", 1)[0] for line in out.text}
    assert "HPCWAAS_TEST_SECRET" not in names
    assert {"PATH", "HOME", "LANG", "TMPDIR", "STEP_VALUE"} <= names
    assert "LANG=C.UTF-8" in out.text
    assert not any("s3cret" in line for line in out.text)


async def test_command_runs_in_the_given_directory(tmp_path: Path) -> None:
    _, out, _ = await _run(tmp_path, "pwd")
    assert Path(out.text[0]).resolve() == tmp_path.resolve()


async def test_kill_terminates_the_whole_process_group(tmp_path: Path) -> None:
    out = Collector()
    command = await LocalTransport().start(
        "sleep 300 & echo $! > bg.pid; wait",
        cwd=tmp_path,
        env={},
        on_stdout=out,
        on_stderr=out,
    )
    background = int(await _wait_for_file(tmp_path / "bg.pid"))
    assert _running(background)
    await command.kill(grace=2.0)
    result = await command.wait()
    assert result.killed
    assert result.signal == signal.SIGTERM and result.exit_code == 128 + signal.SIGTERM
    assert not _running(background)
    assert not _running(command.pid)


async def test_kill_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    out = Collector()
    # An ignored SIGTERM is inherited, so neither the shell nor its child stop on it.
    command = await LocalTransport().start(
        "trap '' TERM; sleep 300 & echo $! > bg.pid; wait",
        cwd=tmp_path,
        env={},
        on_stdout=out,
        on_stderr=out,
    )
    background = int(await _wait_for_file(tmp_path / "bg.pid"))
    start = time.monotonic()
    await command.kill(grace=0.5)
    result = await command.wait()
    assert 0.4 < time.monotonic() - start < 3.0
    assert result.killed and result.signal == signal.SIGKILL
    assert not _running(background)
    with pytest.raises(ProcessLookupError):
        os.kill(command.pid, 0)


async def test_timeout_kills_the_command_and_says_so(tmp_path: Path) -> None:
    start = time.monotonic()
    result, _, _ = await _run(tmp_path, "sleep 300", timeout=0.3, grace=1.0)
    assert time.monotonic() - start < 2.0
    assert result.timed_out and result.killed


async def test_processes_left_behind_end_with_the_command(tmp_path: Path) -> None:
    start = time.monotonic()
    # The background sleep keeps stdout open: without the group kill, reading would never end.
    result, _, _ = await _run(tmp_path, "sleep 300 & echo $! > bg.pid; exit 0", grace=1.0)
    assert time.monotonic() - start < 3.0
    assert result.exit_code == 0 and not result.killed
    assert not _running(int((tmp_path / "bg.pid").read_text()))


async def test_a_process_escaping_the_group_does_not_block_the_command_forever(
    tmp_path: Path,
) -> None:
    start = time.monotonic()
    result, out, _ = await _run(
        tmp_path, "setsid sleep 30 & echo $! > escaped.pid; echo done", grace=0.5
    )
    escaped = int((tmp_path / "escaped.pid").read_text())
    try:
        assert time.monotonic() - start < 5.0
        assert result.exit_code == 0
        assert out.text == ["done"]
    finally:
        os.kill(escaped, signal.SIGKILL)
