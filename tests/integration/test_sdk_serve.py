"""`perdure.serve` on a real socket: HTTP/1.1 and h2c on one port, full duplex over HTTP/2."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.h2client import H2Client
from tests.helpers.processes import ServiceProcess

ALL_MANIFESTS = ", ".join(
    f"application/vnd.restate.endpointmanifest.v{v}+json" for v in (1, 2, 3, 4)
)
V6 = "application/vnd.restate.invocation.v6"
TIMEOUT = 15.0


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = Path(tmp_path_factory.mktemp("sdk-serve")) / "deployment.log"
    process = ServiceProcess("tests.integration.sdk_serve_app", log, args=["--echo-runtime"])
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_discovery_over_http1(deployment: ServiceProcess) -> None:
    response = httpx.get(f"{deployment.uri}/discover", headers={"accept": ALL_MANIFESTS})
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.headers["content-type"] == "application/vnd.restate.endpointmanifest.v4+json"
    assert response.headers["x-restate-server"].startswith("perdure-sdk-python/")
    manifest = response.json()
    assert manifest["protocolMode"] == "REQUEST_RESPONSE"
    assert [s["name"] for s in manifest["services"]] == ["Greeter", "Counter"]


async def test_discovery_over_h2c(deployment: ServiceProcess) -> None:
    async with await H2Client.connect("127.0.0.1", deployment.port) as client:
        stream = await client.request(
            "GET", "/discover", {"accept": ALL_MANIFESTS}, end_stream=True
        )
        status, headers = await asyncio.wait_for(stream.response_headers(), TIMEOUT)
        body = await asyncio.wait_for(stream.read_all(), TIMEOUT)
    assert status == 200
    assert headers["content-type"] == "application/vnd.restate.endpointmanifest.v4+json"
    assert b'"protocolMode":"BIDI_STREAM"' in body


async def test_an_invocation_over_h2c_is_full_duplex(deployment: ServiceProcess) -> None:
    async with await H2Client.connect("127.0.0.1", deployment.port) as client:
        stream = await client.request("POST", "/invoke/Greeter/greet", {"content-type": V6})
        status, headers = await asyncio.wait_for(stream.response_headers(), TIMEOUT)
        assert (status, headers["content-type"]) == (200, V6)
        assert await asyncio.wait_for(stream.receive(), TIMEOUT) == b"mode=bidi;"
        # Each chunk is answered while our side of the stream is still open.
        for word in (b"ping", b"pong"):
            await stream.send(word)
            assert await asyncio.wait_for(stream.receive(), TIMEOUT) == word.upper()
        await stream.end()
        assert await asyncio.wait_for(stream.read_all(), TIMEOUT) == b""  # and then it ends


def test_an_invocation_over_http1_reads_the_whole_body_first(deployment: ServiceProcess) -> None:
    response = httpx.post(
        f"{deployment.uri}/invoke/Counter/add",
        content=b"one-body",
        headers={"content-type": V6},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.content == b"mode=rr;ONE-BODY"


def test_unsupported_versions_are_refused_over_the_wire(deployment: ServiceProcess) -> None:
    response = httpx.post(
        f"{deployment.uri}/invoke/Greeter/greet",
        headers={"content-type": "application/vnd.restate.invocation.v1"},
    )
    assert response.status_code == 415


def test_the_server_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    process = ServiceProcess("tests.integration.sdk_serve_app", tmp_path / "stop.log")
    process.start()
    assert process.proc is not None
    process.proc.send_signal(signal.SIGINT)
    assert process.proc.wait(timeout=TIMEOUT) == 0
