"""stage_in and stage_out on the local environment: a real HTTP server, real files, the engine.

The same steps on a cluster (SFTP) are tested in tests/integration/test_cluster_data.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tests.engine_support import Harness, harness, make_workflow
from tests.http_files import HttpFiles

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.catalog.kinds.transfers import StageInPlan, TransferError
from hpcwaas.engine.placefiles import LocalFiles
from hpcwaas.engine.stagein import stage_in
from hpcwaas.settings import Limits, Settings
from hpcwaas.store import outputs as output_store
from hpcwaas.transports.local import LocalTransport

__all__ = ["harness"]  # a fixture of the engine tests, used here too

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", step_grace_seconds=2.0)


def _messages(records: list[Any]) -> str:
    return "\n".join(f"{r.level.label}: {r.content}" for r in records)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if ".partial" in p.name)


async def test_stage_in_transform_and_stage_out_store_the_result_with_its_digest(
    harness: Harness, http_files: HttpFiles, settings: Settings
) -> None:
    url = http_files.add("/data/input.bin", DATA)
    workflow = make_workflow(
        {
            "fetch": {
                "kind": "stage_in",
                "url": "{{ inputs.url }}",
                "target_path": "in/input.bin",
                "sha256": DIGEST,
            },
            "reverse": {
                "needs": ["fetch"],
                "run": "mkdir -p out && gzip -n < in/input.bin > out/r",
            },
            "keep": {
                "kind": "stage_out",
                "needs": ["reverse"],
                "source_path": "out/r",
                "output": "reversed",
                "metadata": {"mid": "x1", "register": True},
            },
        },
        inputs={"url": {"type": "string"}},
    )
    execution_id = await harness.trigger(workflow, {"url": url})
    record = await harness.finished(execution_id)
    log = _messages(await harness.logs(execution_id))
    assert record.status is ExecutionStatus.SUCCEEDED, log
    async with harness.db.read() as conn:
        (stored,) = await output_store.list_outputs(conn, execution_id)
    expected = (settings.work_dir / execution_id / "out" / "r").read_bytes()
    assert stored.name == "reversed"
    assert stored.size == len(expected)
    assert stored.sha256 == hashlib.sha256(expected).hexdigest()
    assert stored.metadata == {"mid": "x1", "register": True}
    assert (settings.results_root / stored.path).read_bytes() == expected
    assert f"Downloaded 293.0 KiB ({len(DATA)} bytes)" in log
    assert "SHA-256 verified" in log
    assert "metadata mid, register is for a data catalogue; none is configured" in log


async def test_a_directory_is_stored_as_a_tar_gz_of_its_files(
    harness: Harness, settings: Settings
) -> None:
    workflow = make_workflow(
        {
            "make": {
                "run": "mkdir -p results/sub && echo one > results/a.txt && "
                "head -c 100000 /dev/urandom > results/sub/b.bin && ln -s /etc/passwd results/l"
            },
            "keep": {"kind": "stage_out", "needs": ["make"], "source_path": "results"},
        }
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    log = _messages(await harness.logs(execution_id))
    assert record.status is ExecutionStatus.SUCCEEDED, log
    async with harness.db.read() as conn:
        stored = await output_store.get_output(conn, execution_id, "keep")
    assert stored is not None and stored.media_type == "application/gzip"
    archive = (settings.results_root / stored.path).read_bytes()
    assert stored.path.endswith("/keep.tar.gz")
    assert hashlib.sha256(archive).hexdigest() == stored.sha256
    work = settings.work_dir / execution_id / "results"
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = sorted(tar.getnames())
        b = tar.extractfile("results/sub/b.bin")
        assert b is not None and b.read() == (work / "sub" / "b.bin").read_bytes()
    assert names == ["results", "results/a.txt", "results/sub", "results/sub/b.bin"]
    assert "1 symlink(s) or special file(s) left out of the archive: l" in log


async def test_a_download_over_max_bytes_fails_the_step_and_leaves_no_file(
    harness: Harness, http_files: HttpFiles, settings: Settings
) -> None:
    url = http_files.add("/big", DATA)
    workflow = make_workflow(
        {"fetch": {"kind": "stage_in", "url": url, "target_path": "big", "max_bytes": 1000}}
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error is not None and "more than max_bytes (1000)" in record.error
    work = settings.work_dir / execution_id
    assert not (work / "big").exists() and _leftovers(work) == []


async def test_a_sha256_mismatch_fails_the_step_and_leaves_no_file(
    harness: Harness, http_files: HttpFiles, settings: Settings
) -> None:
    url = http_files.add("/data", DATA)
    workflow = make_workflow(
        {"fetch": {"kind": "stage_in", "url": url, "target_path": "d", "sha256": "0" * 64}}
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error is not None
    assert f"SHA-256 mismatch for {url}: expected {'0' * 64}, got {DIGEST}" in record.error
    work = settings.work_dir / execution_id
    assert not (work / "d").exists() and _leftovers(work) == []


async def test_a_stored_output_over_max_bytes_fails_the_step_and_keeps_nothing(
    harness: Harness, settings: Settings
) -> None:
    workflow = make_workflow(
        {
            "make": {"run": "head -c 5000 /dev/zero > f"},
            "keep": {"kind": "stage_out", "needs": ["make"], "source_path": "f", "max_bytes": 4096},
        }
    )
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error is not None and "larger than max_bytes (4096 bytes)" in record.error
    async with harness.db.read() as conn:
        assert await output_store.list_outputs(conn, execution_id) == []
    assert list((settings.results_root / execution_id).rglob("*.*")) == []


async def test_a_missing_source_fails_the_step_with_its_path(harness: Harness) -> None:
    workflow = make_workflow({"keep": {"kind": "stage_out", "source_path": "nothing/here"}})
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error == "step keep failed: nothing/here does not exist"


async def test_paths_outside_the_working_directory_are_refused_on_the_local_environment(
    harness: Harness, settings: Settings
) -> None:
    workflow = make_workflow({"keep": {"kind": "stage_out", "source_path": "../../master.key"}})
    execution_id = await harness.trigger(workflow)
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error is not None and "outside the execution's working directory" in record.error


async def test_a_step_max_bytes_above_the_configured_limit_is_capped(
    db: Any, tmp_path: Path, http_files: HttpFiles
) -> None:
    settings = Settings(data_dir=tmp_path / "data", limits=Limits(max_stage_in_bytes=2000))
    harness = Harness(db, settings)
    await harness.engine.start()
    try:
        url = http_files.add("/x", DATA)
        workflow = make_workflow(
            {"fetch": {"kind": "stage_in", "url": url, "target_path": "x", "max_bytes": 10**9}}
        )
        execution_id = await harness.trigger(workflow)
        record = await harness.finished(execution_id)
        log = _messages(await harness.logs(execution_id))
    finally:
        await harness.engine.stop()
    assert record.status is ExecutionStatus.FAILED
    assert "above limits.max_stage_in_bytes (2000); using 2000" in log


# --- stage_in on its own: skip, force, retries -------------------------------------------------


def _plan(url: str, **changes: Any) -> StageInPlan:
    fields: dict[str, Any] = {
        "url": url,
        "target_path": "t/data",
        "force": False,
        "sha256": None,
        "max_bytes": 10**9,
        "timeout": None,
    }
    fields.update(changes)
    return StageInPlan(**fields)


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[LogLevel, str]] = []

    def __call__(self, level: LogLevel, text: str) -> None:
        self.lines.append((level, text))

    def __str__(self) -> str:
        return "\n".join(text for _, text in self.lines)


async def test_an_existing_target_is_not_downloaded_again_unless_forced(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.add("/d", DATA)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "data").write_bytes(b"already here")
    log = Log()
    await stage_in(_plan(url), LocalFiles(tmp_path, LocalTransport()), log)
    assert (tmp_path / "t" / "data").read_bytes() == b"already here"
    assert http_files.hits["/d"] == 0
    assert "t/data exists already: not downloaded (force: false)" in str(log)
    await stage_in(_plan(url, force=True), LocalFiles(tmp_path, LocalTransport()), log)
    assert (tmp_path / "t" / "data").read_bytes() == DATA
    assert http_files.hits["/d"] == 1


async def test_transient_http_errors_are_retried_and_the_download_completes(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.add("/flaky", DATA)
    http_files.fail_next("/flaky", 2, 503)
    log = Log()
    await stage_in(_plan(url), LocalFiles(tmp_path, LocalTransport()), log, retry_delays=(0, 0, 0))
    assert (tmp_path / "t" / "data").read_bytes() == DATA
    assert http_files.hits["/flaky"] == 3
    assert "HTTP 503 Service Unavailable); retrying in 0 s (attempt 2 of 4)" in str(log)


async def test_transient_errors_give_up_after_the_last_attempt(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.add("/down", DATA)
    http_files.fail_next("/down", 10, 502)
    with pytest.raises(TransferError, match=r"failed 4 times; last: HTTP 502"):
        await stage_in(
            _plan(url), LocalFiles(tmp_path, LocalTransport()), Log(), retry_delays=(0, 0, 0)
        )
    assert _leftovers(tmp_path) == []


async def test_a_missing_file_is_a_clear_error_without_retries(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    with pytest.raises(TransferError, match=r"answered HTTP 404 Not Found; check the URL"):
        await stage_in(
            _plan(http_files.url("/none")), LocalFiles(tmp_path, LocalTransport()), Log()
        )
    assert http_files.hits["/none"] == 1


async def test_credentials_and_query_of_the_url_stay_out_of_the_logs(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    http_files.add("/s", b"secret data")
    url = http_files.url("/s").replace("http://", "http://user:pw@") + "?token=abc"
    log = Log()
    await stage_in(_plan(url), LocalFiles(tmp_path, LocalTransport()), log)
    assert "pw" not in str(log) and "abc" not in str(log)
    assert http_files.url("/s") in str(log)


async def test_only_http_urls_are_staged_in(harness: Harness) -> None:
    workflow = make_workflow(
        {"fetch": {"kind": "stage_in", "url": "{{ inputs.u }}", "target_path": "x"}},
        inputs={"u": {"type": "string"}},
    )
    execution_id = await harness.trigger(workflow, {"u": "file:///etc/passwd"})
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.FAILED
    assert record.error is not None
    assert "'file:///etc/passwd' is not an http:// or https:// URL" in record.error
    steps = await harness.steps(execution_id)
    assert steps["fetch"].state is StepState.FAILED


async def test_cancelling_during_a_download_cancels_the_step_and_removes_the_partial_file(
    harness: Harness, http_files: HttpFiles, settings: Settings
) -> None:
    url = http_files.add("/slow", DATA)
    http_files.slow["/slow"] = 0.3
    workflow = make_workflow({"fetch": {"kind": "stage_in", "url": url, "target_path": "s"}})
    execution_id = await harness.trigger(workflow)
    work = settings.work_dir / execution_id
    for _ in range(100):
        if _leftovers(work) if work.exists() else []:
            break
        await asyncio.sleep(0.05)
    assert _leftovers(work), "the download never started writing"
    await harness.engine.cancel(execution_id, by_user="alice")
    record = await harness.finished(execution_id)
    assert record.status is ExecutionStatus.CANCELLED
    assert (await harness.steps(execution_id))["fetch"].state is StepState.CANCELLED
    assert _leftovers(work) == [] and not (work / "s").exists()


async def test_a_body_without_length_is_stopped_once_it_passes_max_bytes(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.add("/stream", DATA)
    http_files.unsized.add("/stream")
    with pytest.raises(TransferError, match=r"larger than max_bytes \(100000 bytes\); download"):
        await stage_in(_plan(url, max_bytes=100_000), LocalFiles(tmp_path, LocalTransport()), Log())
    assert _leftovers(tmp_path) == [] and not (tmp_path / "t" / "data").exists()
    await stage_in(_plan(url), LocalFiles(tmp_path, LocalTransport()), Log())
    assert (tmp_path / "t" / "data").read_bytes() == DATA
