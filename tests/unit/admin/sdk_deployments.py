"""Tiny deployments written with the official `restate-sdk`, served by hypercorn on 127.0.0.1.

`V1` is the baseline (a greeter service, a counter virtual object, a signup workflow);
`GREETER_IS_AN_OBJECT` changes a service's type and `GREETER_LOST_A_HANDLER` drops a handler,
the two changes registration refuses without "breaking"/"force".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)


def _greeter(with_hello: bool = True) -> restate.Service:
    greeter = restate.Service("Greeter")

    @greeter.handler()
    async def greet(ctx: Context, name: str) -> str:
        return f"Hello {name}!"

    if with_hello:

        @greeter.handler()
        async def hello(ctx: Context) -> str:
            return "hello"

    return greeter


def _greeter_object() -> restate.VirtualObject:
    greeter = restate.VirtualObject("Greeter")

    @greeter.handler()
    async def greet(ctx: ObjectContext, name: str) -> str:
        return f"Hello {name}!"

    @greeter.handler()
    async def hello(ctx: ObjectContext) -> str:
        return "hello"

    return greeter


def _counter() -> restate.VirtualObject:
    counter = restate.VirtualObject("Counter")

    @counter.handler()
    async def add(ctx: ObjectContext, delta: int) -> int:
        value = (await ctx.get("count", type_hint=int)) or 0
        ctx.set("count", value + delta)
        return value + delta

    @counter.handler(kind="shared")
    async def get(ctx: ObjectSharedContext) -> int:
        return (await ctx.get("count", type_hint=int)) or 0

    return counter


def _signup() -> restate.Workflow:
    signup = restate.Workflow("Signup")

    @signup.main()
    async def run(ctx: WorkflowContext, email: str) -> bool:
        return True

    @signup.handler()
    async def status(ctx: WorkflowSharedContext) -> str:
        return "pending"

    return signup


V1: list[Any] = [_greeter(), _counter(), _signup()]
V1_PLUS_NOTHING: list[Any] = [_greeter(), _counter(), _signup()]  # same manifest, other process
GREETER_IS_AN_OBJECT: list[Any] = [_greeter_object(), _counter(), _signup()]
GREETER_LOST_A_HANDLER: list[Any] = [_greeter(with_hello=False), _counter(), _signup()]
ONLY_COUNTER: list[Any] = [_counter()]


@contextlib.asynccontextmanager
async def serving(services: list[Any]) -> AsyncIterator[str]:
    """Serves `services` with hypercorn on an ephemeral 127.0.0.1 port; yields the URI."""
    async with serving_at(0, services) as uri:
        yield uri


@contextlib.asynccontextmanager
async def serving_at(port: int, services: list[Any]) -> AsyncIterator[str]:
    """Serves `services` on 127.0.0.1:`port` (0: ephemeral), e.g. a redeploy in place."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections queue until hypercorn starts accepting
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the descriptor from here on
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    stop = asyncio.Event()
    task = asyncio.create_task(serve(restate.app(services), config, shutdown_trigger=stop.wait))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
