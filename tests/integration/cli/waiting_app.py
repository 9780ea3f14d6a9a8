"""Services that wait on other things, written with the official `restate-sdk` (1.2.0).

Run: python -m tests.integration.cli.waiting_app --port 9080 [--mode request_response]
`perdure explain` must say what each one waits for: an awakeable (and how to resolve it), a
workflow's durable promise, or a call to a callee that keeps failing.
"""

from __future__ import annotations

import argparse
import asyncio

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate import Context, WorkflowContext, WorkflowSharedContext

waiter = restate.Service("Waiter")


@waiter.handler()
async def for_awakeable(ctx: Context) -> str:
    _, value = ctx.awakeable(type_hint=str)
    return f"woken with {await value}"


@waiter.handler()
async def always_fails(ctx: Context) -> str:
    raise ValueError("the callee fails on purpose")


@waiter.handler()
async def calls_failing(ctx: Context) -> str:
    return await ctx.service_call(always_fails, arg=None)


approval = restate.Workflow("Approval")


@approval.main()
async def run(ctx: WorkflowContext) -> str:
    return f"approved by {await ctx.promise('decision', type_hint=str).value()}"


@approval.handler()
async def decide(ctx: WorkflowSharedContext, who: str) -> None:
    await ctx.promise("decision", type_hint=str).resolve(who)


def make_app(mode: str | None = None):  # type: ignore[no-untyped-def]
    return restate.app([waiter, approval], protocol=mode)  # type: ignore[arg-type]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["bidi", "request_response"], default=None)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    await serve(make_app(args.mode), config)  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
