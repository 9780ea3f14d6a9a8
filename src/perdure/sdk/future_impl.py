"""Durable futures over VM handles: await one result, remember it, raise its failure."""

from __future__ import annotations

import contextvars
import typing
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, TypeVar

from perdure.sdk.context import CallFuture, Context, DurableFuture, SendHandle
from perdure.sdk.errors import AttemptAbortedError, TerminalError
from perdure.sdk.invocation import Attempt
from perdure.sdk.serde_protocol import Serde
from perdure.sdk.vm import NOT_READY, Failure, Result, VMError, single

__all__ = [
    "CallFutureImpl",
    "HandleFuture",
    "SendHandleImpl",
    "decoder",
    "guard",
    "invocation_id_of",
    "keys_of",
    "running_closure",
    "void",
]

T = TypeVar("T")


#: The name of the ctx.run closure executing in this task or thread, if any.
running_closure: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "perdure_running_closure", default=None
)


class _Guard:
    """Wraps every sys call: refuses them inside ctx.run closures, and turns a VMError into
    the signal that stops handler code."""

    __slots__ = ()

    def __enter__(self) -> None:
        name = running_closure.get()
        if name is not None:
            # The closure's steps would be journaled at a time that depends on when the
            # closure runs, which replays cannot reproduce; a retry cannot fix that either.
            raise TerminalError(
                f"the context was used inside ctx.run({name!r}); a ctx.run closure must not "
                "call ctx methods or await durable futures. Do those steps in the handler, "
                "before or after the ctx.run"
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, VMError):
            raise AttemptAbortedError(str(exc)) from exc


guard = _Guard()


# --- Futures ------------------------------------------------------------------------------


class HandleFuture(DurableFuture[T]):
    """A durable future over one VM handle; the result is taken once and remembered."""

    __slots__ = ("_attempt", "_convert", "_done", "_error", "_value", "handle")

    def __init__(self, attempt: Attempt, handle: int, convert: Callable[[Result], T]) -> None:
        self._attempt = attempt
        self.handle = handle
        self._convert = convert
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None

    @property
    def attempt(self) -> Attempt:
        return self._attempt

    def is_completed(self) -> bool:
        return self._done or self._attempt.vm.is_completed(self.handle)

    def __await__(self) -> Generator[Any, Any, T]:
        return self._result().__await__()

    async def _result(self) -> T:
        while not self._done:
            if not self._attempt.vm.is_completed(self.handle):
                await self._attempt.wait_for(single(self.handle))
            if not self._done:
                self.settle()
        return self.outcome()

    def settle(self) -> bool:
        """Take the result from the VM if it is there; True once the future is done."""
        if self._done:
            return True
        with guard:
            result = self._attempt.vm.take_notification(self.handle)
        if result is NOT_READY:
            return False
        assert not isinstance(result, type(NOT_READY))
        try:
            self._value = self._convert(result)
        except Exception as exc:  # a failure, or a payload the serde refuses: raised on await
            self._error = exc
        self._done = True
        return True

    def outcome(self) -> T:
        """The settled value (or raise the settled error)."""
        if self._error is not None:
            raise self._error
        return typing.cast(T, self._value)

    @property
    def failed(self) -> bool:
        return self._done and self._error is not None


class CallFutureImpl(CallFuture[T], HandleFuture[T]):
    __slots__ = ("_context", "_id")

    def __init__(
        self,
        attempt: Attempt,
        handle: int,
        convert: Callable[[Result], T],
        id_future: HandleFuture[str],
        context: Context,
    ) -> None:
        HandleFuture.__init__(self, attempt, handle, convert)
        self._id = id_future
        self._context = context

    async def invocation_id(self) -> str:
        return await self._id

    async def cancel_invocation(self) -> None:
        self._context.cancel_invocation(await self._id)


class SendHandleImpl(SendHandle):
    __slots__ = ("_context", "_id")

    def __init__(self, id_future: HandleFuture[str], context: Context) -> None:
        self._id = id_future
        self._context = context

    async def invocation_id(self) -> str:
        return await self._id

    async def cancel_invocation(self) -> None:
        self._context.cancel_invocation(await self._id)


def _raise_failure(result: Result) -> None:
    if isinstance(result, Failure):
        raise TerminalError(result.message, result.code, dict(result.metadata) or None)


def decoder(serde: Serde[Any]) -> Callable[[Result], Any]:
    def convert(result: Result) -> Any:
        _raise_failure(result)
        if result is None:
            return None
        if isinstance(result, bytes):
            return serde.deserialize(result)
        return result

    return convert


def void(result: Result) -> None:
    _raise_failure(result)


def invocation_id_of(result: Result) -> str:
    _raise_failure(result)
    return str(result)


def keys_of(result: Result) -> list[str]:
    _raise_failure(result)
    return list(result) if isinstance(result, tuple) else []
