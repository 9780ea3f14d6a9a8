"""The invoker's transports on real sockets: hypercorn deployments, and raw servers for failures.

HTTP/2 streams are full duplex, share pooled connections, respect flow control both ways and
fail fast (never hang) when the deployment dies; HTTP/1.1 reuses keep-alive connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
from tests.helpers.processes import ServiceProcess, free_port

from perdure.server.invoker.h1 import H1Transport
from perdure.server.invoker.h2 import H2Transport
from perdure.server.invoker.transport import (
    BadStatus,
    ConnectError,
    ConnectionLost,
    StreamReset,
    TransportTimeout,
    require_success,
)

APP = "tests.integration.invoker_transport_app"
MANIFEST_V3 = "application/vnd.restate.endpointmanifest.v3+json"
T = 10.0  # no step of any test may take this long: a hang fails instead of blocking the run
MiB = 1024 * 1024
R = TypeVar("R")


def _start(log: Path, *args: str) -> ServiceProcess:
    return ServiceProcess(APP, log, args=list(args)).start()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # A high stream limit, so that 200 concurrent streams fit on one connection.
    log = tmp_path_factory.mktemp("transport") / "deployment.log"
    process = _start(log, "--max-streams", "1000")
    yield process
    process.stop()


@pytest.fixture
async def h2t() -> AsyncIterator[H2Transport]:
    transport = H2Transport(max_streams_per_connection=1000)
    yield transport
    await transport.close()


@pytest.fixture
async def h1t() -> AsyncIterator[H1Transport]:
    transport = H1Transport()
    yield transport
    await transport.close()


def server_connections(deployment: ServiceProcess, tag: str) -> int:
    """HTTP/2 connections the deployment saw carrying requests tagged `tag`."""
    response = httpx.get(f"{deployment.uri}/stats", params={"tag": tag}, timeout=T)
    return int(response.json()["connections"])


async def within(awaitable: Awaitable[R]) -> R:
    return await asyncio.wait_for(awaitable, T)


# --- (a) full duplex ---------------------------------------------------------------------


@pytest.mark.parametrize("late", [False, True], ids=["headers-first", "headers-after-data"])
async def test_each_chunk_is_echoed_before_the_next_is_sent(
    deployment: ServiceProcess, h2t: H2Transport, late: bool
) -> None:
    url = f"{deployment.uri}/echo" + ("?late=1" if late else "")
    stream = await h2t.open_stream(url, [("content-type", "application/octet-stream")])
    for i in range(20):
        await stream.send(b"chunk %d" % i)
        if i == 0:
            status, headers = await within(stream.response_headers())
            assert status == 200
            assert ("content-type", "application/octet-stream") in headers
        assert await within(stream.receive()) == b"chunk %d" % i
    await stream.end()
    assert await within(stream.receive()) is None
    await stream.aclose()


async def test_the_response_goes_on_after_the_request_ends(
    deployment: ServiceProcess, h2t: H2Transport
) -> None:
    stream = await h2t.open_stream(f"{deployment.uri}/echo", [])
    for word in (b"one ", b"two ", b"three"):
        await stream.send(word)
    await stream.end()
    assert await within(stream.read_all()) == b"one two three"
    await stream.aclose()


async def test_the_request_goes_on_after_the_response_ends(
    deployment: ServiceProcess, h2t: H2Transport
) -> None:
    stream = await h2t.open_stream(f"{deployment.uri}/echo?limit=1", [])
    await stream.send(b"first")
    assert await within(stream.read_all()) == b"first"  # the deployment ended its side
    await stream.send(b"more")  # ours is still open: delivered or dropped, never an error
    await stream.end()
    await stream.aclose()
    assert (await h2t.request("GET", f"{deployment.uri}/discover", [])).status == 200


# --- (b) concurrency and reuse -----------------------------------------------------------


async def ping_pong(transport: H2Transport, url: str, tag: str, rounds: int) -> None:
    stream = await transport.open_stream(url, [("x-test-tag", tag)])
    for i in range(rounds):
        await stream.send(b"%s-%d" % (tag.encode(), i))
        assert await within(stream.receive()) == b"%s-%d" % (tag.encode(), i)
    await stream.end()
    assert await within(stream.receive()) is None
    await stream.aclose()


@pytest.mark.slow
async def test_two_hundred_concurrent_streams_share_one_connection(
    deployment: ServiceProcess, h2t: H2Transport
) -> None:
    url = f"{deployment.uri}/echo"
    streams = [await h2t.open_stream(url, [("x-test-tag", "many")]) for _ in range(200)]

    async def converse(n: int) -> None:
        for i in range(3):
            await streams[n].send(b"%d/%d" % (n, i))
            assert await within(streams[n].receive()) == b"%d/%d" % (n, i)
        await streams[n].end()
        assert await within(streams[n].receive()) is None

    await within(asyncio.gather(*(converse(n) for n in range(200))))
    assert h2t.connection_count(url) == 1
    assert server_connections(deployment, "many") == 1


async def test_sequential_streams_reuse_the_connection(
    deployment: ServiceProcess, h2t: H2Transport
) -> None:
    for _ in range(20):
        await ping_pong(h2t, f"{deployment.uri}/echo", "sequential", rounds=2)
    assert server_connections(deployment, "sequential") == 1


@pytest.mark.slow
async def test_a_second_connection_opens_at_the_peers_stream_limit(tmp_path: Path) -> None:
    deployment = _start(tmp_path / "limited.log")  # hypercorn's default: 100 streams
    transport = H2Transport()
    try:
        url = f"{deployment.uri}/echo"
        streams = [await transport.open_stream(url, [("x-test-tag", "limit")]) for _ in range(150)]
        assert transport.connection_count(url) == 2
        for n, stream in enumerate(streams):
            await stream.send(b"%d" % n)
            assert await within(stream.receive()) == b"%d" % n
            await stream.end()
            await stream.aclose()
        assert server_connections(deployment, "limit") == 2
    finally:
        await transport.close()
        deployment.stop()


async def test_our_own_stream_limit_spreads_streams_over_connections(
    deployment: ServiceProcess,
) -> None:
    transport = H2Transport(max_streams_per_connection=10)
    try:
        url = f"{deployment.uri}/echo"
        opening = (transport.open_stream(url, [("x-test-tag", "ten")]) for _ in range(30))
        streams = await within(asyncio.gather(*opening))
        assert transport.connection_count(url) == 3
        for n, stream in enumerate(streams):
            await stream.send(b"%d" % n)
            assert await within(stream.receive()) == b"%d" % n
            await stream.end()
            await stream.aclose()
        assert server_connections(deployment, "ten") == 3
    finally:
        await transport.close()


async def test_connections_retire_before_the_deployments_request_limit(tmp_path: Path) -> None:
    # hypercorn sends GOAWAY after --max-requests requests on a connection, and the streams
    # still open on it die. Retiring connections first keeps a long stream alive.
    deployment = _start(tmp_path / "limited.log", "--max-requests", "5")
    transport = H2Transport(max_requests_per_connection=4)
    try:
        url = f"{deployment.uri}/echo"
        long_lived = await transport.open_stream(url, [("x-test-tag", "retire")])
        for _ in range(10):
            await ping_pong(transport, url, "retire", rounds=1)
        await long_lived.send(b"still here")
        assert await within(long_lived.receive()) == b"still here"
        await long_lived.end()
        assert await within(long_lived.receive()) is None
        await long_lived.aclose()
        assert server_connections(deployment, "retire") == 3  # 4 + 4 + 3 streams
    finally:
        await transport.close()
        deployment.stop()


# --- (c) flow control --------------------------------------------------------------------


@pytest.mark.slow
async def test_five_mebibytes_each_way_at_once(
    deployment: ServiceProcess, h2t: H2Transport
) -> None:
    # Far beyond every initial window: it only completes if we wait for WINDOW_UPDATEs when
    # sending and acknowledge what we consume when receiving, both at the same time.
    payload = hashlib.sha256(b"seed").digest() * (5 * MiB // 32)
    stream = await h2t.open_stream(f"{deployment.uri}/echo", [])

    async def upload() -> None:
        for offset in range(0, len(payload), 100_000):
            await stream.send(payload[offset : offset + 100_000])
        await stream.end()

    sender = asyncio.create_task(upload())
    received = await within(stream.read_all())
    await within(sender)
    assert received == payload
    await stream.aclose()


@pytest.mark.slow
async def test_two_senders_on_one_stream_both_finish_and_never_interleave(
    deployment: ServiceProcess, h2t: H2Transport
) -> None:
    # Each send is queued whole, so two tasks writing big bodies while the window is shut
    # (the invoker's first frames and its forwarder) both get through, one after the other.
    first, second = b"a" * (3 * MiB), b"b" * (3 * MiB)
    stream = await h2t.open_stream(f"{deployment.uri}/echo", [])
    receiving = asyncio.create_task(stream.read_all())
    await within(asyncio.gather(stream.send(first), stream.send(second)))
    await stream.end()
    assert await within(receiving) in (first + second, second + first)
    await stream.aclose()


@pytest.mark.slow
async def test_large_bodies_over_request(deployment: ServiceProcess, h2t: H2Transport) -> None:
    payload = bytes(range(256)) * (5 * MiB // 256)
    sunk = await h2t.request("POST", f"{deployment.uri}/sink", [], body=payload, timeout=T)
    assert json.loads(sunk.body) == {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    sourced = await h2t.request("GET", f"{deployment.uri}/source?size={5 * MiB}", [], timeout=T)
    assert sourced.body == payload


# --- (d) the deployment dies -------------------------------------------------------------


@pytest.mark.slow
async def test_a_killed_deployment_fails_the_open_stream(tmp_path: Path) -> None:
    deployment = _start(tmp_path / "doomed.log")
    transport = H2Transport()
    try:
        url = f"{deployment.uri}/echo"
        stream = await transport.open_stream(url, [])
        await stream.send(b"alive?")
        assert await within(stream.receive()) == b"alive?"
        deployment.kill9()
        with pytest.raises(ConnectionLost) as lost:
            await within(stream.receive())
        assert url in str(lost.value) and "check that the deployment is running" in str(lost.value)
        with pytest.raises(ConnectionLost):
            await stream.send(b"anyone?")
        await stream.aclose()
        assert transport.connection_count(url) == 0  # the dead connection left the pool
        with pytest.raises(ConnectError, match="cannot connect"):
            await transport.open_stream(url, [])
    finally:
        await transport.close()
        deployment.stop()


@pytest.mark.slow
async def test_a_killed_deployment_fails_an_http1_response(tmp_path: Path) -> None:
    deployment = _start(tmp_path / "doomed.log")
    transport = H1Transport()
    try:
        stream = await transport.open_stream(f"{deployment.uri}/hang", [])
        await stream.end()
        assert (await within(stream.response_headers()))[0] == 200
        assert await within(stream.receive()) == b"started"
        deployment.kill9()
        with pytest.raises(ConnectionLost, match="/hang"):
            await within(stream.receive())
        await stream.aclose()
    finally:
        await transport.close()
        deployment.stop()


# --- (e) statuses ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
async def test_a_bad_status_names_the_status_and_the_body(
    deployment: ServiceProcess, h2t: H2Transport, h1t: H1Transport, status: int
) -> None:
    url = f"{deployment.uri}/status/{status}"
    for transport in (h2t, h1t):
        stream = await transport.open_stream(url, [])
        await stream.send(b"frames")
        await stream.end()
        with pytest.raises(BadStatus) as bad:
            await within(require_success(stream))
        await stream.aclose()
        assert bad.value.status == status
        assert bad.value.body == f"status {status} from the transport test app".encode()
        assert url in str(bad.value) and f"HTTP {status}" in str(bad.value)
        response = await transport.request("GET", url, [])
        assert response.status == status
        with pytest.raises(BadStatus):
            response.raise_for_status()


# --- (f) HTTP/1.1 ------------------------------------------------------------------------


async def test_http1_request_response_reuses_one_connection(
    deployment: ServiceProcess, h1t: H1Transport
) -> None:
    url = f"{deployment.uri}/echo"
    for i in range(10):
        stream = await h1t.open_stream(url, [("content-type", "application/octet-stream")])
        await stream.send(b"start ")
        await stream.send(b"journal %d" % i)  # buffered: the whole body goes out at end()
        await stream.end()
        assert await within(require_success(stream)) is not None
        assert await within(stream.read_all()) == b"start journal %d" % i
        await stream.aclose()
        assert h1t.idle_count(url) == 1


async def test_http1_retries_once_when_a_kept_alive_connection_was_closed(
    h1t: H1Transport,
) -> None:
    connections = 0

    async def one_answer_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # Answers the first request with keep-alive; on the next, closes without a word, as a
        # server does when its idle timeout fires just as the client reuses the connection.
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        with socket_errors():
            await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with raw_server(one_answer_per_connection) as url:
        for _ in range(2):
            response = await h1t.request("GET", url, [], timeout=T)
            assert (response.status, response.body) == (200, b"ok")
    assert connections == 2


# --- (g) discovery -----------------------------------------------------------------------


async def test_discovery_get_over_both_transports(
    deployment: ServiceProcess, h2t: H2Transport, h1t: H1Transport
) -> None:
    url = f"{deployment.uri}/discover"
    for transport, version in ((h2t, "2"), (h1t, "1.1")):
        response = await transport.request("GET", url, [("accept", MANIFEST_V3)], timeout=T)
        assert response.raise_for_status().header("content-type") == "application/json"
        assert json.loads(response.body) == {"http_version": version, "accept": MANIFEST_V3}


@pytest.mark.interop
async def test_discovery_of_an_official_sdk_endpoint(
    tmp_path: Path, h2t: H2Transport, h1t: H1Transport
) -> None:
    deployment = _start(tmp_path / "restate.log", "--app", "restate")
    try:
        url = f"{deployment.uri}/discover"
        for transport, mode in ((h2t, "BIDI_STREAM"), (h1t, "REQUEST_RESPONSE")):
            response = await transport.request("GET", url, [("accept", MANIFEST_V3)], timeout=T)
            assert response.raise_for_status().header("content-type") == MANIFEST_V3
            manifest = json.loads(response.body)
            assert manifest["protocolMode"] == mode
            assert [s["name"] for s in manifest["services"]] == ["Greeter"]
    finally:
        deployment.stop()


# --- TLS ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_https_negotiates_h2_and_http1_by_alpn(tmp_path: Path) -> None:
    cert = write_self_signed_certificate(tmp_path)
    deployment = _start(tmp_path / "tls.log", "--tls", str(tmp_path))
    h2t = H2Transport(ssl_context=ssl.create_default_context(cafile=cert))
    h1t = H1Transport(ssl_context=ssl.create_default_context(cafile=cert))
    try:
        url = f"https://127.0.0.1:{deployment.port}"
        stream = await h2t.open_stream(f"{url}/echo", [])
        await stream.send(b"secret")
        assert await within(stream.receive()) == b"secret"
        await stream.end()
        await stream.aclose()
        for transport, version in ((h2t, "2"), (h1t, "1.1")):
            response = await transport.request("GET", f"{url}/discover", [], timeout=T)
            assert json.loads(response.body)["http_version"] == version
        untrusting = H2Transport()
        with pytest.raises(ConnectError, match="TLS handshake"):
            await untrusting.open_stream(f"{url}/echo", [])
        await untrusting.close()
    finally:
        await h2t.close()
        await h1t.close()
        deployment.stop()


# --- failures from raw servers -----------------------------------------------------------


async def test_nothing_listening_is_a_connect_error(h2t: H2Transport, h1t: H1Transport) -> None:
    url = f"http://127.0.0.1:{free_port()}/invoke/Greeter/greet"
    for transport in (h2t, h1t):
        with pytest.raises(ConnectError, match="check that it is running") as refused:
            await transport.open_stream(url, [])
        assert refused.value.url == url


async def test_an_http1_only_deployment_is_told_apart(h2t: H2Transport) -> None:
    async def http1_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(http1_only) as url:
        with pytest.raises(ConnectError, match="use_http_11"):
            await within(h2t.open_stream(url, []))


async def test_a_silent_peer_is_a_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    transport = H2Transport(connect_timeout=0.2)
    try:
        async with raw_server(silent) as url:
            with pytest.raises(ConnectError, match=r"within 0\.2s"):
                await within(transport.open_stream(url, []))
    finally:
        await transport.close()


async def test_a_refused_stream_is_a_stream_reset(h2t: H2Transport) -> None:
    def refuse(conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)

    async with raw_h2_server(refuse) as url:
        stream = await h2t.open_stream(url, [])
        with pytest.raises(StreamReset, match="retrying is safe") as reset:
            await within(stream.response_headers())
        assert reset.value.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
        await stream.aclose()
        assert h2t.connection_count(url) == 1  # one stream failed, the connection did not


async def test_goaway_fails_open_streams_and_leaves_the_pool(h2t: H2Transport) -> None:
    def go_away(conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            conn.close_connection(last_stream_id=0)

    async with raw_h2_server(go_away) as url:
        stream = await h2t.open_stream(url, [])
        with pytest.raises(ConnectionLost, match="GOAWAY"):
            await within(stream.receive())
        await stream.aclose()
        assert h2t.connection_count(url) == 0


async def test_a_request_past_its_timeout_is_a_transport_timeout(
    deployment: ServiceProcess, h2t: H2Transport, h1t: H1Transport
) -> None:
    for transport in (h2t, h1t):
        with pytest.raises(TransportTimeout, match=r"within 0\.3s"):
            await transport.request("GET", f"{deployment.uri}/hang", [], timeout=0.3)


async def test_sending_after_end_is_a_bug(deployment: ServiceProcess, h2t: H2Transport) -> None:
    stream = await h2t.open_stream(f"{deployment.uri}/echo", [])
    await stream.end()
    await stream.end()  # idempotent
    with pytest.raises(RuntimeError, match="after end"):
        await stream.send(b"late")
    await stream.aclose()


# --- helpers -----------------------------------------------------------------------------


def socket_errors() -> contextlib.suppress:
    return contextlib.suppress(OSError, asyncio.IncompleteReadError)


class raw_server:
    """A plain asyncio TCP server on 127.0.0.1 running `handler` for each connection."""

    def __init__(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self._handler(reader, writer)

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/invoke/Greeter/greet"

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


def raw_h2_server(
    on_event: Callable[[h2.connection.H2Connection, h2.events.Event], None],
) -> raw_server:
    """An HTTP/2 server that lets `on_event` answer each event, for behaviour hypercorn lacks."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        with socket_errors():
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    on_event(conn, event)
                writer.write(conn.data_to_send())
                await writer.drain()
        writer.close()

    return raw_server(serve)


def write_self_signed_certificate(directory: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(directory / "cert.pem")
