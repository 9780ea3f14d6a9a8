"""Shutting an endpoint down: attempts still running are cut, and their streams end cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.sdk.test_endpoint import V6, make_services

from perdure.sdk.endpoint import app


class ForeverRuntime:
    """A runtime whose attempts wait until cancelled (a handler waiting on a promise)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, spec: Any, **kwargs: Any) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def test_cut_attempts_cancels_running_attempts_and_ends_their_streams() -> None:
    runtime = ForeverRuntime()
    application = app(make_services(), runtime=runtime)
    body: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    body.put_nowait({"type": "http.request", "body": b"", "more_body": True})  # still open
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invoke/Greeter/greet",
        "http_version": "2",
        "headers": [(b"content-type", V6.encode())],
    }
    call = asyncio.create_task(application(scope, body.get, send))
    await asyncio.wait_for(runtime.started.wait(), 5)

    assert application.cut_attempts() == 1
    await asyncio.wait_for(call, 5)

    assert runtime.cancelled.is_set()
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert application.cut_attempts() == 0, "a finished attempt is forgotten"
