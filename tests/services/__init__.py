"""Services written with the official Restate Python SDK, used by the integration tests."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any


def serve_official(services: Sequence[Any]) -> None:
    """The `main` of every official-SDK test service: `--port P [--mode request_response]`.

    Serves `services` with the official `restate-sdk` on hypercorn (HTTP/2 prior knowledge and
    HTTP/1.1 on one port), with per-connection limits lifted as Restate's pooled connections
    need, until SIGINT.
    """
    import restate
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["bidi", "request_response"], default=None)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.h2_max_concurrent_streams = 2**31 - 1
    config.keep_alive_timeout = 3600
    config.accesslog = None
    app = restate.app(list(services), protocol=args.mode)
    asyncio.run(serve(app, config))  # type: ignore[arg-type]
