"""Plain values of the context API: how ``ctx.run`` retries (RunOptions), and the request
that started the invocation (Request). Re-exported by ``perdure.sdk.context`` and ``perdure``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from perdure.sdk.serde_protocol import Serde

__all__ = ["Request", "RunOptions"]

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions(Generic[T]):
    """How ``ctx.run`` stores the closure's result and retries it when it fails.

    A closure that raises :class:`~perdure.TerminalError` fails at once; any other exception
    is retried. With no retry field set, retries go on for as long as the server's retry
    policy allows. Setting any of them switches to exponential backoff starting at
    ``initial_retry_interval`` (50 ms), growing by ``retry_interval_factor`` (2) up to
    ``max_retry_interval`` (10 s), for at most ``max_attempts`` executions (the first
    included) or ``max_duration``; then the last error is journaled and raised as a
    TerminalError, so the handler can compensate.

    Example::

        await ctx.run("charge", charge, order, options=RunOptions(max_attempts=3))
    """

    serde: Serde[T] | None = None
    type_hint: Any = None
    max_attempts: int | None = None
    max_duration: timedelta | None = None
    initial_retry_interval: timedelta | None = None
    max_retry_interval: timedelta | None = None
    retry_interval_factor: float | None = None
    max_retry_duration: timedelta | None = None
    """The same as ``max_duration`` (the name restate-sdk used first)."""


@dataclass(frozen=True)
class Request:
    """The request that started this invocation."""

    id: str
    """The invocation id (``inv_1...``)."""
    headers: Mapping[str, str]
    """The headers the caller sent with the request."""
    attempt_headers: Mapping[str, str]
    """The HTTP headers of this attempt, as the server sent them to the endpoint."""
    body: bytes
    """The raw input."""
    key: str = ""
    """The virtual object or workflow key; empty for services."""
    idempotency_key: str | None = None
    scope: str | None = None
    limit_key: str | None = None
