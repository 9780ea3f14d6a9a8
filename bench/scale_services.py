"""The services of the scale tables (`bench/scale.py`), written with the official `restate-sdk`.

One process serves both servers (Perdure and Restate register the same URI).

Run: python -m bench.scale_services --port 9080

    Greeter/greet          stateless, from bench.services (the "ingress answers" probe)
    Counter/<key>/add      virtual object, from bench.services (the idle-keys table)
    Waiter/<key>/run       workflow: waits for its durable promise "go", returns its value;
                           inactivity timeout 1 s, so a waiting run suspends after a second
    Waiter/<key>/release   shared: resolves the promise "go" with the given value
    Holder/<key>/run       as Waiter, but with a 1-hour inactivity timeout: the run keeps its
    Holder/<key>/release   attempt (and stream) open while it waits, i.e. stays "running"
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

import restate
from bench.services import counter, greeter, hypercorn_config
from hypercorn.asyncio import serve
from restate import WorkflowContext, WorkflowSharedContext

PROMISE = "go"


def _waiting_workflow(name: str, inactivity: timedelta) -> restate.Workflow:
    workflow = restate.Workflow(name, inactivity_timeout=inactivity)

    @workflow.main()
    async def run(ctx: WorkflowContext, tag: str) -> str:
        value = await ctx.promise(PROMISE, type_hint=str).value()
        return f"{tag}:{value}"

    @workflow.handler()
    async def release(ctx: WorkflowSharedContext, value: str) -> None:
        await ctx.promise(PROMISE, type_hint=str).resolve(value)

    return workflow


waiter = _waiting_workflow("Waiter", timedelta(seconds=1))
holder = _waiting_workflow("Holder", timedelta(hours=1))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = restate.app([greeter, counter, waiter, holder])
    await serve(app, hypercorn_config(args.port))  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
