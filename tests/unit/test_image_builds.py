"""Image builds and image downloads against the stand-in Image Creation service.

The driver (engine/image_creation.py) talks HTTP to tests/image_service.py; the transfer of
the image is the download means (engine/stagein.py) writing into a local place here (the
cluster run is in tests/integration/test_images_cluster.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.image_service import ImageService

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.kinds.base import Preparation
from hpcwaas.catalog.kinds.image_build import ImageBuildRequest
from hpcwaas.catalog.kinds.image_transfer import ImageTransferKind, ImageTransferStep
from hpcwaas.catalog.kinds.transfers import TransferError
from hpcwaas.engine.image_creation import ImageCreationService
from hpcwaas.engine.placefiles import LocalFiles
from hpcwaas.engine.remote_services import RemoteServices
from hpcwaas.engine.remotesteps import RemoteEnd, RemoteError, RunKey
from hpcwaas.engine.stagein import stage_in
from hpcwaas.secrets.embedded import EmbeddedKeyStore, load_or_create_master_key
from hpcwaas.settings import ImageCreationConfig, Settings
from hpcwaas.store.database import Database
from hpcwaas.transports.local import LocalTransport

pytestmark = pytest.mark.images

KEY = RunKey("e1", "build", 1)
BODY = {
    "machine": {"platform": "linux/amd64", "architecture": "sandybridge",
                "container_engine": "singularity"},
    "workflow": "rom_pillar_I",
    "step_id": "reduce_order_model",
    "version": "latest",
    "force": False,
    "push": True,
}  # fmt: skip
FILENAME = "rom_pillar_i_reduce_order_model_sandybridge_nompi_nogpu_v_latest.sif"


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[LogLevel, str]] = []

    async def __call__(self, level: LogLevel, line: str, checkpoint: Any) -> None:
        self.lines.append((level, line))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def _driver(service: ImageService, password: str = "s3cret-pass") -> ImageCreationService:
    config = ImageCreationConfig(url=service.url, credentials="services/images", poll_interval=0.02)
    return ImageCreationService(config, "builder", password)


def _request(force: bool = False, **body: Any) -> ImageBuildRequest:
    return ImageBuildRequest(None, {**BODY, "force": force, **body}, force)


async def _build(driver: ImageCreationService, request: ImageBuildRequest) -> tuple[RemoteEnd, str]:
    run = await driver.start(request, KEY)
    lines = Lines()
    end = await run.wait(lines, {})
    return end, lines.text()


async def test_a_build_is_followed_to_its_end_and_gives_the_images_name_and_url(image_service):
    driver = _driver(image_service)
    end, log = await _build(driver, _request())
    await driver.aclose()
    assert end.state is StepState.SUCCEEDED
    assert end.outputs is not None
    assert end.outputs["filename"] == FILENAME
    assert end.outputs["download_url"] == f"{image_service.url}/images/download/{FILENAME}"
    assert end.outputs["image_id"] == "ghcr.io/eflows4hpc/" + FILENAME[:-4].replace("_v_", ":")
    assert end.outputs["build_id"] in image_service.builds
    assert "FINISHED" in log and f"Build {end.outputs['build_id']}" in log


async def test_a_finished_build_of_the_same_request_is_reused_unless_forced(image_service):
    driver = _driver(image_service)
    first, _ = await _build(driver, _request())
    again, log = await _build(driver, _request())
    assert len(image_service.requests) == 1  # no second POST /build/
    assert again.outputs == first.outputs
    assert "reused" in log
    forced, _ = await _build(driver, _request(force=True))
    await driver.aclose()
    assert len(image_service.requests) == 2
    assert forced.outputs is not None and first.outputs is not None
    assert forced.outputs["build_id"] != first.outputs["build_id"]


async def test_the_steps_service_url_is_used_when_the_environment_names_none(image_service):
    config = ImageCreationConfig(credentials="services/images", poll_interval=0.02)
    driver = ImageCreationService(config, "builder", "s3cret-pass")
    run = await driver.start(ImageBuildRequest(image_service.url, dict(BODY), False), KEY)
    end = await run.wait(Lines(), {})
    await driver.aclose()
    assert end.state is StepState.SUCCEEDED
    nowhere = ImageCreationService(config, "builder", "s3cret-pass")
    with pytest.raises(RemoteError, match=r"image_creation\.url"):
        await nowhere.start(_request(), KEY)
    await nowhere.aclose()


async def test_a_failed_build_fails_with_the_services_message(image_service):
    image_service.failure = "spack install failed: py-numpy@1.24"
    driver = _driver(image_service)
    end, _ = await _build(driver, _request())
    await driver.aclose()
    assert end.state is StepState.FAILED
    assert "failed: spack install failed: py-numpy@1.24" in end.reason


async def test_a_refused_build_is_an_error_with_the_services_words_and_not_retried(
    image_service,
):
    image_service.refuse_next(400, "Bad request: Key error'machine'")
    driver = _driver(image_service)
    with pytest.raises(RemoteError) as info:
        await driver.start(_request(), KEY)
    assert "refused the build: HTTP 400: Bad request: Key error'machine'" in str(info.value)
    assert info.value.retryable is False
    bad = {**BODY["machine"], "architecture": "pentium0"}  # type: ignore[dict-item]
    with pytest.raises(RemoteError, match="architecture does not exist"):
        await driver.start(_request(machine=bad), KEY)
    await driver.aclose()


async def test_wrong_credentials_say_where_the_operator_stores_the_right_ones(image_service):
    driver = _driver(image_service, password="wrong")
    with pytest.raises(RemoteError) as info:
        await driver.start(_request(), KEY)
    await driver.aclose()
    assert "HTTP 401" in str(info.value) and "services/images" in str(info.value)
    assert "wrong" not in str(info.value)


async def test_an_unreachable_service_is_a_retryable_error_naming_it(image_service):
    url = image_service.url
    image_service.stop()
    config = ImageCreationConfig(url=url, credentials="services/images", request_timeout=2)
    driver = ImageCreationService(config, "builder", "s3cret-pass")
    with pytest.raises(RemoteError) as info:
        await driver.start(_request(), KEY)
    await driver.aclose()
    assert f"the Image Creation service at {url}" in str(info.value)
    assert "cannot be reached" in str(info.value)
    assert info.value.retryable is True
    image_service.start = lambda: None  # type: ignore[method-assign]  # stopped already


async def test_a_cancel_says_the_service_cannot_stop_a_build(image_service):
    image_service.step_seconds = 5
    driver = _driver(image_service)
    run = await driver.start(_request(), KEY)
    with pytest.raises(RemoteError, match="no way to stop a build"):
        await run.cancel()
    await driver.aclose()


# ------------------------------------------------------------------ the image's download


class Log:
    def __init__(self) -> None:
        self.records: list[str] = []

    def __call__(self, level: LogLevel, text: str) -> None:
        self.records.append(text)


async def _finished_build(service: ImageService) -> str:
    driver = _driver(service)
    end, _ = await _build(driver, _request())
    await driver.aclose()
    assert end.outputs is not None
    return end.outputs["download_url"]


def _plan(url: str, target: str = "images") -> Any:
    step = ImageTransferStep(kind="image_transfer", url=url, target_path=target)
    request = Preparation(
        execution_id="e1", step_name="transfer", inputs={}, limits={"max_stage_in_bytes": 2**30}
    )
    return ImageTransferKind().prepare(step, request)


async def test_an_image_is_streamed_into_the_target_and_not_moved_again(image_service, tmp_path):
    url = await _finished_build(image_service)
    files = LocalFiles(tmp_path, LocalTransport())
    await stage_in(_plan(url), files, Log())
    assert (tmp_path / "images" / FILENAME).read_bytes() == image_service.image(FILENAME)
    log = Log()
    await stage_in(_plan(url), files, log)
    assert image_service.hits[f"/images/download/{FILENAME}"] == 1
    assert "exists already" in " ".join(log.records)


@pytest.mark.parametrize("breakage", ["cut_downloads", "wrong_length"])
async def test_a_cut_download_or_a_size_mismatch_leaves_no_image_and_says_why(
    image_service, tmp_path, breakage
):
    url = await _finished_build(image_service)
    setattr(image_service, breakage, 4)  # every attempt breaks
    with pytest.raises(TransferError) as info:
        await stage_in(
            _plan(url), LocalFiles(tmp_path, LocalTransport()), Log(), retry_delays=(0, 0, 0)
        )
    assert "failed 4 times" in str(info.value)
    assert "without sending complete message body (received " in str(info.value)
    images = tmp_path / "images"
    assert not images.exists() or list(images.iterdir()) == []


async def test_a_download_cut_once_is_taken_again_and_the_image_is_whole(image_service, tmp_path):
    url = await _finished_build(image_service)
    image_service.cut_downloads = 1
    await stage_in(_plan(url), LocalFiles(tmp_path, LocalTransport()), Log(), retry_delays=(0,))
    assert (tmp_path / "images" / FILENAME).read_bytes() == image_service.image(FILENAME)


def test_paths_are_given_back_as_the_transfer_wrote_them(tmp_path: Path) -> None:
    plan = _plan("http://127.0.0.1:1/image_creation/images/download/a_v_1.sif", "/scratch/img")
    assert plan.outputs == {"image_path": "/scratch/img/a_v_1.sif"}


# ------------------------------------------------------------------ the environment's service


def _settings(tmp_path: Path, image_creation: dict[str, Any] | None) -> Settings:
    cluster: dict[str, Any] = {"kind": "slurm", "host": "h", "host_keys": ["h ssh-ed25519 AAAA"]}
    if image_creation is not None:
        cluster["image_creation"] = image_creation
    return Settings(data_dir=tmp_path, environments={"hpc": cluster})


async def test_an_environment_without_the_service_refuses_image_builds_saying_so(tmp_path):
    services = RemoteServices(_settings(tmp_path, None), keystore=None)
    assert not services.configured("hpc", "image_creation")
    with pytest.raises(RemoteError) as info:
        await services.lookup("hpc", "image_creation")
    assert "environment 'hpc' has no image_creation: setting" in str(info.value)
    assert not info.value.retryable


async def test_credentials_missing_from_the_key_store_name_the_path_to_fill(tmp_path):
    config = {"url": "https://images.example.org/image_creation", "credentials": "services/ic"}
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite3'}")
    await db.prepare_schema()
    keystore = EmbeddedKeyStore(db, load_or_create_master_key(tmp_path / "master.key"))
    services = RemoteServices(_settings(tmp_path, config), keystore)
    assert services.configured("hpc", "image_creation")
    with pytest.raises(RemoteError) as info:
        await services.lookup("hpc", "image_creation")
    message = str(info.value)
    assert "no username and password at 'services/ic'" in message
    assert "the Image Creation service at https://images.example.org/image_creation" in message
    assert "hpcwaas-api secrets put services/ic username" in message
    await services.aclose()
    await db.dispose()


def test_image_downloads_follow_the_services_tls_settings(tmp_path):
    config = {"credentials": "services/ic", "verify_tls": False}
    services = RemoteServices(_settings(tmp_path, config), keystore=None)
    assert services.verify("hpc", "image_creation") is False
    assert RemoteServices(_settings(tmp_path, None), None).verify("hpc", "image_creation") is True
    plan = _plan("https://images.example.org/image_creation/images/download/a_v_1.sif")
    assert plan.tls_of == "image_creation"
