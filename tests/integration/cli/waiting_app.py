"""Services that wait on other things, written with the official `restate-sdk` (1.2.0).

Run: python -m tests.integration.cli.waiting_app --port 9080 [--mode request_response]
`perdure explain` must say what each one waits for: an awakeable (and how to resolve it), a
workflow's durable promise, or a call to a callee that keeps failing.
"""

from __future__ import annotations

import restate
from restate import Context, WorkflowContext, WorkflowSharedContext
from tests.services import serve_official

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


if __name__ == "__main__":
    serve_official([waiter, approval])
