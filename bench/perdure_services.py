"""The benchmark's services written with the Perdure SDK (`import perdure`).

Same handlers as `bench/services.py`, under other names (`PGreeter`, `PCounter`, `PChain`,
`PSleeper`) so that both deployments can be registered with one Perdure server side by side.

Run: python -m bench.perdure_services --port 9081
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

import perdure

greeter = perdure.Service("PGreeter")
counter = perdure.VirtualObject("PCounter")
chain = perdure.Service("PChain")
sleeper = perdure.Service("PSleeper")


@greeter.handler()
async def greet(ctx: perdure.Context, name: str) -> str:
    return f"Hello {name}!"


@counter.handler()
async def add(ctx: perdure.ObjectContext, delta: int) -> int:
    value = (await ctx.get("count", type_hint=int)) or 0
    value += delta
    ctx.set("count", value)
    return value


@chain.handler()
async def steps(ctx: perdure.Context, req: dict[str, Any]) -> int:
    total = 0
    for i in range(int(req["n"])):

        def step(i: int = i) -> int:
            return i

        total += await ctx.run(f"step-{i}", step)
    return total


@sleeper.handler()
async def sleep(ctx: perdure.Context, ms: int) -> int:
    await ctx.sleep(timedelta(milliseconds=ms))
    return ms


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    perdure.serve([greeter, counter, chain, sleeper], port=parser.parse_args().port)
