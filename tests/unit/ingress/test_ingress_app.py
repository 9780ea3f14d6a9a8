"""The ingress ASGI app in process: HTTP in, events to a fake driver, Replies back to HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.unit.ingress.ingress_fakes import (
    INVOCATION_ID,
    FakeDriver,
    FixedIds,
    make_registry,
    output,
)

from perdure.protocol.ids import AwakeableId, InvocationId
from perdure.server.config import Config
from perdure.server.ingress.app import IngressApp
from perdure.server.partition.effects import Reply, ReplyKind
from perdure.server.partition.events import (
    AttachBy,
    AttachRequested,
    AwakeableCompleted,
    CallMode,
    Event,
    InvocationRequested,
)
from perdure.server.storage.api import Failure, Outcome, ServiceType, Target

NOW = 1_700_000_000.0


def make_app(driver: FakeDriver, **config: object) -> IngressApp:
    return IngressApp(
        driver,
        make_registry,
        FixedIds(),
        Config(**config),
        clock=lambda: NOW,  # type: ignore[arg-type]
    )


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
async def client(driver: FakeDriver) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(driver))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as c:
        yield c


def requested(driver: FakeDriver) -> InvocationRequested:
    event = driver.last
    assert isinstance(event, InvocationRequested)
    return event


async def test_call_returns_the_output_with_its_content_type(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: output(b'"Hello Ada!"')
    r = await client.post("/Greeter/greet", json="Ada", headers={"x-custom": "yes"})
    assert r.status_code == 200
    assert r.json() == "Hello Ada!"
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-restate-id"] == INVOCATION_ID
    event = requested(driver)
    assert event.target == Target("Greeter", "greet", "", ServiceType.SERVICE, None)
    assert event.payload == b'"Ada"' and event.mode is CallMode.CALL
    assert event.invocation_id == INVOCATION_ID
    assert ("x-custom", "yes") in event.headers
    assert event.headers[0] == ("x-restate-ingress-path", "/Greeter/greet")


async def test_raw_output_keeps_its_declared_content_type(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: output(bytes(range(8)))
    r = await client.post(
        "/Greeter/raw", content=b"\x00\x01", headers={"content-type": "application/octet-stream"}
    )
    assert r.status_code == 200 and r.content == bytes(range(8))
    assert r.headers["content-type"] == "application/octet-stream"


async def test_empty_output_has_no_content_type(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: output(b"")
    r = await client.post("/Greeter/greet", json="x")
    assert r.status_code == 200 and r.content == b""
    assert "content-type" not in r.headers


async def test_terminal_failure_maps_to_its_code_with_source_invocation(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    failure = Failure(409, "seat taken", (("k", "v"),))
    driver.responder = lambda e: Reply(ReplyKind.OUTPUT, INVOCATION_ID, Outcome(failure=failure))
    r = await client.post("/Counter/k/add", json=1)
    assert r.status_code == 409
    assert r.json() == {
        "code": 409,
        "message": "seat taken",
        "metadata": {"k": "v"},
        "source": "invocation",
    }
    assert r.headers["x-restate-error-source"] == "invocation"
    assert r.headers["x-restate-id"] == INVOCATION_ID


async def test_failure_code_outside_http_range_becomes_500(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    failure = Failure(42, "odd")
    driver.responder = lambda e: Reply(ReplyKind.OUTPUT, INVOCATION_ID, Outcome(failure=failure))
    r = await client.post("/Greeter/greet", json="x")
    assert r.status_code == 500 and r.json()["code"] == 42


async def test_send_answers_202_with_the_invocation_id(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: Reply(ReplyKind.ACCEPTED, INVOCATION_ID)
    r = await client.post("/Counter/k/add/send", json=1)
    assert r.status_code == 202
    assert r.json() == {"invocationId": INVOCATION_ID, "status": "Accepted"}
    assert r.headers["x-restate-id"] == INVOCATION_ID
    assert requested(driver).mode is CallMode.SEND


async def test_repeated_send_is_previously_accepted(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: Reply(ReplyKind.ACCEPTED, INVOCATION_ID, previously_accepted=True)
    r = await client.post("/Signup/k/run/send", json="x")
    assert r.status_code == 202 and r.json()["status"] == "PreviouslyAccepted"


async def test_delayed_send_sets_the_execution_time(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: Reply(ReplyKind.ACCEPTED, INVOCATION_ID)
    r = await client.post("/Greeter/greet/send?delay=PT10S", json="x")
    assert r.status_code == 202
    assert requested(driver).execution_time == int(NOW * 1000) + 10_000
    assert r.json()["executionTime"] == "2023-11-14T22:13:30.000Z"


async def test_idempotency_key_reaches_the_event(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    await client.post("/Greeter/greet", json="x", headers={"idempotency-key": "k-1"})
    event = requested(driver)
    assert event.idempotency_key == "k-1"
    assert all(k != "idempotency-key" for k, _ in event.headers)


async def test_second_workflow_run_is_409(client: httpx.AsyncClient, driver: FakeDriver) -> None:
    driver.responder = lambda e: Reply(
        ReplyKind.ERROR,
        status=409,
        message="workflow 'Signup' with key 'k' has already been started",
    )
    r = await client.post("/Signup/k/run", json="x")
    assert r.status_code == 409
    body = r.json()
    assert body["source"] == "ingress" and body["code"] == 409
    assert body["message"].startswith("Workflow 'Signup'")


async def test_refusals_never_reach_the_driver(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    r = await client.post("/Nope/x", json=1)
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == 404 and body["source"] == "ingress" and body["perdure_code"] == "PD-1001"
    assert "perdure deployments register" in body["message"] and "hint" in body
    assert r.headers["x-restate-error-source"] == "ingress"
    assert (await client.post("/Counter/add", json=1)).status_code == 400
    assert (await client.post("/Greeter/greet", json=1, params={"delay": "1s"})).status_code == 400
    assert (await client.post("/Greeter/secret", json=1)).status_code == 400
    assert (await client.put("/Greeter/greet", json=1)).status_code == 405
    assert (
        await client.post("/Greeter/greet", content=b"x=1", headers={"content-type": "text/plain"})
    ).status_code == 400
    assert driver.events == []


async def test_request_body_over_the_limit_is_413() -> None:
    driver = FakeDriver()
    app = make_app(driver, max_body_bytes=1024)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as c:
        r = await c.post(
            "/Greeter/greet",
            content=b'"' + b"a" * 2000 + b'"',
            headers={"content-type": "application/json"},
        )

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"a" * 300

        streamed = await c.post(
            "/Greeter/raw", content=chunks(), headers={"content-type": "application/octet-stream"}
        )
    assert r.status_code == 413 and "1024 bytes" in r.json()["message"]
    assert "--max-body-size" in r.json()["message"]
    assert streamed.status_code == 413
    assert driver.events == []


@pytest.mark.parametrize(("verb", "wait"), [("attach", True), ("output", False)])
async def test_attach_and_output_by_invocation_id(
    client: httpx.AsyncClient, driver: FakeDriver, verb: str, wait: bool
) -> None:
    driver.responder = lambda e: output(b"42")
    r = await client.get(f"/restate/invocation/{INVOCATION_ID}/{verb}")
    assert r.status_code == 200 and r.json() == 42
    event = driver.last
    assert isinstance(event, AttachRequested)
    assert event.by is AttachBy.INVOCATION_ID and event.wait is wait
    assert event.invocation_id == INVOCATION_ID


async def test_output_not_ready_is_470(client: httpx.AsyncClient, driver: FakeDriver) -> None:
    driver.responder = lambda e: Reply(
        ReplyKind.NOT_READY, INVOCATION_ID, status=470, message="not completed"
    )
    r = await client.get("/restate/workflow/Signup/k/output")
    assert r.status_code == 470
    assert "/attach" in r.json()["message"]


async def test_attach_to_an_unknown_invocation_is_404(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: Reply(ReplyKind.ERROR, status=404, message="invocation not found")
    r = await client.get("/restate/invocation/Greeter/greet/nokey/attach")
    assert r.status_code == 404 and r.json()["perdure_code"] == "PD-1011"


async def test_attach_by_body_and_lookup(client: httpx.AsyncClient, driver: FakeDriver) -> None:
    body = {"target": "Workflow", "workflowName": "Signup", "workflowKey": "k"}
    r = await client.post("/restate/attach", json=body)
    assert r.status_code == 200
    event = driver.last
    assert isinstance(event, AttachRequested) and event.by is AttachBy.WORKFLOW and event.wait
    look = await client.post("/restate/lookup", json=body)
    assert look.status_code == 200 and look.json()["invocationId"].startswith("inv_1")
    bad = await client.post("/restate/output", json={"target": "Nope"})
    assert bad.status_code == 400


async def test_awakeable_resolve_and_reject(client: httpx.AsyncClient, driver: FakeDriver) -> None:
    awk = AwakeableId(InvocationId.parse(INVOCATION_ID), 17).to_str()
    driver.responder = lambda e: Reply(ReplyKind.DONE, INVOCATION_ID, status=202)
    r = await client.post(f"/restate/awakeables/{awk}/resolve", json={"ok": True})
    assert r.status_code == 202 and r.content == b""
    event = driver.last
    assert isinstance(event, AwakeableCompleted)
    assert event.signal_index == 17 and event.invocation_id == INVOCATION_ID
    assert event.outcome == Outcome(value=b'{"ok":true}')
    await client.post(f"/restate/awakeables/{awk}/reject", content=b"no seats")
    rejected = driver.last
    assert isinstance(rejected, AwakeableCompleted)
    assert rejected.outcome == Outcome(failure=Failure(500, "no seats"))


async def test_awakeable_of_a_finished_invocation(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    awk = AwakeableId(InvocationId.parse(INVOCATION_ID), 17).to_str()
    driver.responder = lambda e: Reply(ReplyKind.ERROR, status=404, message="invocation not found")
    r = await client.post(f"/restate/awakeables/{awk}/resolve", json=1)
    assert r.status_code == 404


async def test_health_lists_services(client: httpx.AsyncClient) -> None:
    r = await client.get("/restate/health")
    assert r.status_code == 200 and r.json() == {"services": ["Counter", "Greeter", "Signup"]}


async def test_storage_failure_is_503_with_retry_advice(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: Reply(
        ReplyKind.ERROR, status=503, message="the server could not store the request (disk full)"
    )
    r = await client.post("/Greeter/greet", json="x")
    assert r.status_code == 503 and "idempotency-key" in r.json()["message"]


async def test_a_bug_in_the_driver_is_a_500_not_a_crash(driver: FakeDriver) -> None:
    def broken(event: Event) -> Reply:
        raise RuntimeError("boom")

    driver.responder = broken
    app = make_app(driver)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as c:
        r = await c.post("/Greeter/greet", json="x")
    assert r.status_code == 500 and r.json()["perdure_code"] == "PD-9006"


async def test_client_disconnect_stops_the_wait_not_the_invocation(driver: FakeDriver) -> None:
    """The event is submitted; when the client leaves, only the wait is dropped."""
    driver.hold = asyncio.Event()
    app = make_app(driver)
    body_sent = False
    disconnected = asyncio.Event()

    async def receive() -> dict[str, object]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b'"x"', "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/Greeter/greet",
        "raw_path": b"/Greeter/greet",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    task = asyncio.create_task(app(scope, receive, send))
    while not driver.events:
        await asyncio.sleep(0)
    disconnected.set()
    await asyncio.wait_for(task, 5)
    assert isinstance(driver.last, InvocationRequested)
    assert driver.cancelled == 1  # the wait was abandoned...
    assert sent == []  # ...and nothing was answered to a client that is gone


async def test_json_error_bodies_are_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 404
    assert json.loads(r.content)["code"] == 404
