"""The values durable steps return: DurableFuture, CallFuture, SendHandle, DurablePromise.

Abstract here; context_impl.py and future_impl.py implement them on the VM. Re-exported by
``perdure.sdk.context`` and ``perdure``.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["CallFuture", "DurableFuture", "DurablePromise", "SendHandle"]

T = TypeVar("T")


class DurableFuture(Awaitable[T], abc.ABC):
    """The result of a durable step: await it, or pass it to a combinator.

    Awaiting twice returns the same result (or raises the same error) without waiting again.
    """

    @abc.abstractmethod
    def is_completed(self) -> bool:
        """True when the result is known: awaiting will not wait."""

    @abc.abstractmethod
    def __await__(self) -> Generator[Any, Any, T]: ...


class CallFuture(DurableFuture[T]):
    """The result of a call, plus the callee's invocation id."""

    @abc.abstractmethod
    async def invocation_id(self) -> str:
        """The invocation id of the callee (known before its result)."""

    @abc.abstractmethod
    async def cancel_invocation(self) -> None:
        """Cancel the callee: ``ctx.cancel_invocation(await f.invocation_id())``."""


class SendHandle(abc.ABC):
    """A one-way call that was sent."""

    @abc.abstractmethod
    async def invocation_id(self) -> str:
        """The invocation id of the callee."""

    @abc.abstractmethod
    async def cancel_invocation(self) -> None:
        """Cancel the callee."""


class DurablePromise(Generic[T], abc.ABC):
    """A workflow's named promise: resolved once, by any handler of the workflow.

    Example::

        approved = await ctx.promise("approval").value()        # in the run handler
        await ctx.promise("approval").resolve(True)             # in a shared handler
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    def value(self) -> DurableFuture[T]:
        """The promise's value, once resolved (raises TerminalError if rejected)."""

    @abc.abstractmethod
    def peek(self) -> DurableFuture[T | None]:
        """The value if already resolved, else None; never waits for resolution."""

    @abc.abstractmethod
    def resolve(self, value: T) -> DurableFuture[None]:
        """Resolve the promise (fails with TerminalError if it already was)."""

    @abc.abstractmethod
    def reject(self, message: str, code: int = 500) -> DurableFuture[None]:
        """Reject the promise: its awaiters get a TerminalError."""

    def __await__(self) -> Generator[Any, Any, T]:
        return self.value().__await__()
