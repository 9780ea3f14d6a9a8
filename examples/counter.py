"""A counter per key: a virtual object whose exclusive handlers run one at a time per key.

Run it with ``perdure dev examples/counter.py``, then::

    curl localhost:8080/Counter/clicks/add --json 5
    curl localhost:8080/Counter/clicks/get
    curl localhost:8080/Counter/clicks/reset -X POST
"""

from __future__ import annotations

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


@counter.handler()
async def reset(ctx: perdure.ObjectContext) -> None:
    ctx.clear_all()


services = [counter]

if __name__ == "__main__":
    perdure.serve(services, port=9080)
