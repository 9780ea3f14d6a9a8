"""The invocation loop against an in-memory server: calls, awakeables, promises,
cancellation, combinators, parallel awaits, and the ASGI endpoint in front of it all."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.unit.sdk.loop_server import Server, output_value, spec
from tests.unit.vm.fake_runtime import FakeRuntime
from tests.unit.vm.harness import start_message

from perdure.protocol.framing import decode_frames, encode_message
from perdure.protocol.messages import Frame, MessageType
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk import combinators
from perdure.sdk.context import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)
from perdure.sdk.errors import InvocationCancelledError, TerminalError

T = MessageType


# --- calls and sends ------------------------------------------------------------------------


async def test_a_call_by_name_sends_json_and_decodes_the_result() -> None:
    runtime = FakeRuntime(call_results=lambda call: pb.Value(content=b'"Hello Till"'))

    async def relay(ctx: Context) -> Any:
        future = ctx.service_call(("Greeter", "greet"), "Till", headers={"h": "v"})
        return [await future, await future.invocation_id()]

    server = Server(runtime)
    await server.invoke(spec(relay))
    call = server.last(pb.CallCommandMessage)
    assert (call.service_name, call.handler_name, call.parameter) == ("Greeter", "greet", b'"Till"')
    assert [(h.key, h.value) for h in call.headers] == [("h", "v")]
    assert output_value(server) == ["Hello Till", "inv_child1"]


async def test_a_failed_call_raises_a_terminal_error() -> None:
    runtime = FakeRuntime(call_results=lambda call: pb.Failure(code=404, message="no such user"))

    async def relay(ctx: Context) -> str:
        try:
            await ctx.object_call("Users/get", "u1", None)
        except TerminalError as exc:
            return f"{exc.status_code} {exc.message}"
        return "found"

    server = Server(runtime)
    await server.invoke(spec(relay))
    assert server.last(pb.CallCommandMessage).key == "u1"
    assert output_value(server) == "404 no such user"


async def test_a_generic_call_and_a_delayed_send_carry_raw_bytes() -> None:
    async def fan_out(ctx: Context) -> Any:
        echoed = await ctx.generic_call("Echo", "echo", b"\x00raw", key="k")
        handle = ctx.generic_send("Mailer", "send", b"{}", delay=timedelta(minutes=5))
        return [echoed.hex(), await handle.invocation_id()]

    server = Server()
    await server.invoke(spec(fan_out))
    send = server.last(pb.OneWayCallCommandMessage)
    assert send.invoke_time > 1_700_000_000_000 and send.parameter == b"{}"
    assert output_value(server) == ["00726177", "inv_child3"]


async def test_cancel_invocation_sends_the_cancel_signal() -> None:
    async def stop(ctx: Context) -> None:
        ctx.cancel_invocation("inv_1other")

    server = Server()
    await server.invoke(spec(stop))
    signal = server.last(pb.SendSignalCommandMessage)
    assert (signal.target_invocation_id, signal.idx) == ("inv_1other", 1)


# --- awakeables, signals, promises ------------------------------------------------------------


async def test_an_awakeable_is_resolved_by_the_server_later() -> None:
    ids: list[str] = []

    async def wait_for_human(ctx: Context) -> Any:
        awakeable_id, answer = ctx.awakeable()
        ids.append(awakeable_id)
        return await answer

    server = Server()
    task = asyncio.create_task(server.invoke(spec(wait_for_human)))
    while not ids:
        await asyncio.sleep(0)
    server.deliver(pb.SignalNotificationMessage(idx=17, value=pb.Value(content=b'"approved"')))
    await task
    assert ids[0].startswith("sign_1")
    assert output_value(server) == "approved"


async def test_resolving_and_rejecting_awakeables_and_signals() -> None:
    async def complete(ctx: Context) -> None:
        ctx.resolve_awakeable("sign_1abc", {"ok": True})
        ctx.reject_awakeable("sign_1def", "nope", 400)
        ctx.resolve_signal("inv_1x", "go", 1)
        ctx.reject_signal("inv_1x", "stop", "halt")

    server = Server()
    await server.invoke(spec(complete))
    assert server.names()[:4] == [
        "COMPLETE_AWAKEABLE_COMMAND",
        "COMPLETE_AWAKEABLE_COMMAND",
        "SEND_SIGNAL_COMMAND",
        "SEND_SIGNAL_COMMAND",
    ]
    first, second = server.frames[0].decode(), server.frames[1].decode()
    assert first.value.content == b'{"ok":true}'
    assert (second.failure.code, second.failure.message) == (400, "nope")


async def test_a_workflow_awaits_its_promise_and_a_shared_handler_resolves_it() -> None:
    runtime = FakeRuntime(promises={})

    async def approve(ctx: WorkflowSharedContext, verdict: bool) -> Any:
        await ctx.promise("verdict").resolve(verdict)
        return await ctx.promise("verdict").peek()

    async def run(ctx: WorkflowContext) -> Any:
        return await ctx.promise("verdict", type_hint=bool).value()

    server = Server(runtime, key="wf-1")
    await server.invoke(spec(approve, "WORKFLOW", "SHARED"), True)
    assert output_value(server) is True

    second = Server(runtime, key="wf-1")
    await second.invoke(spec(run, "WORKFLOW", "WORKFLOW"))
    assert output_value(second) is True


async def test_attach_invocation_returns_the_other_invocations_result() -> None:
    async def attach(ctx: Context) -> Any:
        return await ctx.attach_invocation("inv_1other")

    server = Server(request_response=True)
    await server.invoke(
        spec(attach),
        journal=[
            pb.AttachInvocationCommandMessage(invocation_id="inv_1other", result_completion_id=1),
            pb.AttachInvocationCompletionNotificationMessage(
                completion_id=1, value=pb.Value(content=b"[1,2]")
            ),
        ],
    )
    assert output_value(server) == [1, 2]


# --- cancellation ---------------------------------------------------------------------------


async def test_cancellation_raises_into_the_handler_which_can_compensate() -> None:
    runtime = FakeRuntime(hold=frozenset({T.SLEEP_COMMAND}))
    compensated: list[str] = []

    async def booking(ctx: Context) -> str:
        await ctx.run("reserve", lambda: "seat 1")
        try:
            await ctx.sleep(timedelta(days=1))
        except InvocationCancelledError:
            await ctx.run("release", lambda: compensated.append("released"))
            raise
        return "booked"

    server = Server(runtime)
    task = asyncio.create_task(server.invoke(spec(booking)))
    while "SLEEP_COMMAND" not in server.names():
        await asyncio.sleep(0)
    server.deliver(pb.SignalNotificationMessage(idx=1, void=pb.Void()))
    await task
    assert compensated == ["released"]
    out = server.last(pb.OutputCommandMessage)
    assert (out.failure.code, out.failure.message) == (409, "cancelled")


async def test_cancellation_cancels_the_calls_this_invocation_made() -> None:
    runtime = FakeRuntime(hold=frozenset())

    async def parent(ctx: Context) -> None:
        await ctx.sleep(timedelta(seconds=1))
        await ctx.service_call("Child/work", None)

    server = Server(runtime, request_response=True)
    await server.invoke(
        spec(parent),
        journal=[
            pb.SleepCommandMessage(result_completion_id=1),
            pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()),
            pb.CallCommandMessage(
                service_name="Child",
                handler_name="work",
                invocation_id_notification_idx=2,
                result_completion_id=3,
            ),
            pb.CallInvocationIdCompletionNotificationMessage(
                completion_id=2, invocation_id="inv_1child"
            ),
            pb.SignalNotificationMessage(idx=1, void=pb.Void()),
        ],
    )
    cancel = server.last(pb.SendSignalCommandMessage)
    assert (cancel.target_invocation_id, cancel.idx) == ("inv_1child", 1)
    assert server.last(pb.OutputCommandMessage).failure.code == 409


# --- combinators and parallel awaits ---------------------------------------------------------


async def test_select_between_a_promise_and_a_timeout_suspends_on_both() -> None:
    async def wait(ctx: WorkflowContext) -> Any:
        return await combinators.select(
            answer=ctx.promise("answer").value(), timeout=ctx.sleep(timedelta(hours=1))
        )

    server = Server(request_response=True)
    await server.invoke(spec(wait, "WORKFLOW", "WORKFLOW"))
    suspension = server.last(pb.SuspensionMessage).awaiting_on
    assert suspension.combinator_type == pb.FIRST_COMPLETED
    assert list(suspension.waiting_signals) == [1]
    (race,) = suspension.nested_futures
    assert race.combinator_type == pb.FIRST_COMPLETED
    assert sorted(race.waiting_completions) == [1, 2]


async def test_select_returns_the_first_to_complete_by_name() -> None:
    async def wait(ctx: WorkflowContext) -> Any:
        return list(
            await combinators.select(
                answer=ctx.promise("answer").value(), timeout=ctx.sleep(timedelta(hours=1))
            )
        )

    server = Server(request_response=True)
    await server.invoke(
        spec(wait, "WORKFLOW", "WORKFLOW"),
        journal=[
            pb.GetPromiseCommandMessage(key="answer", result_completion_id=1),
            pb.SleepCommandMessage(result_completion_id=2),
            pb.SleepCompletionNotificationMessage(completion_id=2, void=pb.Void()),
        ],
    )
    assert output_value(server) == ["timeout", None]


async def test_gather_all_settled_race_and_as_completed() -> None:
    async def fan(ctx: Context) -> Any:
        a = ctx.run("a", lambda: 1)
        b = ctx.run("b", lambda: 2)
        gathered = await combinators.gather(a, b)
        bad = ctx.run("bad", _terminal)
        settled = await combinators.all_settled(ctx.run("c", lambda: 3), bad)
        first = await combinators.race(ctx.run("d", lambda: 4), ctx.sleep(timedelta(hours=1)))
        order = [await f async for f in combinators.as_completed(ctx.run("e", lambda: 5))]
        return [gathered, settled[0], type(settled[1]).__name__, first, order]

    server = Server(FakeRuntime(hold=frozenset({T.SLEEP_COMMAND})))
    await server.invoke(spec(fan))
    assert output_value(server) == [[1, 2], 3, "TerminalError", 4, [5]]


async def test_gather_raises_the_first_failure() -> None:
    async def fan(ctx: Context) -> str:
        try:
            await combinators.gather(ctx.run("ok", lambda: 1), ctx.run("bad", _terminal))
        except TerminalError as exc:
            return exc.message
        return "no failure"

    server = Server()
    await server.invoke(spec(fan))
    assert output_value(server) == "boom"


async def test_first_succeeded_skips_failures() -> None:
    async def fan(ctx: Context) -> Any:
        return await combinators.first_succeeded(
            ctx.run("bad", _terminal), ctx.run("ok", lambda: 7)
        )

    server = Server()
    await server.invoke(spec(fan))
    assert output_value(server) == 7


async def test_durable_futures_can_be_awaited_from_parallel_tasks() -> None:
    async def parallel(ctx: Context) -> Any:
        async def step(name: str, value: int) -> int:
            return await ctx.run(name, lambda: value)

        first = ctx.sleep(timedelta(milliseconds=1))
        results = await asyncio.gather(first, step("a", 1), step("b", 2))
        return results[1:]

    server = Server()
    await server.invoke(spec(parallel))
    assert output_value(server) == [1, 2]


def _terminal() -> None:
    raise TerminalError("boom")


# --- through the endpoint -------------------------------------------------------------------


async def test_the_endpoint_runs_service_definitions_through_run_invocation() -> None:
    import httpx

    from perdure.sdk.endpoint import app
    from perdure.sdk.service import Service, VirtualObject

    greeter = Service("Greeter")

    @greeter.handler()
    async def greet(ctx: Context, name: str) -> str:
        await ctx.run("log", lambda: None)
        return f"Hello {name}!"

    counter = VirtualObject("Counter")

    @counter.handler()
    async def add(ctx: ObjectContext, delta: int) -> int:
        total = (await ctx.get("total", type_hint=int) or 0) + delta
        ctx.set("total", total)
        return total

    @counter.handler(kind="shared")
    async def peek(ctx: ObjectSharedContext) -> int:
        return await ctx.get("total", type_hint=int) or 0

    application = app([greeter, counter])
    content_type = "application/vnd.restate.invocation.v5"

    async def invoke(path: str, body: bytes, **start: Any) -> list[Frame]:
        frames = encode_message(start_message(1, **start)) + encode_message(
            pb.InputCommandMessage(value=pb.Value(content=body))
        )
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://sdk") as client:
            response = await client.post(
                path, content=frames, headers={"content-type": content_type}
            )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == content_type
        return decode_frames(response.content)

    frames = await invoke("/invoke/Greeter/greet", b'"Till"')
    # HTTP/1.1 is request/response: the run's result cannot be confirmed in this attempt.
    assert [f.name for f in frames] == ["RUN_COMMAND", "PROPOSE_RUN_COMPLETION", "SUSPENSION"]

    state = [pb.StartMessage.StateEntry(key=b"total", value=b"41")]
    frames = await invoke("/invoke/Counter/add", b"1", key="c", state_map=state)
    assert [f.name for f in frames] == [
        "GET_EAGER_STATE_COMMAND",
        "SET_STATE_COMMAND",
        "OUTPUT_COMMAND",
        "END",
    ]
    assert frames[2].decode().value.content == b"42"

    frames = await invoke("/invoke/Counter/peek", b"", key="c", state_map=state)
    assert frames[-2].decode().value.content == b"41"


async def test_a_call_to_a_handler_function_uses_its_names_and_serdes() -> None:
    from perdure.sdk.service import Service

    greeter = Service("Greeter")

    @greeter.handler()
    async def greet(ctx: Context, name: str) -> str:
        return name

    runtime = FakeRuntime(call_results=lambda call: pb.Value(content=b'"Hi"'))

    async def relay(ctx: Context) -> str:
        result: str = await ctx.service_call(greet, "Till")
        return result

    server = Server(runtime)
    await server.invoke(spec(relay))
    call = server.last(pb.CallCommandMessage)
    assert (call.service_name, call.handler_name, call.parameter) == ("Greeter", "greet", b'"Till"')
    assert output_value(server) == "Hi"


async def test_the_context_cannot_be_used_inside_a_run_closure() -> None:
    async def nested(ctx: Context) -> str:
        async def step() -> None:
            await ctx.sleep(timedelta(seconds=1))

        try:
            await ctx.run("step", step)
        except TerminalError as exc:
            return exc.message
        return "allowed"

    server = Server()
    await server.invoke(spec(nested))
    assert "inside ctx.run('step')" in output_value(server)
    assert "SLEEP_COMMAND" not in server.names()
