"""Test services written with the official `restate-sdk`, served by hypercorn.

Run: python -m tests.services.official_app --port 9080 [--mode request_response]
Side effects that tests check (ctx.run executions) are appended to the file named by the
LEDGER environment variable, one line per execution.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta

import restate
from restate import Context, ObjectContext, ObjectSharedContext, TerminalError
from tests.services import serve_official

LEDGER = os.environ.get("LEDGER", "")
_attempts: dict[str, int] = {}


def ledger(line: str) -> None:
    if LEDGER:
        with open(LEDGER, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return f"Hello {name}!"


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    value = (await ctx.get("count", type_hint=int)) or 0
    value += delta
    ctx.set("count", value)
    return value


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return (await ctx.get("count", type_hint=int)) or 0


@counter.handler()
async def slow_add(ctx: ObjectContext, delta: int) -> int:
    value = (await ctx.get("count", type_hint=int)) or 0
    await ctx.sleep(timedelta(milliseconds=50))
    value += delta
    ctx.set("count", value)
    return value


@counter.handler()
async def reset(ctx: ObjectContext) -> None:
    ctx.clear_all()


chain = restate.Service("Chain")


@chain.handler()
async def steps(ctx: Context, req: dict) -> int:
    """Runs `n` ctx.run steps, each appending `<tag>:<i>` to the ledger; sleeps `pause_ms`
    between steps so a test can kill the server mid-chain."""
    n, tag, pause = int(req["n"]), str(req.get("tag", "")), int(req.get("pause_ms", 0))
    total = 0
    for i in range(n):

        def step(i: int = i) -> int:
            ledger(f"{tag}:{i}")
            return i

        total += await ctx.run_typed(f"step-{i}", step)
        if pause:
            await ctx.sleep(timedelta(milliseconds=pause))
    return total


sleeper = restate.Service("Sleeper")


@sleeper.handler()
async def nap(ctx: Context, millis: int) -> int:
    await ctx.sleep(timedelta(milliseconds=millis))
    return millis


flaky = restate.VirtualObject("Flaky")


@flaky.handler()
async def succeed_after(ctx: ObjectContext, failures: int) -> int:
    """Fails with a retryable error `failures` times, then answers the attempt count."""
    key = ctx.key()
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] <= failures:
        raise ValueError(f"attempt {_attempts[key]} fails on purpose")
    return _attempts[key]


@flaky.handler()
async def terminal(ctx: ObjectContext, message: str) -> str:
    raise TerminalError(message, status_code=418)


@flaky.handler()
async def nondeterministic(ctx: ObjectContext) -> str:
    """Journals a different command on every attempt: a replay must fail with 570."""
    key = ctx.key()
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        ctx.set("a", 1)
        await ctx.run("step", lambda: 1)  # the server journals both before answering
        raise RuntimeError("fail the first attempt so that the next one replays")
    else:
        await ctx.get("b", type_hint=int)
        ctx.set("c", random.random())
    return "unreachable on replay"


@flaky.handler(kind="shared")
async def attempts(ctx: ObjectSharedContext) -> int:
    return _attempts.get(ctx.key(), 0)


if __name__ == "__main__":
    serve_official([greeter, counter, chain, sleeper, flaky])
