"""Idempotency keys and delays the ingress must refuse, on a real server: 400, nothing stored.

The rules (`perdure.server.ingress.routes`): a key is non-empty, at most
`MAX_IDEMPOTENCY_KEY_BYTES` (1 KiB), has no control character, and in a header is printable
ASCII; a delay is a non-negative duration of at most `MAX_DELAY_MS` (ten years). Valid keys
keep their promise: a repeat is the same invocation.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess

from perdure.server.ingress.routes import MAX_IDEMPOTENCY_KEY_BYTES

pytestmark = pytest.mark.interop

BODY = {"id": "idem", "steps": 1, "pauseMillis": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerdureServer]:
    tmp: Path = tmp_path_factory.mktemp("keys")
    service = ServiceProcess(
        "tests.services.crash_app", tmp / "service.log", env={"LEDGER": str(tmp / "ledger")}
    ).start()
    server = PerdureServer(tmp / "data", tmp / "server.log").start()
    server.register(service.uri)
    yield server
    server.stop()
    service.stop()


def _count(server: PerdureServer) -> int:
    answer = httpx.get(f"{server.admin}/invocations", timeout=30)
    return len(answer.json()["invocations"])


def _send(server: PerdureServer, key: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.ingress}/Chain/run/send",
        json=BODY,
        headers=[(b"idempotency-key", key)],
        timeout=30,
    )


BAD_KEYS = {
    "empty": b"",
    "one byte over the limit": b"k" * (MAX_IDEMPOTENCY_KEY_BYTES + 1),
    "100 kB": b"k" * 100_000,
    "tab": b"a\tb",
    "latin-1": "\u00e9t\u00e9".encode("latin-1"),
    "utf-8": "\u00e9t\u00e9".encode(),
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_bad_idempotency_key_is_a_400_and_stores_nothing(
    server: PerdureServer, key: bytes
) -> None:
    before = _count(server)
    answer = _send(server, key)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["perdure_code"] == "PD-1019", body
    assert "idempotency key" in body["message"].lower() or "idempotency header" in body["message"]
    assert _count(server) == before


def test_a_control_character_in_the_header_is_a_400(server: PerdureServer) -> None:
    """httpx will not send these; a raw socket does. The HTTP parser or the ingress refuses."""
    for raw in (b"a\x01b", b"a\x7fb", b"\x1b[31mred"):
        request = (
            b"POST /Chain/run/send HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"idempotency-key: " + raw + b"\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
        )
        with socket.create_connection(("127.0.0.1", server.ingress_port), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400"), (raw, answer[:300])


GOOD_KEYS = {
    "uuid": b"0b6f3e1c-6a47-4f0e-9a53-51b0f3f1c1aa",
    "with spaces": b"order 42 / payment",
    "exactly the limit": b"k" * MAX_IDEMPOTENCY_KEY_BYTES,
    "punctuation": b"!#$%&'()*+,-./:;<=>?@[]^_`{|}~",
}


@pytest.mark.parametrize("key", GOOD_KEYS.values(), ids=GOOD_KEYS.keys())
def test_a_valid_key_keeps_its_promise(server: PerdureServer, key: bytes) -> None:
    first = _send(server, key)
    assert first.status_code == 202, first.text
    again = _send(server, key)
    assert again.status_code == 202, again.text
    assert again.json() == {**first.json(), "status": "PreviouslyAccepted"}
    # ... and can be attached to by the same key, percent-encoded in the path.
    path = f"/restate/invocation/Chain/run/{quote(key.decode(), safe='')}/attach"
    attached = httpx.get(server.ingress + path, timeout=30)
    assert attached.status_code == 200, attached.text


BAD_LOOKUPS = {
    "empty path key": "/restate/invocation/Chain/run//attach",
    "control in path key": "/restate/invocation/Chain/run/a%01b/output",
    "huge path key": "/restate/invocation/Chain/run/" + "k" * 2000 + "/output",
}


@pytest.mark.parametrize("path", BAD_LOOKUPS.values(), ids=BAD_LOOKUPS.keys())
def test_a_bad_key_in_an_attach_path_is_a_400(server: PerdureServer, path: str) -> None:
    answer = httpx.get(server.ingress + path, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["perdure_code"] in ("PD-1019", "PD-1014"), answer.text


def test_a_bad_key_in_a_json_target_is_a_400(server: PerdureServer) -> None:
    target = {
        "target": "IdempotentInvocation",
        "service": "Chain",
        "handler": "run",
        "idempotencyKey": "a\u0000b",
    }
    answer = httpx.post(f"{server.ingress}/restate/output", json=target, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["perdure_code"] == "PD-1019"


BAD_DELAYS = {
    "negative": "-5s",
    "negative iso": "-PT5S",
    "garbage": "soon",
    "empty": "",
    "no unit": "10",
    "months": "P1M",
    "400 digits": "9" * 400 + "s",
    "400 digits iso": "P" + "9" * 400 + "D",
    "astronomical": "99999999999999999999d",
    "over ten years": "3651d",
    "nan": "nans",
}


@pytest.mark.parametrize("delay", BAD_DELAYS.values(), ids=BAD_DELAYS.keys())
def test_a_bad_delay_is_a_400_and_stores_nothing(server: PerdureServer, delay: str) -> None:
    before = _count(server)
    answer = httpx.post(
        f"{server.ingress}/Chain/run/send", params={"delay": delay}, json=BODY, timeout=30
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["perdure_code"] == "PD-1005", answer.text
    assert "delay" in answer.text.lower()
    assert _count(server) == before


def test_a_good_delay_is_accepted(server: PerdureServer) -> None:
    answer = httpx.post(
        f"{server.ingress}/Chain/run/send", params={"delay": "PT0.2S"}, json=BODY, timeout=30
    )
    assert answer.status_code == 202, answer.text
    assert "executionTime" in answer.json()
