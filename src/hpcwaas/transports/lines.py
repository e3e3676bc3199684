"""Output of commands as lines: cutting byte streams, and pumping them to callbacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from hpcwaas.transports.base import LineCallback

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024


def _decode(data: bytes | bytearray) -> str:
    text = bytes(data).decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\r") else text


class LineSplitter:
    """Cuts a byte stream into decoded lines of at most ``limit`` bytes each."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """The complete lines ``data`` ends (an over-long line comes out in pieces)."""
        self._buffer += data
        lines: list[str] = []
        while True:
            newline = self._buffer.find(b"\n")
            if 0 <= newline <= self._limit:
                lines.append(_decode(self._buffer[:newline]))
                del self._buffer[: newline + 1]
            elif len(self._buffer) > self._limit:
                cut = self._cut()
                lines.append(_decode(self._buffer[:cut]))
                del self._buffer[:cut]
            else:
                return lines

    @property
    def pending(self) -> int:
        """Bytes fed but not yet returned in a line (the start of an unfinished line)."""
        return len(self._buffer)

    def close(self) -> list[str]:
        """What is left after the stream ended: a last line without a newline, if any."""
        rest, self._buffer = self._buffer, bytearray()
        return [_decode(rest)] if rest else []

    def _cut(self) -> int:
        # Do not split a UTF-8 character: back off over continuation bytes (at most 3).
        cut = self._limit
        while cut > self._limit - 3 and (self._buffer[cut] & 0xC0) == 0x80:
            cut -= 1
        return cut if (self._buffer[cut] & 0xC0) != 0x80 else self._limit


class ByteReader(Protocol):
    async def read(self, n: int) -> bytes: ...


class OutputPump:
    """Reads one stream and hands its lines to a callback, noting when it last made progress.

    ``intercept`` may consume a line (True) before the callback sees it; ``read_errors``
    end the stream quietly, keeping what came (a dropped connection).
    """

    def __init__(
        self,
        stream: ByteReader,
        callback: LineCallback,
        *,
        intercept: Callable[[str], bool] | None = None,
        read_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._stream = stream
        self._callback = callback
        self._intercept = intercept
        self._read_errors = read_errors
        self._busy = False
        self.last_progress = asyncio.get_running_loop().time()
        self.task = asyncio.create_task(self._run())

    def idle_for(self, now: float) -> float:
        return 0.0 if self._busy else now - self.last_progress

    async def _run(self) -> None:
        splitter = LineSplitter()
        try:
            while data := await self._stream.read(READ_CHUNK):
                await self._deliver(splitter.feed(data))
        except self._read_errors as exc:
            log.info("output stream ended early: %s", type(exc).__name__)
        await self._deliver(splitter.close())

    async def _deliver(self, lines: list[str]) -> None:
        self._busy = True
        try:
            for line in lines:
                if self._intercept is not None and self._intercept(line):
                    continue
                try:
                    await self._callback(line)
                except Exception:  # keep draining: a stuck pipe would block the command
                    log.exception("output callback failed; line dropped")
        finally:
            self._busy = False
            self.last_progress = asyncio.get_running_loop().time()
