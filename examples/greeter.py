"""The example `make run` serves: a greeter that remembers how often it met each person.

Run it embedded (server and service in one process):

    perdure dev examples/greeter.py

then:

    curl localhost:8080/Greeter/greet --json '"Ada"'
    curl localhost:8080/Visits/Ada/count
"""

from __future__ import annotations

from datetime import timedelta

import perdure

greeter = perdure.Service("Greeter", description="Greets people, durably.")
visits = perdure.VirtualObject("Visits", description="How often each person was greeted.")


@greeter.handler()
async def greet(ctx: perdure.Context, name: str) -> str:
    # A call to a virtual object: one at a time per key, its state is durable.
    count = await ctx.object_call(record, key=name, arg=None)
    # A durable step: its result is journaled, a retry replays it instead of running it again.
    greeting = await ctx.run("compose greeting", compose, name, count)
    # A durable timer: survives a restart of the server or of this process.
    await ctx.sleep(timedelta(milliseconds=100))
    return greeting


def compose(name: str, count: int) -> str:
    suffix = "" if count == 1 else f" (visit #{count})"
    return f"Hello {name}!{suffix}"


@visits.handler()
async def record(ctx: perdure.ObjectContext) -> int:
    count = (await ctx.get("count", type_hint=int) or 0) + 1
    ctx.set("count", count)
    return count


@visits.handler(kind="shared")
async def count(ctx: perdure.ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


services = [greeter, visits]

if __name__ == "__main__":
    perdure.serve(services, port=9080)
