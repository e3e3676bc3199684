"""The SDK's typed errors: envelopes rebuilt, synthesized items, connection failures."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.tls_support import make_pki

from hpcwaas.api.errors import envelope
from hpcwaas.client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    ConnectionFailed,
    NotAnApi,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)


def answering(response: httpx.Response) -> Client:
    return Client("https://h", transport=httpx.MockTransport(lambda request: response))


def test_error_envelope_is_rebuilt_into_a_typed_error_with_every_item() -> None:
    body = envelope(400, "input 'n' must be an integer", "input 'mode' is required")
    with pytest.raises(BadRequest) as caught:
        answering(httpx.Response(400, json=body)).list_workflows()
    error = caught.value
    assert error.status == 400
    assert [e.detail for e in error.errors] == [
        "input 'n' must be an integer",
        "input 'mode' is required",
    ]
    assert [e.id for e in error.errors] == ["bad_request", "bad_request"]
    assert "bad_request (400): input 'n' must be an integer" in str(error)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, Unauthorized), (404, NotFound), (429, TooManyRequests), (503, ServerError)],
)
def test_each_status_maps_to_its_error_class(status: int, kind: type[ApiError]) -> None:
    with pytest.raises(kind):
        answering(httpx.Response(status, json=envelope(status, "x"))).get_execution("e")


def test_retry_after_is_kept_on_429() -> None:
    response = httpx.Response(429, json=envelope(429, "slow down"), headers={"Retry-After": "7"})
    with pytest.raises(TooManyRequests) as caught:
        answering(response).list_workflows()
    assert caught.value.retry_after == 7.0


def test_non_envelope_error_body_becomes_one_synthesized_item() -> None:
    with pytest.raises(ServerError) as caught:
        answering(httpx.Response(502, text="upstream connect error")).list_workflows()
    (item,) = caught.value.errors
    assert (item.id, item.status, item.title) == ("bad_gateway", 502, "Bad Gateway")
    assert item.detail == "upstream connect error"


def test_html_error_page_is_reduced_to_its_visible_text() -> None:
    page = "<html><head><title>Oops</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    with pytest.raises(ServerError) as caught:
        answering(httpx.Response(502, text=page)).list_workflows()
    assert caught.value.errors[0].detail == "502 Bad Gateway"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(404, text="<html><body><h1>Not Found</h1></body></html>"),
        httpx.Response(405, json={"detail": "Method Not Allowed"}),
        httpx.Response(200, html="<!doctype html><title>HPCWaaS</title>"),
    ],
)
def test_an_answer_no_hpcwaas_api_gives_is_not_an_api(response: httpx.Response) -> None:
    # The API answers every unknown path with its envelope, and JSON on success: a page,
    # or a 404 without the envelope, comes from something else at that address.
    with pytest.raises(NotAnApi) as caught:
        answering(response).list_workflows()
    assert str(caught.value).startswith("https://h/workflows does not answer as an hpcwaas API")


def test_empty_error_body_uses_the_status_title() -> None:
    with pytest.raises(Unauthorized) as caught:
        answering(httpx.Response(401)).list_workflows()
    assert caught.value.errors[0].detail == "Unauthorized"


def test_envelope_items_missing_fields_are_completed_from_the_status() -> None:
    body = {"errors": [{"detail": "no such execution"}]}
    with pytest.raises(NotFound) as caught:
        answering(httpx.Response(404, json=body)).get_execution("e")
    item = caught.value.errors[0]
    assert (item.id, item.status, item.title) == ("not_found", 404, "Not Found")


def test_redirect_is_reported_with_its_target() -> None:
    response = httpx.Response(302, headers={"Location": "https://sso.example/login"})
    with pytest.raises(ApiError, match=r"redirected to https://sso\.example/login"):
        answering(response).list_workflows()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def plain_http_server() -> Iterator[int]:
    """A real plain-HTTP server on 127.0.0.1; yields its port."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"workflows": []}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_https_url_on_a_plain_http_server_says_so_and_suggests_http(plain_http_server) -> None:
    url = f"https://127.0.0.1:{plain_http_server}"
    with pytest.raises(ConnectionFailed) as caught:
        Client(url, timeout=5).list_workflows()
    error = caught.value
    assert error.url == f"{url}/workflows"
    assert "plain HTTP" in error.reason
    assert f"--api_url http://127.0.0.1:{plain_http_server}" in str(error)


async def test_async_client_reports_plain_http_the_same_way(plain_http_server) -> None:
    async with AsyncClient(f"https://127.0.0.1:{plain_http_server}", timeout=5) as client:
        with pytest.raises(ConnectionFailed, match="plain HTTP"):
            await client.list_workflows()


def test_same_server_over_http_works(plain_http_server) -> None:
    with Client(f"http://127.0.0.1:{plain_http_server}") as client:
        assert client.list_workflows().workflows == []


def test_refused_connection_names_the_url_and_the_reason() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ConnectionFailed) as caught:
        Client(url).get_execution("e1")
    assert caught.value.url == f"{url}/executions/e1"
    assert "connection refused" in str(caught.value)


def test_timeout_is_a_connection_failure_saying_it_timed_out() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ConnectionFailed, match="timed out waiting"):
        Client("https://h", transport=httpx.MockTransport(slow)).list_workflows()


def test_untrusted_certificate_suggests_ca_file_or_skip() -> None:
    def bad_cert(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
            "certificate (_ssl.c:1000)",
            request=request,
        )

    with pytest.raises(ConnectionFailed) as caught:
        Client("https://h", transport=httpx.MockTransport(bad_cert)).list_workflows()
    assert "--ca_file" in str(caught.value)
    assert "_ssl.c" not in str(caught.value)


def _hangs_up(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


def test_http_url_to_a_server_that_hangs_up_suggests_https() -> None:
    with pytest.raises(ConnectionFailed) as caught:
        Client("http://h:9443", transport=httpx.MockTransport(_hangs_up)).list_workflows()
    assert "does it serve HTTPS?" in caught.value.reason
    assert "--api_url https://h:9443" in str(caught.value)


def test_https_server_that_hangs_up_probably_wants_a_client_certificate() -> None:
    with pytest.raises(ConnectionFailed) as caught:
        Client("https://h", transport=httpx.MockTransport(_hangs_up)).list_workflows()
    assert "probably requires a client certificate" in caught.value.reason
    assert "--cert_file and --key_file" in str(caught.value)


def test_tls_alert_about_the_client_certificate_names_the_certificate_given(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path)

    def unknown_ca(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)", request=request
        )

    client = Client(
        "https://h",
        cert_file=str(pki.client_cert),
        key_file=str(pki.client_key),
        transport=httpx.MockTransport(unknown_ca),
    )
    with pytest.raises(ConnectionFailed) as caught:
        client.list_workflows()
    assert f"probably refused the client certificate {pki.client_cert}" in caught.value.reason
