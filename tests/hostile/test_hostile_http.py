"""Hostile input on the real sockets of a running `perdure server`, while real work runs.

Every request below is wrong on purpose: malformed paths, bodies over `--max-body-size`, bad
idempotency keys and delays, invalid JSON, unknown content types, garbage bytes instead of
HTTP, on the ingress and on the admin API. Each must get a 4xx with a message that says what
was wrong (never a 5xx, a hang or a dropped connection without an answer), the server must stay
up, and invocations running meanwhile must finish with their right answers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess

pytestmark = pytest.mark.interop

MAX_BODY = 64 * 1024
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerdureServer]:
    tmp = tmp_path_factory.mktemp("hostile")
    service = ServiceProcess(
        "tests.services.crash_app", tmp / "service.log", env={"LEDGER": str(tmp / "ledger")}
    ).start()
    server = PerdureServer(
        tmp / "data", tmp / "server.log", extra_args=["--max-body-size", str(MAX_BODY)]
    ).start()
    server.register(service.uri)
    yield server
    server.stop()
    service.stop()


@pytest.fixture(scope="module")
def background(target: PerdureServer) -> list[str]:
    """Invocations that run while the hostile requests arrive; checked at the end."""
    ids = []
    for n in range(10):
        r = httpx.post(
            f"{target.ingress}/Chain/run/send",
            json={"id": f"bg{n}", "steps": 3, "pauseMillis": 300},
            timeout=10,
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["invocationId"])
    return ids


# (method, path, body, headers, expected status, words the message must contain)
INGRESS = [
    ("POST", "/Chain", b"{}", JSON, 400, ["Chain"]),
    ("POST", "/Chain/run/send/extra/segments", b"{}", JSON, 400, ["Chain"]),
    ("POST", "/%00/run", b"{}", JSON, 404, []),
    ("POST", "/Chain/%2e%2e%2fadmin", b"{}", JSON, 404, []),
    ("POST", "/" + "A" * 5000 + "/run", b"{}", JSON, 404, []),
    ("POST", "/Tally/add", b"{}", JSON, 400, ["key"]),
    ("POST", "/Chain/run", b"{not json", JSON, 400, ["JSON"]),
    ("POST", "/Chain/run", b"\xff\xfe", JSON, 400, ["JSON"]),
    (
        "POST",
        "/Chain/run",
        b'{"a": 1}',
        {"content-type": "application/x-evil"},
        400,
        ["content-type"],
    ),
    ("POST", "/Chain/run", b"x" * (MAX_BODY + 1), JSON, 413, ["--max-body-size"]),
    ("POST", "/Chain/run/send?delay=soon", b"{}", JSON, 400, ["delay"]),
    ("POST", "/Chain/run/send?delay=-5s", b"{}", JSON, 400, ["delay"]),
    ("POST", "/Chain/run/send?delay=1e309ms", b"{}", JSON, 400, ["delay"]),
    ("POST", "/Chain/run/send?delay=" + "9" * 400, b"{}", JSON, 400, ["delay"]),
    ("POST", "/Chain/run?delay=1s", b"{}", JSON, 400, ["delay"]),
    ("GET", "/restate/invocation/not-an-id/output", b"", {}, 400, []),
    ("GET", "/restate/invocation/inc_1234/attach", b"", {}, 400, []),
    ("POST", "/restate/awakeables/garbage/resolve", b"1", JSON, 400, []),
    ("DELETE", "/Chain/run", b"", {}, 405, ["POST"]),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "words"),
    INGRESS,
    ids=[f"{m} {p[:40]}" for m, p, *_ in INGRESS],
)
def test_the_ingress_refuses_with_a_clear_4xx(
    target: PerdureServer,
    background: list[str],
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    words: list[str],
) -> None:
    r = httpx.request(method, target.ingress + path, content=body, headers=headers, timeout=30)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.status_code == status, (r.status_code, r.text)
    assert len(r.text) > 10, "a refusal says why"
    for word in words:
        assert word.lower() in r.text.lower(), r.text


BAD_IDEMPOTENCY_KEYS = ["", "a b", "k" * 100_000, "\u00e9t\u00e9"]


@pytest.mark.parametrize("key", BAD_IDEMPOTENCY_KEYS, ids=["empty", "spaces", "huge", "latin1"])
def test_odd_idempotency_keys_are_refused_or_keep_their_promise(
    target: PerdureServer, key: str
) -> None:
    """Refused with a 4xx, or taken as a key: then a repeat is the same invocation."""

    def send() -> httpx.Response:
        return httpx.post(
            f"{target.ingress}/Chain/run/send",
            json={"id": "idem", "steps": 1, "pauseMillis": 1},
            headers={"idempotency-key": key.encode("latin-1")},  # type: ignore[dict-item]
            timeout=30,
        )

    first = send()
    assert first.status_code == 202 or 400 <= first.status_code < 500, first.text
    if first.status_code == 202:
        again = send()
        assert again.status_code == 202, again.text
        assert again.json() == {**first.json(), "status": "PreviouslyAccepted"}


def test_a_deployment_that_cannot_be_reached_is_a_clear_502(target: PerdureServer) -> None:
    r = httpx.post(f"{target.admin}/deployments", json={"uri": "http://127.0.0.1:1"}, timeout=60)
    assert r.status_code == 502, r.text  # the deployment's fault, said as a gateway error
    assert "cannot connect" in r.text and "127.0.0.1:1" in r.text


ADMIN = [
    ("POST", "/deployments", b"{", JSON, 400),
    ("POST", "/deployments", b'{"uri": 5}', JSON, 400),
    ("POST", "/deployments", b'{"uri": "ftp://127.0.0.1:1"}', JSON, 400),
    ("POST", "/deployments", b"[]", JSON, 400),
    ("POST", "/deployments", b"x" * (20 * 1024 * 1024), JSON, 413),
    ("GET", "/deployments/dp_nope", b"", {}, 400),
    ("DELETE", "/deployments/%00", b"", {}, 400),
    ("GET", "/invocations?limit=-1", b"", {}, 400),
    ("GET", "/invocations?limit=99999999999999999999", b"", {}, 400),
    ("GET", "/invocations?status=sleepy", b"", {}, 400),
    ("GET", "/invocations/inc_garbage", b"", {}, 400),
    ("DELETE", "/invocations/%ff", b"", {}, 400),
    ("GET", "/" + "x" * 5000, b"", {}, 404),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    ADMIN,
    ids=[f"{m} {p[:40]} {len(b)}" for m, p, b, *_ in ADMIN],
)
def test_the_admin_api_refuses_with_a_clear_4xx(
    target: PerdureServer,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    r = httpx.request(method, target.admin + path, content=body, headers=headers, timeout=60)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.status_code == status, (r.status_code, r.text)
    assert len(r.text) > 10, "a refusal says why"


GARBAGE = [
    b"\x00\x01\x02\x03garbage\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST /Chain/run HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n",
    b"POST /Chain/run HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc",  # then silence
    b"POST /Chain/run HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
    b"content-type: application/json\r\n\r\nzz\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64,  # an HTTP/2 preface, then junk frames
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
]


@pytest.mark.parametrize("payload", GARBAGE, ids=[str(i) for i in range(len(GARBAGE))])
@pytest.mark.parametrize("api", ["ingress", "admin"])
def test_garbage_bytes_get_an_error_or_a_close_never_a_crash(
    target: PerdureServer, api: str, payload: bytes
) -> None:
    port = target.ingress_port if api == "ingress" else target.admin_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if answer.startswith(b"HTTP/1.1 "):
        assert answer[9:10] == b"4", answer[:200]
    assert httpx.get(f"{target.admin}/health", timeout=10).status_code == 200


def test_the_server_is_alive_and_the_background_work_finished(
    target: PerdureServer, background: list[str], tmp_path: Path
) -> None:
    for invocation_id in background:
        r = httpx.get(f"{target.ingress}/restate/invocation/{invocation_id}/attach", timeout=60)
        assert r.status_code == 200, r.text
        assert len(r.json()) == 3
    assert httpx.get(f"{target.ingress}/restate/health", timeout=10).status_code == 200
    assert "Traceback" not in target.log(), target.log()
