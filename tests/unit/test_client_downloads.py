"""Downloads of stored outputs by the SDK: kept only when their SHA-256 is the announced one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from hpcwaas.client import AsyncClient, Client, DownloadFailed

BODY = b"result bytes\n" * 1000
DIGEST = hashlib.sha256(BODY).hexdigest()
PATH = "/executions/e1/outputs/report"


def _server(etag: str, name: str = "report.csv") -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == PATH
        return httpx.Response(
            200,
            content=BODY,
            headers={
                "etag": f'"{etag}"',
                "content-disposition": f'attachment; filename="{name}"',
            },
        )

    return httpx.MockTransport(answer)


def test_a_download_is_saved_under_the_suggested_name_with_its_digest(tmp_path: Path) -> None:
    client = Client("https://api.example", token="t", transport=_server(DIGEST))  # type: ignore[arg-type]
    done = client.download_output("e1", "report", tmp_path)
    assert done.path == tmp_path / "report.csv"
    assert done.path.read_bytes() == BODY and done.sha256 == DIGEST and done.size == len(BODY)


def test_a_download_whose_digest_differs_is_not_kept(tmp_path: Path) -> None:
    client = Client("https://api.example", token="t", transport=_server("1" * 64))  # type: ignore[arg-type]
    with pytest.raises(DownloadFailed, match=f"SHA-256 is {DIGEST}, the server announced 1111"):
        client.download_output("e1", "report", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_suggested_name_cannot_leave_the_directory(tmp_path: Path) -> None:
    transport = _server(DIGEST, name="../../etc/evil")
    client = Client("https://api.example", token="t", transport=transport)  # type: ignore[arg-type]
    done = client.download_output("e1", "report", tmp_path / "d")
    assert done.path == tmp_path / "d" / "evil"


async def test_the_async_client_checks_the_digest_it_is_given(tmp_path: Path) -> None:
    transport = _server(DIGEST)
    async with AsyncClient("https://api.example", token="t", transport=transport) as client:  # type: ignore[arg-type]
        with pytest.raises(DownloadFailed):
            await client.download_output("e1", "report", tmp_path, sha256="2" * 64)
        done = await client.download_output("e1", "report", tmp_path)
    assert done.path.read_bytes() == BODY
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
