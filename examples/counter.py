"""A counter per key: a virtual object whose exclusive handlers run one at a time per key.

Run it with ``perdure dev examples/counter.py``, then::

    curl localhost:8080/Counter/clicks/add --json 5
    curl localhost:8080/Counter/clicks/get
    curl localhost:8080/Counter/clicks/addLater --json '{"delta": 2, "delay_ms": 1000}'
    curl localhost:8080/Counter/clicks/reset -X POST
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import perdure

counter = perdure.VirtualObject("Counter", description="A durable counter per key.")


@counter.handler()
async def add(ctx: perdure.ObjectContext, delta: int) -> int:
    """Adds ``delta`` and returns the new value; concurrent adds to one key never race."""
    value = (await ctx.get("value", type_hint=int) or 0) + delta
    ctx.set("value", value)
    return value


@counter.shared()
async def get(ctx: perdure.ObjectSharedContext) -> int:
    """The current value; shared, so it never waits behind an ``add``."""
    return await ctx.get("value", type_hint=int) or 0


@dataclass
class Later:
    delta: int
    delay_ms: int


@counter.shared(name="addLater")
async def add_later(ctx: perdure.ObjectSharedContext, later: Later) -> str:
    """Schedules an ``add`` (a durable delayed send) and returns its invocation id at once."""
    add_to_me = counter.proxy(ctx, ctx.key()).add
    handle = add_to_me.send(later.delta, delay=timedelta(milliseconds=later.delay_ms))
    return await handle.invocation_id()


@counter.handler()
async def reset(ctx: perdure.ObjectContext) -> None:
    ctx.clear_all()


services = [counter]

if __name__ == "__main__":
    perdure.serve(services, port=9080)
