"""Client and AsyncClient against a fake ingress (httpx.MockTransport): same calls, same answers."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from perdure.client import (
    AsyncClient,
    Client,
    InvocationFailedError,
    NotFoundError,
    NotReadyError,
    SendReceipt,
    UnreachableError,
)
from perdure.sdk.service import Service, VirtualObject, Workflow


@dataclasses.dataclass
class Order:
    id: int
    items: list[str]


@dataclasses.dataclass
class Receipt:
    order: int
    total: float


shop = Service("Shop")


@shop.handler()
async def buy(ctx: Any, order: Order) -> Receipt:
    return Receipt(order.id, 9.5)


@shop.handler()
async def ping(ctx: Any) -> None:
    return None


counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: Any, delta: int) -> int:
    return delta


@counter.handler()
async def upload(ctx: Any, data: bytes) -> bytes:
    return data


signup = Workflow("Signup")


@signup.main()
async def start(ctx: Any, email: str) -> bool:
    return True


@signup.handler()
async def confirm(ctx: Any, code: str) -> None:
    return None


class FakeIngress:
    """Answers like Restate's ingress for a few paths, and records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.raw_path.decode().partition("?")[0]  # still percent-encoded
        json_answer = {"content-type": "application/json"}
        if path.endswith("/send"):
            body = {"invocationId": "inv_1", "status": "Accepted"}
            return httpx.Response(202, json=body)
        if path == "/Shop/buy":
            order = json.loads(request.content)
            return httpx.Response(200, json={"order": order["id"], "total": 9.5})
        if path == "/Shop/ping":
            return httpx.Response(200)
        if path == "/Counter/my%20key/add":
            return httpx.Response(200, content=request.content, headers=json_answer)
        if path == "/Counter/k/upload":
            return httpx.Response(
                200,
                content=request.content[::-1],
                headers={"content-type": "application/octet-stream"},
            )
        if path == "/restate/workflow/Signup/ada/attach":
            return httpx.Response(200, content=b"true", headers=json_answer)
        if path == "/restate/workflow/Signup/ada/output":
            return httpx.Response(470, json={"code": 470, "message": "not ready"})
        if path == "/restate/invocation/inv_1/attach":
            return httpx.Response(200, json="done")
        if path == "/restate/invocation/inv_bad/output":
            return httpx.Response(
                418,
                json={"code": 418, "message": "teapot"},
                headers={"x-restate-error-source": "invocation"},
            )
        if path.startswith("/restate/awakeables/"):
            return httpx.Response(202)
        if path == "/deployments":
            return httpx.Response(201, json={"id": "dp_1", "services": [{"name": "Shop"}]})
        return httpx.Response(
            404,
            json={"code": 404, "message": f"service not found: {path}"},
            headers={"x-restate-error-source": "ingress"},
        )

    def last(self) -> httpx.Request:
        return self.requests[-1]


class Shell:
    """One of the two clients, with `run` to get a result whether or not it must be awaited."""

    def __init__(self, client: Client | AsyncClient) -> None:
        self.client: Any = client

    async def run(self, result: Any) -> Any:
        return await result if inspect.isawaitable(result) else result


@pytest.fixture
def ingress() -> FakeIngress:
    return FakeIngress()


@pytest.fixture(params=["sync", "async"])
async def shell(request: pytest.FixtureRequest, ingress: FakeIngress) -> AsyncIterator[Shell]:
    urls = {"ingress_url": "http://ingress:8080", "admin_url": "http://admin:9070"}
    if request.param == "sync":
        with Client(
            **urls, headers={"authorization": "Bearer t"}, transport=httpx.MockTransport(ingress)
        ) as client:
            yield Shell(client)
    else:
        async with AsyncClient(
            **urls, headers={"authorization": "Bearer t"}, transport=httpx.MockTransport(ingress)
        ) as aclient:
            yield Shell(aclient)


async def test_typed_calls_serialise_input_and_read_typed_output(
    shell: Shell, ingress: FakeIngress
) -> None:
    receipt = await shell.run(shell.client.service(shop).buy(Order(7, ["a"])))
    assert receipt == Receipt(7, 9.5)
    request = ingress.last()
    assert str(request.url) == "http://ingress:8080/Shop/buy"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer t"
    assert json.loads(request.content) == {"id": 7, "items": ["a"]}


async def test_handlers_without_input_send_no_body(shell: Shell, ingress: FakeIngress) -> None:
    assert await shell.run(shell.client.service(shop).ping()) is None
    assert ingress.last().content == b""
    assert "content-type" not in ingress.last().headers
    with pytest.raises(TypeError, match="takes no input"):
        await shell.run(shell.client.service(shop).ping("x"))


async def test_objects_are_called_with_their_key(shell: Shell, ingress: FakeIngress) -> None:
    result = await shell.run(shell.client.object(counter, "my key").add(5, idempotency_key="i"))
    assert result == 5
    assert ingress.last().headers["idempotency-key"] == "i"


async def test_bytes_handlers_send_and_receive_raw_bytes(
    shell: Shell, ingress: FakeIngress
) -> None:
    result = await shell.run(shell.client.object(counter, "k").upload(b"\x01\x02"))
    assert result == b"\x02\x01"
    assert ingress.last().headers["content-type"] == "application/octet-stream"


async def test_sends_return_receipts_and_carry_delays(shell: Shell, ingress: FakeIngress) -> None:
    receipt = await shell.run(
        shell.client.service(shop).buy.send(Order(1, []), delay=timedelta(seconds=90))
    )
    assert receipt == SendReceipt("inv_1", "Accepted")
    assert str(ingress.last().url) == "http://ingress:8080/Shop/buy/send?delay=PT90S"


async def test_workflows_submit_once_and_attach(shell: Shell, ingress: FakeIngress) -> None:
    flow = shell.client.workflow(signup, "ada")
    receipt = await shell.run(flow.submit("ada@example.com"))
    assert receipt.invocation_id == "inv_1"
    assert ingress.last().url.path == "/Signup/ada/start/send"  # the run handler's own name
    assert await shell.run(flow.attach()) is True
    with pytest.raises(NotReadyError, match="not ready"):
        await shell.run(flow.output())
    await shell.run(flow.confirm.send("123"))
    assert ingress.last().url.path == "/Signup/ada/confirm/send"


async def test_plain_calls_by_name_speak_json(shell: Shell, ingress: FakeIngress) -> None:
    assert await shell.run(shell.client.call("Counter", "add", 3, key="my key")) == 3
    receipt = await shell.run(shell.client.send("Greeter", "greet", "Ada", idempotency_key="x"))
    assert receipt.invocation_id == "inv_1"
    assert ingress.last().content == b'"Ada"'
    assert await shell.run(shell.client.attach("inv_1")) == "done"


async def test_named_workflows_default_to_a_run_handler(shell: Shell, ingress: FakeIngress) -> None:
    await shell.run(shell.client.workflow("Signup", "ada").submit())
    assert ingress.last().url.path == "/Signup/ada/run/send"
    await shell.run(shell.client.workflow("Signup", "ada", run_handler="begin").submit())
    assert ingress.last().url.path == "/Signup/ada/begin/send"


async def test_errors_arrive_typed(shell: Shell) -> None:
    with pytest.raises(NotFoundError, match="service not found: /Nope/x"):
        await shell.run(shell.client.call("Nope", "x"))
    with pytest.raises(InvocationFailedError) as info:
        await shell.run(shell.client.output("inv_bad"))
    assert (info.value.code, info.value.message) == (418, "teapot")


async def test_awakeables_and_deployments(shell: Shell, ingress: FakeIngress) -> None:
    await shell.run(shell.client.resolve_awakeable("sign_1", {"ok": True}))
    assert ingress.last().content == b'{"ok":true}'
    await shell.run(shell.client.reject_awakeable("sign_1", "no"))
    assert ingress.last().url.path == "/restate/awakeables/sign_1/reject"
    deployment = await shell.run(shell.client.register_deployment("http://127.0.0.1:9080"))
    assert deployment.services == ("Shop",)
    assert str(ingress.last().url) == "http://admin:9070/deployments"


async def test_idempotent_calls_can_be_found_again(shell: Shell, ingress: FakeIngress) -> None:
    with pytest.raises(NotFoundError):
        await shell.run(shell.client.service(shop).buy.attach("order-7"))
    assert ingress.last().url.path == "/restate/invocation/Shop/buy/order-7/attach"


async def test_the_wrong_kind_of_target_is_refused(shell: Shell) -> None:
    with pytest.raises(TypeError, match=r"use client\.object\(Counter, key\)"):
        shell.client.service(counter)
    with pytest.raises(TypeError, match=r"use client\.service\(Shop\)"):
        shell.client.workflow(shop, "k")
    with pytest.raises(AttributeError, match="no handler 'nope'"):
        _ = shell.client.service(shop).nope
    with pytest.raises(TypeError, match="keys are strings"):
        shell.client.object(counter, 1)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_a_server_that_is_not_there_is_reported_clearly() -> None:
    client = Client(transport=httpx.MockTransport(_refuse))
    with client, pytest.raises(UnreachableError, match="no answer from the ingress at http://127"):
        client.call("Greeter", "greet", "x")


async def test_the_async_client_reports_it_the_same_way() -> None:
    async with AsyncClient(transport=httpx.MockTransport(_refuse)) as client:
        with pytest.raises(UnreachableError, match="is the server running there"):
            await client.register_deployment("http://127.0.0.1:9080")
