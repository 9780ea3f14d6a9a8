"""Replay through the whole SDK: a saga written with the context API, cut after every journal
entry, resumes with the same commands and the same result, at V5, V6 and V7."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from tests.unit.sdk.loop_server import Server, output_value, spec
from tests.unit.vm.fake_runtime import FakeRuntime, commands

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk import combinators
from perdure.sdk.context import WorkflowContext
from perdure.sdk.errors import TerminalError


def _charge(order: dict[str, Any]) -> str:
    return f"charged {order['amount']}"


def _declined() -> None:
    raise TerminalError("declined", 402)


async def saga(ctx: WorkflowContext, order: dict[str, Any]) -> Any:
    seen: list[Any] = [await ctx.get("status")]
    ctx.set("status", "started")
    seen.append(await ctx.run("charge", _charge, order))
    seen.append(str(ctx.uuid()))
    await ctx.sleep(timedelta(seconds=5))
    seen.append(await ctx.service_call(("Shipping", "ship"), order))
    first, second = await combinators.gather(ctx.run("a", lambda: 1), ctx.run("b", lambda: 2))
    seen.append(first + second)
    try:
        await ctx.run("loyalty", _declined)
    except TerminalError as exc:
        seen.append(exc.status_code)
    seen.append(await ctx.promise("approval").value())
    seen.append(await ctx.state_keys())
    ctx.clear("status")
    seen.append(ctx.random().randint(0, 1000))
    return seen


def timeless(journal: list[Message]) -> list[Message]:
    """The commands of a journal, without the wake-up times the clock chose."""
    out = []
    for msg in commands(journal):
        if isinstance(msg, pb.SleepCommandMessage):
            msg = pb.SleepCommandMessage(result_completion_id=msg.result_completion_id)
        out.append(msg)
    return out


def runtime(version: int) -> FakeRuntime:
    return FakeRuntime(version=version, promises={"approval": b"true"})


async def first_run(version: int) -> tuple[list[Message], Any]:
    server = Server(runtime(version), version=version, key="order-1", random_seed=7)
    await server.invoke(spec(saga, "WORKFLOW", "WORKFLOW"), {"amount": 30})
    return server.runtime.journal, output_value(server)


@pytest.mark.parametrize("version", [5, 6, 7])
async def test_the_saga_resumes_identically_from_every_journal_position(version: int) -> None:
    journal, result = await first_run(version)
    assert result[1] == "charged 30" and result[4] == 3 and result[5] == 402
    assert result[6] is True and result[7] == ["status"]

    for cut in range(1, len(journal) + 1):
        prefix = journal[:cut]
        fake = runtime(version)
        for msg in prefix:  # the server's state reflects what the prefix did
            if isinstance(msg, pb.SetStateCommandMessage):
                fake.state[msg.key.decode()] = msg.value.content
        server = Server(fake, version=version, key="order-1", random_seed=7)
        await server.resume(spec(saga, "WORKFLOW", "WORKFLOW"), prefix)
        if isinstance(prefix[-1], pb.OutputCommandMessage):
            assert server.names() == ["END"]  # everything, the output included, was replayed
        else:
            assert output_value(server) == result, f"cut at {cut}"
        assert timeless(server.runtime.journal) == timeless(journal), f"cut at {cut}"


@pytest.mark.parametrize("version", [5, 6, 7])
async def test_request_response_attempts_suspend_and_resume_until_the_end(version: int) -> None:
    _, result = await first_run(version)
    fake = runtime(version)
    journal: list[Message] = [pb.InputCommandMessage(value=pb.Value(content=b'{"amount":30}'))]
    endings: list[str] = []
    for _ in range(40):
        fake.journal, fake.ended_with = [], None
        server = Server(fake, version=version, request_response=True, key="order-1", random_seed=7)
        await server.resume(spec(saga, "WORKFLOW", "WORKFLOW"), journal)
        # The server stored what the attempt wrote, and answered it while it was suspended.
        journal = list(fake.journal)
        endings.append(type(fake.ended_with).__name__)
        if isinstance(fake.ended_with, pb.EndMessage):
            break
    assert endings[-1] == "EndMessage"
    assert set(endings[:-1]) == {"SuspensionMessage"}
    output = next(m for m in journal if isinstance(m, pb.OutputCommandMessage))
    assert json.loads(output.value.content) == result
