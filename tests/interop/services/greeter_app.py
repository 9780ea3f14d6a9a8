"""A tiny service written with the official `restate` SDK, for the wire interop tests.

Run: python -m tests.interop.services.greeter_app --port 9080
Stop it with SIGINT: restate-sdk takes over SIGTERM (it only tells running invocations to
wind down), so SIGTERM alone does not end the process.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate import Context

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return f"Hello {name}!"


@greeter.handler()
async def greet_with_run(ctx: Context, name: str) -> str:
    """One ctx.run step: the SDK proposes its result and waits for the server's answer."""

    def shout() -> str:
        return name.upper()

    loud = await ctx.run_typed("shout", shout)
    return f"Hello {loud}!"


def make_app():  # type: ignore[no-untyped-def]
    return restate.app([greeter])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    await serve(make_app(), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
