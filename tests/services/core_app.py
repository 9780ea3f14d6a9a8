"""Core-scenario services written with the official `restate-sdk` (1.2.0), served by hypercorn.

Run: python -m tests.services.core_app --port 9080 [--mode request_response]

The behaviour follows the contracts of Restate's sdk-test-suite (Counter, MapObject, Proxy,
TestUtilsService, Failing, NonDeterministic), written here in our own words, for the tests in
tests/integration/core. Counters that must outlive a replay (attempts, side-effect executions)
live in this process's memory, keyed by the object key so tests never see each other's counts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

import restate
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    RunOptions,
    TerminalError,
)
from tests.services import serve_official

# Per-process tallies, keyed by object key: they survive replays, not a restart of this process.
_handler_attempts: defaultdict[str, int] = defaultdict(int)
_side_effect_runs: defaultdict[str, int] = defaultdict(int)
_nondeterministic_attempts: defaultdict[str, int] = defaultdict(int)

# --- Counter: one number per key -------------------------------------------------------------

counter = restate.VirtualObject("Counter")
COUNT = "counter"


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> dict[str, int]:
    """Adds `delta`; answers `{"oldValue": .., "newValue": ..}`."""
    old = await ctx.get(COUNT, type_hint=int) or 0
    ctx.set(COUNT, old + delta)
    return {"oldValue": old, "newValue": old + delta}


@counter.handler(name="addThenFail")
async def add_then_fail(ctx: ObjectContext, delta: int) -> None:
    """Adds `delta`, then fails terminally with the key as message: the state write stays."""
    old = await ctx.get(COUNT, type_hint=int) or 0
    ctx.set(COUNT, old + delta)
    raise TerminalError(ctx.key())


@counter.handler(name="addSlowly")
async def add_slowly(ctx: ObjectContext, req: dict[str, int]) -> dict[str, int]:
    """Like add, with a durable sleep of `millis` between the read and the write: a test can
    stop the server while the key is held and requests queue behind it."""
    old = await ctx.get(COUNT, type_hint=int) or 0
    await ctx.sleep(timedelta(milliseconds=req["millis"]))
    ctx.set(COUNT, old + req["delta"])
    return {"oldValue": old, "newValue": old + req["delta"]}


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get(COUNT, type_hint=int) or 0


@counter.handler()
async def reset(ctx: ObjectContext) -> None:
    ctx.clear(COUNT)


# --- MapObject: one state entry per map key --------------------------------------------------

map_object = restate.VirtualObject("MapObject")


@map_object.handler(name="set")
async def map_set(ctx: ObjectContext, entry: dict[str, str]) -> None:
    ctx.set(entry["key"], entry["value"])


@map_object.handler(name="get")
async def map_get(ctx: ObjectContext, key: str) -> str:
    return await ctx.get(key, type_hint=str) or ""


@map_object.handler(name="clearAll")
async def map_clear_all(ctx: ObjectContext) -> list[dict[str, str]]:
    """Clears every entry and answers what was there."""
    entries = []
    for key in await ctx.state_keys():
        entries.append({"key": key, "value": await ctx.get(key, type_hint=str) or ""})
    ctx.clear_all()
    return entries


# --- Proxy: calls and one-way sends on behalf of a test ---------------------------------------

proxy = restate.Service("Proxy")


@proxy.handler(name="oneWayCall")
async def one_way_call(ctx: Context, req: dict[str, Any]) -> str:
    """Sends `message` (any JSON) to `serviceName/[virtualObjectKey/]handlerName`; answers the
    invocation id of the send."""
    delay = req.get("delayMillis")
    handle = ctx.generic_send(
        req["serviceName"],
        req["handlerName"],
        json.dumps(req.get("message")).encode(),
        key=req.get("virtualObjectKey"),
        send_delay=timedelta(milliseconds=delay) if delay else None,
    )
    return await handle.invocation_id()


@proxy.handler(name="call")
async def proxy_call(ctx: Context, req: dict[str, Any]) -> Any:
    raw = await ctx.generic_call(
        req["serviceName"],
        req["handlerName"],
        json.dumps(req.get("message")).encode(),
        key=req.get("virtualObjectKey"),
    )
    return json.loads(raw) if raw else None


# --- TestUtilsService: timers and side-effect counting ----------------------------------------

utils = restate.Service("TestUtilsService")


@utils.handler(name="sleepConcurrently")
async def sleep_concurrently(ctx: Context, millis: list[int]) -> None:
    """Starts one timer per duration, then waits for all of them."""
    timers = [ctx.sleep(timedelta(milliseconds=m)) for m in millis]
    for timer in timers:
        await timer


@utils.handler(name="countExecutedSideEffects")
async def count_executed_side_effects(ctx: Context, increments: int) -> int:
    """Runs `increments` ctx.run blocks that bump a local variable; answers the local count.

    When every attempt suspends to wait for the run's ack (inactivity timeout 0), the final
    attempt replays every run from the journal and the local count is 0.
    """
    executed = 0

    def bump() -> None:
        nonlocal executed
        executed += 1

    for _ in range(increments):
        await ctx.run_typed("count", bump)
    return executed


# --- Failing: terminal errors, retries, run retry policies -------------------------------------

failing = restate.VirtualObject("Failing")


def _terminal(failure: dict[str, Any]) -> TerminalError:
    return TerminalError(failure["errorMessage"], metadata=failure.get("metadata"))


@failing.handler(name="terminallyFailingCall")
async def terminally_failing_call(ctx: ObjectContext, failure: dict[str, Any]) -> None:
    raise _terminal(failure)


@failing.handler(name="callTerminallyFailingCall")
async def call_terminally_failing_call(ctx: ObjectContext, failure: dict[str, Any]) -> str:
    """Calls terminallyFailingCall on another key: its terminal error becomes ours."""
    await ctx.object_call(terminally_failing_call, key=f"{ctx.key()}-callee", arg=failure)
    raise ValueError("the callee failed terminally, so this line is never reached")


@failing.handler(name="failingCallWithEventualSuccess")
async def failing_call_with_eventual_success(ctx: ObjectContext) -> int:
    """Fails with a retryable error on attempts 1-3; answers 4 on the fourth."""
    _handler_attempts[ctx.key()] += 1
    if _handler_attempts[ctx.key()] < 4:
        raise ValueError(f"attempt {_handler_attempts[ctx.key()]} fails on purpose")
    return _handler_attempts[ctx.key()]


@failing.handler(name="terminallyFailingSideEffect")
async def terminally_failing_side_effect(ctx: ObjectContext, failure: dict[str, Any]) -> None:
    def side_effect() -> None:
        raise _terminal(failure)

    await ctx.run_typed("sideEffect", side_effect)
    raise ValueError("the run failed terminally, so this line is never reached")


@failing.handler(name="sideEffectSucceedsAfterGivenAttempts")
async def side_effect_succeeds_after(ctx: ObjectContext, minimum_attempts: int) -> int:
    """A ctx.run that fails until its `minimum_attempts`-th execution; answers that count."""
    key = ctx.key()

    def side_effect() -> int:
        _side_effect_runs[key] += 1
        if _side_effect_runs[key] < minimum_attempts:
            raise ValueError(f"run execution {_side_effect_runs[key]} fails on purpose")
        return _side_effect_runs[key]

    options: RunOptions[int] = RunOptions(
        max_attempts=minimum_attempts + 1,
        initial_retry_interval=timedelta(milliseconds=1),
        retry_interval_factor=1.0,
    )
    return await ctx.run_typed("sideEffect", side_effect, options)


@failing.handler(name="sideEffectFailsAfterGivenAttempts")
async def side_effect_fails_after(ctx: ObjectContext, max_attempts: int) -> int:
    """A ctx.run that always fails, allowed `max_attempts`; answers how often it ran."""
    key = ctx.key()

    def side_effect() -> int:
        _side_effect_runs[key] += 1
        raise ValueError(f"run execution {_side_effect_runs[key]} fails on purpose")

    options: RunOptions[int] = RunOptions(
        max_attempts=max_attempts,
        initial_retry_interval=timedelta(milliseconds=1),
        retry_interval_factor=1.0,
    )
    try:
        await ctx.run_typed("sideEffect", side_effect, options)
    except TerminalError:
        return _side_effect_runs[key]
    raise ValueError("the run was expected to fail")


@failing.handler(kind="shared", name="sideEffectRuns")
async def side_effect_runs(ctx: ObjectSharedContext) -> int:
    return _side_effect_runs[ctx.key()]


# --- NonDeterministic: a handler whose replay takes another branch -----------------------------

nondeterministic = restate.VirtualObject("NonDeterministic")


def _first_branch(ctx: ObjectContext) -> bool:
    """True on odd attempts, False on even ones: a replay never matches the attempt before."""
    _nondeterministic_attempts[ctx.key()] += 1
    return _nondeterministic_attempts[ctx.key()] % 2 == 1


async def _then_count(ctx: ObjectContext) -> None:
    """What only a deterministic handler reaches: a pause, then +1 on Counter/<key>."""
    await ctx.sleep(timedelta(milliseconds=100))
    ctx.object_send(add, key=ctx.key(), arg=1)


@nondeterministic.handler(name="eitherSleepOrCall")
async def either_sleep_or_call(ctx: ObjectContext) -> None:
    if _first_branch(ctx):
        await ctx.sleep(timedelta(milliseconds=100))
    else:
        await ctx.object_call(get, key="abc", arg=None)
    await _then_count(ctx)


@nondeterministic.handler(name="callDifferentMethod")
async def call_different_method(ctx: ObjectContext) -> None:
    if _first_branch(ctx):
        await ctx.object_call(get, key="abc", arg=None)
    else:
        await ctx.object_call(reset, key="abc", arg=None)
    await _then_count(ctx)


@nondeterministic.handler(name="backgroundInvokeWithDifferentTargets")
async def background_invoke_with_different_targets(ctx: ObjectContext) -> None:
    if _first_branch(ctx):
        ctx.object_send(get, key="abc", arg=None)
    else:
        ctx.object_send(reset, key="abc", arg=None)
    await _then_count(ctx)


@nondeterministic.handler(name="setDifferentKey")
async def set_different_key(ctx: ObjectContext) -> None:
    if _first_branch(ctx):
        ctx.set("a", "my-state")
    else:
        ctx.set("b", "my-state")
    await _then_count(ctx)


SERVICES = [counter, map_object, proxy, utils, failing, nondeterministic]


if __name__ == "__main__":
    serve_official(SERVICES)
