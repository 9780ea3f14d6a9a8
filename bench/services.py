"""The benchmark's services, written with the official `restate-sdk` and served by hypercorn.

One process serves both servers (Perdure and Restate register the same URI), so the service side
is identical for both and any difference comes from the server.

Run: python -m bench.services --port 9080

    Greeter/greet        stateless: "Ada" -> "Hello Ada!"
    Counter/<key>/add    virtual object: adds the delta to the key's durable count
    Chain/steps          runs n durable `ctx.run` steps: {"n": 10} -> 45
    Sleeper/sleep        a durable timer of the given milliseconds: 100 -> 100
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate import Context, ObjectContext

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


chain = restate.Service("Chain")


@chain.handler()
async def steps(ctx: Context, req: dict) -> int:  # type: ignore[type-arg]
    total = 0
    for i in range(int(req["n"])):

        def step(i: int = i) -> int:
            return i

        total += await ctx.run_typed(f"step-{i}", step)
    return total


sleeper = restate.Service("Sleeper")


@sleeper.handler()
async def sleep(ctx: Context, ms: int) -> int:
    await ctx.sleep(timedelta(milliseconds=ms))
    return ms


def hypercorn_config(port: int) -> Config:
    """HTTP/2 prior knowledge and HTTP/1.1 on one loopback port, no access log."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.h2_max_concurrent_streams = 2**31 - 1
    config.keep_alive_timeout = 3600
    config.accesslog = None
    return config


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = restate.app([greeter, counter, chain, sleeper])
    await serve(app, hypercorn_config(args.port))  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
