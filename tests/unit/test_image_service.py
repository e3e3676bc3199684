"""The stand-in Image Creation service (tests/image_service.py) keeps the real one's contract."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.image_service import ImageService

pytestmark = pytest.mark.images

AUTH = ("builder", "s3cret-pass")
REQUEST = {
    "machine": {"platform": "linux/amd64", "architecture": "sandybridge",
                "container_engine": "singularity"},
    "workflow": "rom_pillar_I",
    "step_id": "reduce_order_model",
    "force": False,
}  # fmt: skip


def _finished(service: ImageService, build_id: str) -> dict[str, Any]:
    seen = []
    for _ in range(200):
        answer = httpx.get(f"{service.url}/build/{build_id}", auth=AUTH).json()
        if not seen or seen[-1] != answer["status"]:
            seen.append(answer["status"])
        if answer["status"] in ("FINISHED", "FAILED"):
            return {**answer, "seen": seen}
        time.sleep(0.02)
    raise AssertionError(f"build {build_id} never ended: {seen}")


def test_a_build_goes_through_its_statuses_and_its_image_downloads(
    image_service: ImageService,
) -> None:
    answer = httpx.post(f"{image_service.url}/build/", json=REQUEST, auth=AUTH)
    assert answer.status_code == 200
    end = _finished(image_service, answer.json()["id"])
    assert end["status"] == "FINISHED"
    assert set(end["seen"]) <= {"PENDING", "STARTED", "BUILDING", "CONVERTING", "FINISHED"}
    filename = "rom_pillar_i_reduce_order_model_sandybridge_nompi_nogpu_v_latest.sif"
    assert end["filename"] == filename
    assert end["image_id"] == "ghcr.io/eflows4hpc/" + filename[:-4].replace("_v_", ":")
    download = httpx.get(f"{image_service.url}/images/download/{filename}")  # no auth
    assert download.status_code == 200
    assert download.content == image_service.image(filename)


def test_a_second_request_for_a_built_image_skips_building_unless_forced(
    image_service: ImageService,
) -> None:
    image_service.step_seconds = 0.2  # polled every 0.02 s: every status is seen
    first = httpx.post(f"{image_service.url}/build/", json=REQUEST, auth=AUTH).json()["id"]
    _finished(image_service, first)
    again = httpx.post(f"{image_service.url}/build/", json=REQUEST, auth=AUTH).json()["id"]
    assert again != first
    assert "BUILDING" not in _finished(image_service, again)["seen"]
    forced = {**REQUEST, "force": "True"}
    rebuilt = httpx.post(f"{image_service.url}/build/", json=forced, auth=AUTH).json()["id"]
    assert "BUILDING" in _finished(image_service, rebuilt)["seen"]


def test_a_request_for_an_image_being_built_gets_the_running_build(
    image_service: ImageService,
) -> None:
    image_service.step_seconds = 5
    first = httpx.post(f"{image_service.url}/build/", json=REQUEST, auth=AUTH).json()["id"]
    second = httpx.post(f"{image_service.url}/build/", json=REQUEST, auth=AUTH).json()["id"]
    assert first == second


def test_wrong_credentials_unknown_builds_and_bad_requests_are_refused(
    image_service: ImageService,
) -> None:
    url = image_service.url
    assert httpx.post(f"{url}/build/", json=REQUEST, auth=("builder", "no")).status_code == 401
    unknown = httpx.get(f"{url}/build/nope", auth=AUTH)
    assert unknown.status_code == 400
    assert "Build not found" in unknown.text
    missing = httpx.post(f"{url}/build/", json={"workflow": "w"}, auth=AUTH)
    assert missing.status_code == 400
    assert "Key error" in missing.text
    bad_machine = {**REQUEST, "machine": {**REQUEST["machine"], "architecture": "pentium0"}}
    assert httpx.post(f"{url}/build/", json=bad_machine, auth=AUTH).status_code == 500
    assert httpx.get(f"{url}/images/download/none.sif").status_code == 404


def test_the_stand_in_fails_builds_refuses_them_and_breaks_downloads_when_told(
    image_service: ImageService,
) -> None:
    url = image_service.url
    image_service.refuse_next(400, "Bad request: no quota")
    refused = httpx.post(f"{url}/build/", json=REQUEST, auth=AUTH)
    assert (refused.status_code, "no quota" in refused.text) == (400, True)
    done = _finished(
        image_service, httpx.post(f"{url}/build/", json=REQUEST, auth=AUTH).json()["id"]
    )
    image_service.failure = "spack install failed: py-numpy"
    forced = {**REQUEST, "force": True}
    failed_id = httpx.post(f"{url}/build/", json=forced, auth=AUTH).json()["id"]
    failed = _finished(image_service, failed_id)
    assert (failed["status"], failed["message"]) == ("FAILED", "spack install failed: py-numpy")
    image_service.cut_downloads = 1
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{url}/images/download/{done['filename']}")
    image_service.wrong_length = 1
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{url}/images/download/{done['filename']}")
