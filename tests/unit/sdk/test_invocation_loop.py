"""The invocation loop against an in-memory server: basics, failures, ctx.run, state and
suspension, through run_invocation with receive/send."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.sdk.loop_server import Server, output_value, spec
from tests.unit.vm.fake_runtime import FakeRuntime
from tests.unit.vm.harness import input_command, start_message

from perdure.protocol.framing import decode_frames, encode_message
from perdure.protocol.messages import MessageType
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.context import Context, ObjectContext, ObjectSharedContext, RunOptions
from perdure.sdk.errors import RetryableError, TerminalError
from perdure.sdk.invocation import run_invocation

T = MessageType


# --- basics ---------------------------------------------------------------------------------


async def test_a_handler_returns_its_output_then_the_stream_ends() -> None:
    async def greet(ctx: Context, name: str) -> str:
        return f"Hello {name}!"

    server = Server()
    await server.invoke(spec(greet), "Till")

    assert server.names() == ["OUTPUT_COMMAND", "END"]
    assert output_value(server) == "Hello Till!"


async def test_a_handler_without_input_is_called_with_the_context_only() -> None:
    async def ping(ctx: Context) -> str:
        return "pong"

    server = Server()
    await server.invoke(spec(ping))
    assert output_value(server) == "pong"


async def test_the_request_carries_id_headers_body_and_attempt_headers() -> None:
    seen: dict[str, Any] = {}

    async def look(ctx: Context, body: Any) -> None:
        request = ctx.request()
        seen.update(id=request.id, body=request.body, attempt=dict(request.attempt_headers))

    server = Server()
    await server.invoke(spec(look), {"a": 1})
    assert seen == {"id": "inv_1test", "body": b'{"a": 1}', "attempt": {"x-attempt": "1"}}


@pytest.mark.parametrize("version", [5, 6, 7])
async def test_random_and_uuid_are_the_same_on_every_attempt(version: int) -> None:
    async def draw(ctx: Context) -> list[Any]:
        return [ctx.random().random(), str(ctx.uuid())]

    first, second = Server(version=version), Server(version=version)
    await first.invoke(spec(draw))
    await second.invoke(spec(draw))
    assert output_value(first) == output_value(second)


# --- failures -------------------------------------------------------------------------------


async def test_a_terminal_error_becomes_the_failed_output() -> None:
    async def refuse(ctx: Context) -> None:
        raise TerminalError("no way", status_code=422, metadata={"field": "amount"})

    server = Server()
    await server.invoke(spec(refuse))
    out = server.last(pb.OutputCommandMessage)
    assert (out.failure.code, out.failure.message) == (422, "no way")
    assert [(m.key, m.value) for m in out.failure.metadata] == [("field", "amount")]
    assert server.names()[-1] == "END"


async def test_a_retryable_error_fails_the_attempt_with_its_delay() -> None:
    async def later(ctx: Context) -> None:
        raise RetryableError("busy", retry_after=timedelta(seconds=3))

    server = Server()
    await server.invoke(spec(later))
    error = server.last(pb.ErrorMessage)
    assert (error.code, error.message, error.next_retry_delay) == (500, "busy", 3000)
    assert server.names() == ["ERROR"]


async def test_an_unexpected_exception_fails_the_attempt_with_its_stacktrace() -> None:
    async def buggy(ctx: Context) -> None:
        raise KeyError("missing")

    server = Server()
    await server.invoke(spec(buggy))
    error = server.last(pb.ErrorMessage)
    assert error.code == 500
    assert "KeyError" in error.message and "missing" in error.message
    assert "buggy" in error.stacktrace


async def test_a_terminal_error_wrapped_by_user_code_still_decides() -> None:
    async def wraps(ctx: Context) -> None:
        try:
            raise TerminalError("inner", 404)
        except TerminalError as exc:
            raise RuntimeError("outer") from exc

    server = Server()
    await server.invoke(spec(wraps))
    assert server.last(pb.OutputCommandMessage).failure.code == 404


async def test_a_nondeterministic_handler_fails_with_570_and_stops() -> None:
    reached: list[str] = []

    async def changed(ctx: ObjectContext) -> None:
        ctx.set("b", 1)  # the journal recorded a set of "a"
        reached.append("after")

    server = Server()
    await server.invoke(
        spec(changed, "VIRTUAL_OBJECT"),
        journal=[pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1"))],
    )
    error = server.last(pb.ErrorMessage)
    assert error.code == 570
    assert error.related_command_index == 1
    assert error.related_command_type == T.SET_STATE_COMMAND
    assert reached == []
    assert server.names() == ["ERROR"]


# --- ctx.run ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [5, 6, 7])
async def test_run_executes_sync_and_async_closures_and_journals_their_results(
    version: int,
) -> None:
    calls: list[str] = []

    def sync_step(x: int) -> int:
        calls.append("sync")
        return x * 2

    async def async_step(x: int) -> int:
        calls.append("async")
        return x + 1

    async def steps(ctx: Context, x: int) -> int:
        a = await ctx.run("double", sync_step, x)
        return await ctx.run("inc", async_step, a)

    server = Server(version=version)
    await server.invoke(spec(steps), 20)

    assert output_value(server) == 41
    assert calls == ["sync", "async"]
    proposals = [f for f in server.frames if f.message_type == T.PROPOSE_RUN_COMPLETION]
    assert [f.decode().value for f in proposals] == [b"40", b"41"]
    # V7 asks the server for a small ack; before V7 the server echoes the whole result.
    assert all(f.requested_ack == (version >= 7) for f in proposals)


async def test_a_journaled_run_is_not_executed_again() -> None:
    executed: list[int] = []

    async def once(ctx: Context) -> int:
        return await ctx.run("step", lambda: executed.append(1) or 7)

    server = Server()
    await server.invoke(
        spec(once),
        journal=[
            pb.RunCommandMessage(result_completion_id=1, name="step"),
            pb.RunCompletionNotificationMessage(completion_id=1, value=pb.Value(content=b"5")),
        ],
    )
    assert executed == []
    assert output_value(server) == 5


async def test_a_terminal_error_in_a_run_is_journaled_and_raised_to_the_handler() -> None:
    def charge() -> None:
        raise TerminalError("card declined", 402)

    async def pay(ctx: Context) -> str:
        try:
            await ctx.run("charge", charge)
        except TerminalError as exc:
            return f"failed: {exc.message} ({exc.status_code})"
        return "paid"

    server = Server()
    await server.invoke(spec(pay))
    proposal = server.last(pb.ProposeRunCompletionMessage)
    assert (proposal.failure.code, proposal.failure.message) == (402, "card declined")
    assert output_value(server) == "failed: card declined (402)"


async def test_a_failing_run_fails_the_attempt_naming_the_run_and_the_delay() -> None:
    def flaky() -> None:
        raise ConnectionError("reset")

    async def call_api(ctx: Context) -> None:
        await ctx.run("call api", flaky, options=RunOptions(max_attempts=3))

    server = Server()
    await server.invoke(spec(call_api))
    error = server.last(pb.ErrorMessage)
    assert error.message == "ConnectionError: reset"
    assert (error.related_command_index, error.related_command_name) == (1, "call api")
    assert error.related_command_type == T.RUN_COMMAND
    assert error.next_retry_delay == 50  # the first retry of the default backoff
    assert "flaky" in error.stacktrace


async def test_a_run_out_of_attempts_journals_the_failure_so_the_handler_can_compensate() -> None:
    def flaky() -> None:
        raise ConnectionError("reset")

    async def call_api(ctx: Context) -> str:
        try:
            await ctx.run("call api", flaky, options=RunOptions(max_attempts=3))
        except TerminalError as exc:
            return f"gave up: {exc.message}"
        return "ok"

    # The third attempt: the run is journaled, the server counted two failures since.
    server = Server(retry_count_since_last_stored_entry=2, duration_since_last_stored_entry=90)
    await server.invoke(
        spec(call_api), journal=[pb.RunCommandMessage(result_completion_id=1, name="call api")]
    )
    proposal = server.last(pb.ProposeRunCompletionMessage)
    assert proposal.failure.message == "ConnectionError: reset"
    assert output_value(server) == "gave up: ConnectionError: reset"


async def test_a_retryable_error_in_a_run_sets_the_next_delay() -> None:
    def limited() -> None:
        raise RetryableError("slow down", retry_after=timedelta(seconds=2))

    async def call_api(ctx: Context) -> None:
        await ctx.run("call api", limited)

    server = Server()
    await server.invoke(spec(call_api))
    assert server.last(pb.ErrorMessage).next_retry_delay == 2000


async def test_time_is_journaled_as_a_run() -> None:
    async def now(ctx: Context) -> float:
        return await ctx.time()

    server = Server()
    await server.invoke(
        spec(now),
        journal=[
            pb.RunCommandMessage(result_completion_id=1, name="timestamp"),
            pb.RunCompletionNotificationMessage(
                completion_id=1, value=pb.Value(content=b"1700000000.5")
            ),
        ],
    )
    assert output_value(server) == 1700000000.5


# --- state ----------------------------------------------------------------------------------


async def test_state_is_read_eagerly_when_the_server_sent_it() -> None:
    async def count(ctx: ObjectContext) -> int:
        n = (await ctx.get("n")) or 0
        ctx.set("n", n + 1)
        return n + 1

    server = Server(state_map=[pb.StartMessage.StateEntry(key=b"n", value=b"41")], key="k")
    await server.invoke(spec(count, "VIRTUAL_OBJECT"))
    assert server.names()[:2] == ["GET_EAGER_STATE_COMMAND", "SET_STATE_COMMAND"]
    assert output_value(server) == 42


async def test_state_is_read_lazily_when_the_map_is_partial() -> None:
    runtime = FakeRuntime(state={"n": b"9"})

    async def read(ctx: ObjectSharedContext) -> Any:
        return [ctx.key(), await ctx.get("n"), await ctx.state_keys()]

    server = Server(runtime, key="k")
    await server.invoke(spec(read, "VIRTUAL_OBJECT", "SHARED"))
    assert server.names()[:2] == ["GET_LAZY_STATE_COMMAND", "GET_LAZY_STATE_KEYS_COMMAND"]
    assert output_value(server) == ["k", 9, ["n"]]


async def test_cleared_state_reads_as_none_without_asking_the_server() -> None:
    async def reset(ctx: ObjectContext) -> Any:
        ctx.clear_all()
        return [await ctx.get("n"), await ctx.state_keys()]

    server = Server()
    await server.invoke(spec(reset, "VIRTUAL_OBJECT"))
    assert "GET_LAZY_STATE_COMMAND" not in server.names()
    assert output_value(server) == [None, []]


# --- suspension -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [5, 6, 7])
async def test_in_request_response_mode_an_unfinished_sleep_suspends(version: int) -> None:
    async def nap(ctx: Context) -> str:
        await ctx.sleep(timedelta(hours=1))
        return "rested"

    server = Server(version=version, request_response=True)
    await server.invoke(spec(nap))
    assert server.names() == ["SLEEP_COMMAND", "SUSPENSION"]
    sleep = server.frames[0].decode()
    assert sleep.wake_up_time > 1_700_000_000_000


async def test_a_resumed_invocation_replays_the_sleep_and_finishes() -> None:
    async def nap(ctx: Context) -> str:
        await ctx.sleep(timedelta(hours=1))
        return "rested"

    server = Server(request_response=True)
    await server.invoke(
        spec(nap),
        journal=[
            pb.SleepCommandMessage(wake_up_time=1, result_completion_id=1),
            pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()),
        ],
    )
    assert server.names() == ["OUTPUT_COMMAND", "END"]


async def test_a_bidi_stream_closed_by_the_server_suspends_the_waiting_handler() -> None:
    runtime = FakeRuntime(hold=frozenset({T.SLEEP_COMMAND}))

    async def nap(ctx: Context) -> None:
        await ctx.sleep(timedelta(hours=1))

    server = Server(runtime)
    task = asyncio.create_task(server.invoke(spec(nap)))
    while "AWAITING_ON" not in server.names(hints=True):
        await asyncio.sleep(0)
    server.close()  # the server gives up on the stream: the SDK must suspend
    await task
    assert server.names(hints=True) == ["SLEEP_COMMAND", "AWAITING_ON", "SUSPENSION"]


# --- a transport that fails -------------------------------------------------------------------


async def test_a_failing_receive_ends_the_input_and_the_handler_suspends() -> None:
    chunks = [encode_message(start_message(1)) + encode_message(input_command())]
    sent: list[bytes] = []

    async def receive() -> bytes | None:
        if chunks:
            return chunks.pop()
        raise ConnectionResetError("gone")

    async def send(data: bytes) -> None:
        sent.append(data)

    async def nap(ctx: Context) -> None:
        await ctx.sleep(timedelta(hours=1))

    await run_invocation(
        spec(nap), protocol_version=7, receive=receive, send=send, request_response=False
    )
    assert [f.name for f in decode_frames(b"".join(sent))][-1] == "SUSPENSION"


async def test_a_failing_send_stops_the_handler_without_raising() -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    queue.put_nowait(encode_message(start_message(1)) + encode_message(input_command()))
    reached: list[str] = []

    async def send(data: bytes) -> None:
        raise BrokenPipeError("closed")

    async def keep_going(ctx: Context) -> None:
        try:
            await ctx.sleep(timedelta(hours=1))
        except Exception:  # what careless handler code does; it must not swallow the stop
            reached.append("swallowed")
        reached.append("after")

    await run_invocation(
        spec(keep_going), protocol_version=7, receive=queue.get, send=send, request_response=False
    )
    assert reached == []
