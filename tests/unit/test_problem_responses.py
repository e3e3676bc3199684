"""The error envelope for the limit statuses: 413 and 429 (with Retry-After)."""

from __future__ import annotations

import json

from hpcwaas.server.problems import problem_response


def body(response) -> dict[str, object]:
    return json.loads(bytes(response.body))


def test_a_429_is_too_many_requests_and_keeps_its_retry_after() -> None:
    response = problem_response(429, "slow down", headers={"Retry-After": "7"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert body(response) == {
        "errors": [
            {
                "id": "too_many_requests",
                "status": 429,
                "title": "Too Many Requests",
                "detail": "slow down",
            }
        ]
    }


def test_a_429_without_retry_after_still_says_when_to_come_back() -> None:
    response = problem_response(429, "slow down")
    assert int(response.headers["retry-after"]) >= 1


def test_a_413_is_payload_too_large() -> None:
    response = problem_response(413, "too big")
    assert response.status_code == 413
    [item] = body(response)["errors"]  # type: ignore[misc]
    assert (item["id"], item["title"]) == ("payload_too_large", "Payload Too Large")
    assert "retry-after" not in response.headers
