"""Orchestration test services written with the official `restate-sdk` (1.2.0), served by hypercorn.

Run: python -m tests.services.orchestration_app --port 9080 [--mode request_response]
Calls, sends, call ordering, awakeables, cancellation, kill, combinators, workflows and the
scenario services (sign-up, DAG fan-out, approval gate, nightly job) used by
tests/integration/orchestration. `ctx.run` executions are appended to the file named by the
LEDGER environment variable, one line each, so tests can count side effects.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import restate
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    TerminalError,
    WorkflowContext,
    WorkflowSharedContext,
)
from tests.services import serve_official

LEDGER = os.environ.get("LEDGER", "")


def ledger(line: str) -> None:
    if LEDGER:
        with open(LEDGER, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def _decode(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


# --- Proxy and TestUtils: calls and sends on behalf of the test ----------------------------------

proxy = restate.Service("Proxy")


def _send(ctx: Context, req: dict[str, Any]) -> restate.SendHandle:
    delay = req.get("delayMillis")
    return ctx.generic_send(
        req["serviceName"],
        req["handlerName"],
        _encode(req.get("message")),
        key=req.get("virtualObjectKey"),
        send_delay=timedelta(milliseconds=delay) if delay else None,
        idempotency_key=req.get("idempotencyKey"),
    )


def _call(ctx: Context, req: dict[str, Any]) -> restate.RestateDurableCallFuture[bytes]:
    return ctx.generic_call(
        req["serviceName"],
        req["handlerName"],
        _encode(req.get("message")),
        key=req.get("virtualObjectKey"),
        idempotency_key=req.get("idempotencyKey"),
        headers=req.get("headers"),
    )


@proxy.handler()
async def call(ctx: Context, req: dict[str, Any]) -> Any:
    """Calls the handler named in `req` and answers what it answered."""
    return _decode(await _call(ctx, req))


@proxy.handler(name="callWithId")
async def call_with_id(ctx: Context, req: dict[str, Any]) -> dict[str, Any]:
    """Calls, and answers the callee's invocation id next to its result (or failure)."""
    future = _call(ctx, req)
    callee = await future.invocation_id()
    try:
        return {"id": callee, "value": _decode(await future)}
    except TerminalError as exc:
        return {"id": callee, "error": exc.status_code, "message": exc.message}


@proxy.handler(name="oneWayCall")
async def one_way_call(ctx: Context, req: dict[str, Any]) -> str:
    """Sends (optionally delayed) and answers the new invocation's id."""
    return await _send(ctx, req).invocation_id()


@proxy.handler(name="manyCalls")
async def many_calls(ctx: Context, requests: list[dict[str, Any]]) -> None:
    """Sends or calls in order; calls flagged awaitAtTheEnd are awaited after all others."""
    pending = []
    for item in requests:
        if item["oneWayCall"]:
            _send(ctx, item["proxyRequest"])
        elif item["awaitAtTheEnd"]:
            pending.append(_call(ctx, item["proxyRequest"]))
        else:
            await _call(ctx, item["proxyRequest"])
    for future in pending:
        await future


@proxy.handler(name="attach")
async def attach(ctx: Context, invocation_id: str) -> Any:
    """AttachInvocationCommand: waits for another invocation's result."""
    return await ctx.attach_invocation(invocation_id)


test_utils = restate.Service("TestUtils")


@test_utils.handler(name="uppercaseEcho")
async def uppercase_echo(ctx: Context, text: str) -> str:
    return text.upper()


@test_utils.handler(name="echoHeaders")
async def echo_headers(ctx: Context) -> dict[str, str]:
    return dict(ctx.request().headers)


@test_utils.handler(name="cancelInvocation")
async def cancel_invocation(ctx: Context, invocation_id: str) -> None:
    """Cancels another invocation from a handler (SendSignalCommand with CANCEL)."""
    ctx.cancel_invocation(invocation_id)


@test_utils.handler(name="resolveAwakeable")
async def resolve_awakeable(ctx: Context, req: dict[str, Any]) -> None:
    """CompleteAwakeableCommand: resolves (or rejects) an awakeable by id."""
    if req.get("reject"):
        ctx.reject_awakeable(req["id"], req["reject"])
    else:
        ctx.resolve_awakeable(req["id"], req.get("value"))


# --- Virtual objects: counter, list, awakeable holder ---------------------------------------------

counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> dict[str, int]:
    old = await ctx.get("count", type_hint=int) or 0
    ctx.set("count", old + delta)
    return {"oldValue": old, "newValue": old + delta}


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


list_object = restate.VirtualObject("ListObject")


@list_object.handler()
async def append(ctx: ObjectContext, value: str) -> None:
    items = await ctx.get("list", type_hint=list) or []
    ctx.set("list", [*items, value])


@list_object.handler(name="clear")
async def clear(ctx: ObjectContext) -> list[str]:
    items = await ctx.get("list", type_hint=list) or []
    ctx.clear("list")
    return items


awakeable_holder = restate.VirtualObject("AwakeableHolder")


@awakeable_holder.handler()
async def hold(ctx: ObjectContext, awakeable_id: str) -> None:
    ctx.set("id", awakeable_id)


@awakeable_holder.handler(name="hasAwakeable")
async def has_awakeable(ctx: ObjectContext) -> bool:
    return await ctx.get("id", type_hint=str) is not None


@awakeable_holder.handler()
async def unlock(ctx: ObjectContext, payload: str) -> None:
    awakeable_id = await ctx.get("id", type_hint=str)
    if awakeable_id is None:
        raise TerminalError("no awakeable is held yet; call hold first", status_code=404)
    ctx.resolve_awakeable(awakeable_id, payload)
    ctx.clear("id")


# --- Cancellation and kill ----------------------------------------------------------------------

cancel_runner = restate.VirtualObject("CancelTestRunner")


@cancel_runner.handler(name="startTest")
async def start_test(ctx: ObjectContext, operation: str) -> None:
    """Calls the blocking service; a cancellation (409) is caught and recorded."""
    try:
        await ctx.object_call(block, key=ctx.key(), arg=operation)
    except TerminalError as exc:
        if exc.status_code != 409:
            raise
        ctx.set("cancelled", True)


@cancel_runner.handler(name="verifyTest")
async def verify_test(ctx: ObjectContext) -> bool:
    return await ctx.get("cancelled", type_hint=bool) or False


blocking_service = restate.VirtualObject("CancelTestBlockingService")


@blocking_service.handler()
async def block(ctx: ObjectContext, operation: str) -> None:
    name, awakeable = ctx.awakeable(type_hint=str)
    await ctx.object_call(hold, key=ctx.key(), arg=name)
    await awakeable
    if operation == "CALL":
        await ctx.object_call(block, key=ctx.key(), arg=operation)  # waits in our own inbox
    elif operation == "SLEEP":
        await ctx.sleep(timedelta(days=1024))
    elif operation == "AWAKEABLE":
        _, never = ctx.awakeable()
        await never


@blocking_service.handler(name="isUnlocked")
async def is_unlocked(ctx: ObjectContext) -> None:
    return None


compensating = restate.Service("Compensating")


@compensating.handler(name="bookTrip")
async def book_trip(ctx: Context, trip: str) -> str:
    """Books, waits for a confirmation awakeable, and undoes the booking when cancelled."""
    await ctx.run_typed("book", lambda: ledger(f"book:{trip}"))
    name, confirmation = ctx.awakeable(type_hint=str)
    ctx.object_send(hold, key=trip, arg=name)
    try:
        return await confirmation
    except TerminalError:
        await ctx.run_typed("undo", lambda: ledger(f"undo:{trip}"))
        raise


kill_runner = restate.VirtualObject("KillTestRunner")


@kill_runner.handler(name="startCallTree")
async def start_call_tree(ctx: ObjectContext) -> None:
    await ctx.object_call(recursive_call, key=ctx.key(), arg=None)


kill_singleton = restate.VirtualObject("KillTestSingleton")


@kill_singleton.handler(name="recursiveCall")
async def recursive_call(ctx: ObjectContext) -> None:
    name, awakeable = ctx.awakeable()
    ctx.object_send(hold, key=ctx.key(), arg=name)
    await awakeable
    await ctx.object_call(recursive_call, key=ctx.key(), arg=None)  # inboxed behind itself


@kill_singleton.handler(name="isUnlocked")
async def singleton_is_unlocked(ctx: ObjectContext) -> None:
    return None


# --- Combinators -------------------------------------------------------------------------------

combinators = restate.VirtualObject("Combinators")


@combinators.handler(name="awakeableOrTimeout")
async def awakeable_or_timeout(ctx: ObjectContext, millis: int) -> str:
    name, awakeable = ctx.awakeable(type_hint=str)
    ctx.set("awk", name)
    match await restate.select(awk=awakeable, timeout=ctx.sleep(timedelta(milliseconds=millis))):
        case ["awk", value]:
            return str(value)
        case _:
            return "sleep"


@combinators.handler(name="firstSuccessful")
async def first_successful(ctx: ObjectContext, count: int) -> str:
    """Awaits `count` awakeables mixed with failing runs; answers the first success."""
    futures = []
    for i in range(count):
        name, awakeable = ctx.awakeable(type_hint=str)
        ctx.set(f"awk{i}", name)
        futures.append(awakeable)

        def fail(i: int = i) -> None:
            raise TerminalError(f"run{i} fails on purpose")

        futures.append(ctx.run_typed(f"run{i}", fail))
    async for done in restate.as_completed(*futures):
        try:
            return str(await done)
        except TerminalError:
            continue
    raise TerminalError("every future failed")


@combinators.handler(name="gatherAll")
async def gather_all(ctx: ObjectContext, count: int) -> list[str]:
    futures = []
    for i in range(count):
        name, awakeable = ctx.awakeable(type_hint=str)
        ctx.set(f"awk{i}", name)
        futures.append(awakeable)
    await restate.gather(*futures)
    return [str(await f) for f in futures]


@combinators.handler(name="awakeableId", kind="shared")
async def awakeable_id(ctx: ObjectSharedContext, name: str) -> str | None:
    return await ctx.get(name, type_hint=str)


steps = restate.Service("Steps")


@steps.handler()
async def three(ctx: Context, tag: str) -> int:
    """Three journaled steps, each writing `steps:<tag>:<i>` to the ledger when it runs."""
    total = 0
    for i in range(3):
        total += await ctx.run_typed(f"step-{i}", lambda i=i: ledger(f"steps:{tag}:{i}") or i)
    return total


# --- Named signals and idempotency retention ------------------------------------------------

signals = restate.Service("Signals")


@signals.handler(name="waitFor")
async def wait_for(ctx: Context, name: str) -> str:
    """Waits for the named signal `name` on this invocation (SendSignalCommand by name)."""
    return str(await ctx.signal(name, type_hint=str))


@signals.handler(name="send")
async def send_named(ctx: Context, req: dict[str, str]) -> None:
    if req.get("reject"):
        ctx.reject_signal(req["id"], req["name"], req["reject"], 422)
    else:
        ctx.resolve_signal(req["id"], req["name"], req["value"])


short_memory = restate.VirtualObject("ShortMemory")


@short_memory.handler(idempotency_retention=timedelta(seconds=1))
async def bump(ctx: ObjectContext) -> int:
    """An idempotency key is remembered for one second only (retention set per handler)."""
    value = (await ctx.get("n", type_hint=int) or 0) + 1
    ctx.set("n", value)
    return value


# --- Workflows ----------------------------------------------------------------------------------

block_and_wait = restate.Workflow("BlockAndWaitWorkflow")


@block_and_wait.main()
async def run(ctx: WorkflowContext, text: str) -> str:
    ctx.set("my-state", text)
    output = await ctx.promise("durable-promise", type_hint=str).value()
    peeked = await ctx.promise("durable-promise", type_hint=str).peek()
    if peeked is None:
        raise TerminalError("the durable promise should be completed by now")
    return output


@block_and_wait.handler()
async def unblock(ctx: WorkflowSharedContext, output: str) -> None:
    await ctx.promise("durable-promise", type_hint=str).resolve(output)


@block_and_wait.handler(name="getState")
async def get_state(ctx: WorkflowSharedContext) -> str | None:
    return await ctx.get("my-state", type_hint=str)


signup = restate.Workflow("Signup")


@signup.main(name="run")
async def signup_run(ctx: WorkflowContext, email: str) -> dict[str, str]:
    user_id = await ctx.run_typed("create user", lambda: ledger(f"user:{email}") or f"u-{email}")
    ctx.set("status", "created")
    await ctx.run_typed("send email", lambda: ledger(f"email:{email}"))
    ctx.set("status", "waiting-for-click")
    secret = await ctx.promise("email.clicked", type_hint=str).value()
    ctx.set("status", "verified")
    return {"user": user_id, "clicked": secret}


@signup.handler()
async def click(ctx: WorkflowSharedContext, secret: str) -> None:
    await ctx.promise("email.clicked", type_hint=str).resolve(secret)


@signup.handler(name="getStatus")
async def get_status(ctx: WorkflowSharedContext) -> str | None:
    return await ctx.get("status", type_hint=str)


approval = restate.Workflow("Approval")


@approval.main(name="run")
async def approval_run(ctx: WorkflowContext, req: dict[str, int]) -> str:
    """Races the `decision` promise against a sleep; each timeout sends a reminder and doubles
    the wait; after `reminders` reminders the request is escalated."""
    wait_ms = int(req["first_reminder_ms"])
    decision = ctx.promise("decision", type_hint=str).value()
    for n in range(int(req["reminders"])):
        match await restate.select(
            decision=decision, timeout=ctx.sleep(timedelta(milliseconds=wait_ms))
        ):
            case ["decision", value]:
                return str(value)
        await ctx.run_typed(f"remind-{n}", lambda n=n: ledger(f"remind:{ctx.key()}:{n}"))
        ctx.set("reminders", n + 1)
        wait_ms *= 2
    await ctx.run_typed("escalate", lambda: ledger(f"escalate:{ctx.key()}"))
    return f"escalated: {await decision}"


@approval.handler()
async def decide(ctx: WorkflowSharedContext, verdict: str) -> None:
    await ctx.promise("decision", type_hint=str).resolve(verdict)


@approval.handler(name="reminders")
async def reminders_sent(ctx: WorkflowSharedContext) -> int:
    return await ctx.get("reminders", type_hint=int) or 0


nightly = restate.Workflow("NightlyJob")


@nightly.main(name="run")
async def nightly_run(ctx: WorkflowContext) -> str:
    """Keyed on its date: the key makes a second submission on the same day a no-op."""
    await ctx.run_typed("report", lambda: ledger(f"nightly:{ctx.key()}"))
    return f"report for {ctx.key()}"


# --- DAG fan-out / fan-in ------------------------------------------------------------------------

dag = restate.Service("Dag")


@dag.handler()
async def waves(ctx: Context, req: dict[str, int]) -> int:
    """Runs `waves` waves of `width` parallel calls; each wave feeds the next one its sum."""
    seed = 1
    for _ in range(int(req["waves"])):
        calls = [ctx.service_call(square, arg=seed + i) for i in range(int(req["width"]))]
        await restate.gather(*calls)  # one ALL_COMPLETED future over the whole wave
        results = [await c for c in calls]
        seed = sum(results) % 1000
    return seed


@dag.handler()
async def square(ctx: Context, n: int) -> int:
    return n * n


SERVICES = [
    proxy,
    test_utils,
    counter,
    list_object,
    awakeable_holder,
    cancel_runner,
    blocking_service,
    compensating,
    kill_runner,
    kill_singleton,
    combinators,
    signals,
    short_memory,
    steps,
    block_and_wait,
    signup,
    approval,
    nightly,
    dag,
]


if __name__ == "__main__":
    serve_official(SERVICES)
