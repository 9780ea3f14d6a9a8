"""Errors of the SDK's public API, and the control-flow signals user code must not swallow.

::

    Exception
     ├── TerminalError               the invocation fails for good, no retry (status_code, metadata)
     │    └── InvocationCancelledError   this invocation was cancelled (409); catch it to compensate
     └── RetryableError              fail this attempt; the server retries (after retry_after)
    BaseException
     └── InternalSignal              the SDK stopping user code; never catch it
          ├── SuspendedError         the invocation suspended, waiting for something to happen
          └── AttemptAbortedError    the attempt failed (journal mismatch, protocol error, ...)

Any other exception raised by a handler is treated like a RetryableError with no delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

__all__ = [
    "AttemptAbortedError",
    "InternalSignal",
    "InvocationCancelledError",
    "RetryableError",
    "SuspendedError",
    "TerminalError",
    "is_internal_exception",
]


class TerminalError(Exception):
    """Fail without retrying: the caller receives ``status_code`` and ``message``.

    Raised inside ``ctx.run``, the failure is journaled as the run's result (and raised again
    from the run's future); raised by a handler, it becomes the invocation's result.
    ``metadata`` travels with the failure (needs service protocol V6+).

    Example::

        if amount <= 0:
            raise TerminalError("amount must be positive", status_code=400)
    """

    def __init__(
        self,
        message: str,
        status_code: int = 500,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.metadata: dict[str, str] | None = dict(metadata) if metadata else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code})"


class InvocationCancelledError(TerminalError):
    """This invocation was cancelled. Raised from the await that noticed it.

    The handler may catch it to compensate: after cancellation, ctx.run, calls and state
    still work. Re-raise it (or let it propagate) to end the invocation as cancelled.

    Example::

        try:
            await ctx.run("charge", charge_card)
            await ctx.sleep(timedelta(days=1))
        except InvocationCancelledError:
            await ctx.run("refund", refund_card)
            raise
    """

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message, status_code=409)


class RetryableError(Exception):
    """Fail this attempt and let the server retry it, after ``retry_after`` if given.

    Example::

        if response.status_code == 429:
            raise RetryableError("rate limited", retry_after=timedelta(seconds=30))
    """

    def __init__(
        self,
        message: str,
        status_code: int = 500,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


_DO_NOT_CATCH = (
    "\nThis is how the Perdure SDK stops handler code; it is not an error of the handler. If "
    "you see it, some code caught it, most likely with a bare `except:` or `except "
    "BaseException:`. Catch `Exception` (or `TerminalError`) instead, or re-raise it."
)


class InternalSignal(BaseException):
    """The SDK stopping handler code. Derives from BaseException so `except Exception` passes
    it through; never catch it."""

    def __init__(self, message: str) -> None:
        super().__init__(message + _DO_NOT_CATCH)


class SuspendedError(InternalSignal):
    """The invocation suspended; the server resumes it when what it awaits has happened."""

    def __init__(self) -> None:
        super().__init__(
            "The invocation suspended while waiting; the server will resume it when there "
            "is progress to make."
        )


class AttemptAbortedError(InternalSignal):
    """This attempt cannot continue (the reason went to the server); the server retries it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"This invocation attempt was aborted: {reason}")
        self.reason = reason


def is_internal_exception(exc: BaseException) -> bool:
    """True for the SDK's control-flow signals, which handler code must let through."""
    return isinstance(exc, InternalSignal)
