"""``perdure.serve``: run an endpoint on hypercorn, HTTP/2 (h2c) and HTTP/1.1 on one port."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from perdure.sdk.endpoint import Endpoint, ProtocolModeName, app
from perdure.sdk.service import Definition

__all__ = ["serve", "serve_async"]

# Restate keeps a pool of long-lived HTTP/2 connections to a deployment and multiplexes every
# invocation over them, so per-connection limits must not throttle it (the official SDK's test
# harness lifts them the same way). hypercorn's defaults (100 streams, 5 s keep-alive) would.
MAX_STREAMS_PER_CONNECTION = 2**31 - 1
KEEP_ALIVE_SECONDS = 24 * 3600
# On SIGTERM, give running attempts this long to finish before their streams are cut; an
# attempt cut short is retried by the server from its journal, so nothing is lost.
GRACEFUL_SHUTDOWN_SECONDS = 10.0
# The endpoint cuts the attempts left at the end of the grace period; hypercorn's own deadline
# is this much later, so it only ever sees streams that already ended.
CUT_MARGIN_SECONDS = 2.0


def _as_app(
    app_or_services: Endpoint | Any | Iterable[Definition],
    protocol_mode: ProtocolModeName | None,
    identity_keys: Sequence[str],
) -> Any:
    if isinstance(app_or_services, Definition):
        app_or_services = [app_or_services]
    if isinstance(app_or_services, Endpoint) or callable(app_or_services):
        if protocol_mode is not None or identity_keys:
            raise TypeError(
                "protocol_mode= and identity_keys= configure a new app; pass them to "
                "perdure.app(...) when you build the app yourself"
            )
        return app_or_services
    return app(list(app_or_services), protocol_mode=protocol_mode, identity_keys=identity_keys)


def _config(host: str, port: int, graceful_shutdown_seconds: float) -> Any:
    from hypercorn.config import Config

    config = Config()
    # An IPv6 literal needs brackets in a bind string.
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.h2_max_concurrent_streams = MAX_STREAMS_PER_CONNECTION
    config.keep_alive_max_requests = MAX_STREAMS_PER_CONNECTION
    config.keep_alive_timeout = KEEP_ALIVE_SECONDS
    config.graceful_timeout = graceful_shutdown_seconds
    return config


async def serve_async(
    app_or_services: Endpoint | Any | Iterable[Definition],
    *,
    port: int = 9080,
    host: str = "127.0.0.1",
    protocol_mode: ProtocolModeName | None = None,
    identity_keys: Sequence[str] = (),
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    graceful_shutdown_seconds: float = GRACEFUL_SHUTDOWN_SECONDS,
) -> None:
    """Serve until ``shutdown_trigger`` returns (by default: until SIGINT or SIGTERM).

    At shutdown, running attempts get ``graceful_shutdown_seconds`` to finish; the server
    retries the ones cut short from their journal.

    Example::

        await perdure.sdk.serving.serve_async([greeter], port=9080)
    """
    from hypercorn.asyncio import serve as hypercorn_serve

    application = _as_app(app_or_services, protocol_mode, identity_keys)
    # Signal handlers go in before the socket listens: a SIGINT that arrives as soon as the
    # port answers must stop us gracefully, not as a KeyboardInterrupt.
    signalled, installed = (None, []) if shutdown_trigger is not None else _install_handlers()
    trigger = shutdown_trigger or (signalled.wait if signalled is not None else _never)
    cut: list[asyncio.TimerHandle] = []

    async def shutdown() -> None:
        await trigger()
        # Attempts still running when the grace period ends are cut by the endpoint itself,
        # which closes their streams cleanly; hypercorn's own deadline comes a little later
        # (its forced shutdown of open streams leaves tasks of its own behind).
        if isinstance(application, Endpoint):
            loop = asyncio.get_running_loop()
            cut.append(loop.call_later(graceful_shutdown_seconds, application.cut_attempts))

    try:
        await hypercorn_serve(
            application,
            _config(host, port, graceful_shutdown_seconds + CUT_MARGIN_SECONDS),
            shutdown_trigger=shutdown,
            mode="asgi",
        )
    finally:
        for handle in cut:
            handle.cancel()
        loop = asyncio.get_running_loop()
        for sig in installed:
            loop.remove_signal_handler(sig)


def _install_handlers() -> tuple[asyncio.Event | None, list[signal.Signals]]:
    """An event set on SIGINT or SIGTERM (what hypercorn waits for when given no trigger)."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, signalled.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals here: only a trigger can stop us
    return (signalled if installed else None), installed


async def _never() -> None:
    """Without signals (not the main thread) and without a trigger, serve until cancelled."""
    await asyncio.Event().wait()


def serve(
    app_or_services: Endpoint | Any | Iterable[Definition],
    *,
    port: int = 9080,
    host: str = "127.0.0.1",
    protocol_mode: ProtocolModeName | None = None,
    identity_keys: Sequence[str] = (),
) -> None:
    """Serve services (or an app from :func:`perdure.app`) until interrupted.

    One port speaks HTTP/2 with prior knowledge (what Restate and Perdure use by default, and
    what the bidirectional protocol needs) and HTTP/1.1 (``--use-http1.1`` registrations).
    ``host`` defaults to loopback; pass ``"0.0.0.0"`` to accept other machines.

    Example::

        if __name__ == "__main__":
            perdure.serve([greeter, counter], port=9080)
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(
        serve_async(
            app_or_services,
            port=port,
            host=host,
            protocol_mode=protocol_mode,
            identity_keys=identity_keys,
        )
    )
