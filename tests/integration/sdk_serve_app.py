"""A Perdure SDK endpoint served by `perdure.serve`, for the real-socket tests.

Run: python -m tests.integration.sdk_serve_app --port 9080 [--echo-runtime]

With --echo-runtime the invocation runtime is replaced by one that echoes each request chunk
back upper-cased as soon as it arrives, which shows the stream is full duplex.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import perdure

greeter = perdure.Service("Greeter", description="Says hello.")


@greeter.handler()
async def greet(ctx: Any, name: str) -> str:
    return f"Hello {name}!"


counter = perdure.VirtualObject("Counter")


@counter.handler()
async def add(ctx: Any, delta: int) -> int:
    return delta


async def echo_runtime(spec: Any, **kwargs: Any) -> None:
    receive: Callable[[], Awaitable[bytes | None]] = kwargs["receive"]
    send: Callable[[bytes], Awaitable[None]] = kwargs["send"]
    await send(f"mode={'rr' if kwargs['request_response'] else 'bidi'};".encode())
    while (chunk := await receive()) is not None:
        await send(chunk.upper())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--echo-runtime", action="store_true")
    args = parser.parse_args()
    runtime = echo_runtime if args.echo_runtime else None
    perdure.serve(perdure.app([greeter, counter], runtime=runtime), port=args.port)


if __name__ == "__main__":
    main()
