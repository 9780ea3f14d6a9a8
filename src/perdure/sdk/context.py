"""The context API handlers program against: abstract classes only (see context_impl.py).

Which context a handler receives depends on what it is:

=====================================  =========================
handler                                context
=====================================  =========================
service handler                        :class:`Context`
virtual object, exclusive (default)    :class:`ObjectContext`
virtual object, shared                 :class:`ObjectSharedContext`
workflow ``run`` handler               :class:`WorkflowContext`
workflow, other handlers (shared)      :class:`WorkflowSharedContext`
=====================================  =========================

Everything durable returns a :class:`DurableFuture`: await it for the result, or combine
several with ``perdure.gather``, ``perdure.select`` and friends. Creating the future is what
journals the step; awaiting it only waits for the result.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from random import Random
from typing import Any, ParamSpec, TypeVar, overload
from uuid import UUID

from perdure.sdk.futures import CallFuture, DurableFuture, DurablePromise, SendHandle
from perdure.sdk.serde_protocol import Serde
from perdure.sdk.values import Request, RunOptions

__all__ = [
    "CallFuture",
    "CallTarget",
    "Context",
    "DurableFuture",
    "DurablePromise",
    "ObjectContext",
    "ObjectSharedContext",
    "Request",
    "RunOptions",
    "SendHandle",
    "WorkflowContext",
    "WorkflowSharedContext",
]

T = TypeVar("T")
P = ParamSpec("P")
In = TypeVar("In")
Out = TypeVar("Out")

CallTarget = Callable[..., Awaitable[Any]] | tuple[str, str] | str
"""What calls address: a handler function of a Perdure service definition, a ``(service,
handler)`` pair, or ``"Service/handler"``. A handler function brings its own serdes; names use
JSON."""


class Context(abc.ABC):
    """What every handler can do."""

    @abc.abstractmethod
    def request(self) -> Request:
        """The request that started the invocation."""

    # -- deterministic helpers -----------------------------------------------------------

    @abc.abstractmethod
    def random(self) -> Random:
        """A random generator seeded per invocation: the same numbers on every replay."""

    @abc.abstractmethod
    def uuid(self) -> UUID:
        """A random UUID (version 4) drawn from ``random()``: stable across replays."""

    @abc.abstractmethod
    def time(self) -> DurableFuture[float]:
        """The current time (seconds since the epoch), journaled so replays see the same."""

    # -- side effects ----------------------------------------------------------------------

    @overload
    def run(
        self,
        name: str,
        fn: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        options: RunOptions[T] | None = None,
        serde: Serde[T] | None = None,
        type_hint: Any = None,
    ) -> DurableFuture[T]: ...

    @overload
    def run(
        self,
        name: str,
        fn: Callable[..., T],
        /,
        *args: Any,
        options: RunOptions[T] | None = None,
        serde: Serde[T] | None = None,
        type_hint: Any = None,
    ) -> DurableFuture[T]: ...

    @abc.abstractmethod
    def run(
        self,
        name: str,
        fn: Callable[..., Any],
        /,
        *args: Any,
        options: RunOptions[Any] | None = None,
        serde: Serde[Any] | None = None,
        type_hint: Any = None,
    ) -> DurableFuture[Any]:
        """Run ``fn(*args)`` once and journal its result; replays return the journaled result.

        ``fn`` may be a plain function (run in a worker thread) or an async one. The result
        is serialised with ``serde``, else with the serde for ``type_hint`` or for ``fn``'s
        return annotation, else as JSON. See :class:`RunOptions` for retries.

        Example::

            user = await ctx.run("fetch user", fetch_user, user_id)
        """

    @overload
    def run_typed(
        self,
        name: str,
        fn: Callable[P, Awaitable[T]],
        options: RunOptions[T] = ...,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> DurableFuture[T]: ...

    @overload
    def run_typed(
        self,
        name: str,
        fn: Callable[P, T],
        options: RunOptions[T] = ...,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> DurableFuture[T]: ...

    def run_typed(
        self,
        name: str,
        fn: Callable[..., Any],
        options: RunOptions[Any] | None = None,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> DurableFuture[Any]:
        """restate-sdk's spelling of :meth:`run`, with keyword arguments for ``fn`` too."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        return self.run(name, fn, *args, options=options)

    @abc.abstractmethod
    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]:
        """A durable timer: survives restarts; the invocation suspends while it waits.

        Example::

            await ctx.sleep(timedelta(days=1))
        """

    # -- calls -----------------------------------------------------------------------------

    # A handler function as the target types the call: its input type is checked and the
    # future carries its output type. Names ("Service/handler") give CallFuture[Any].
    @overload
    def service_call(
        self,
        target: Callable[[Any, In], Awaitable[Out]],
        arg: In,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Out]: ...

    @overload
    def service_call(
        self,
        target: Callable[[Any], Awaitable[Out]],
        arg: None = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Out]: ...

    @overload
    def service_call(
        self,
        target: tuple[str, str] | str,
        arg: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Any]: ...

    @abc.abstractmethod
    def service_call(
        self,
        target: CallTarget,
        arg: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Any]:
        """Call a handler and get a future of its result.

        With a handler function as the target, type checkers see the call's types:
        ``ctx.service_call(greet, "Till")`` is a ``CallFuture[str]`` when ``greet`` returns
        ``str``, and passing an ``int`` where it takes a ``str`` is an error.

        Example::

            greeting = await ctx.service_call(greet, "Till")
        """

    @overload
    def service_send(
        self,
        target: Callable[[Any, In], Awaitable[Any]],
        arg: In,
        *,
        key: str | None = None,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle: ...

    @overload
    def service_send(
        self,
        target: Callable[[Any], Awaitable[Any]] | tuple[str, str] | str,
        arg: Any = None,
        *,
        key: str | None = None,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def service_send(
        self,
        target: CallTarget,
        arg: Any = None,
        *,
        key: str | None = None,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle:
        """Call a handler without waiting for its result, after ``delay`` if given.

        With a handler function as the target, type checkers check the input's type.

        Example::

            ctx.service_send(greet, "Ada", delay=timedelta(hours=1))
        """

    @overload
    def object_call(
        self,
        target: Callable[[Any, In], Awaitable[Out]],
        key: str,
        arg: In,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Out]: ...

    @overload
    def object_call(
        self,
        target: Callable[[Any], Awaitable[Out]],
        key: str,
        arg: None = None,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Out]: ...

    @overload
    def object_call(
        self,
        target: tuple[str, str] | str,
        key: str,
        arg: Any = None,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Any]: ...

    def object_call(
        self,
        target: CallTarget,
        key: str,
        arg: Any = None,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Any]:
        """Call a virtual object's (or a workflow's) handler for ``key``; typed like
        :meth:`service_call`.

        Example::

            total = await ctx.object_call(add, "clicks", 1)
        """
        return self.service_call(
            target, arg, key=key, idempotency_key=idempotency_key, headers=headers
        )

    @overload
    def object_send(
        self,
        target: Callable[[Any, In], Awaitable[Any]],
        key: str,
        arg: In,
        *,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle: ...

    @overload
    def object_send(
        self,
        target: Callable[[Any], Awaitable[Any]] | tuple[str, str] | str,
        key: str,
        arg: Any = None,
        *,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle: ...

    def object_send(
        self,
        target: CallTarget,
        key: str,
        arg: Any = None,
        *,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle:
        """Send to a virtual object's (or a workflow's) handler for ``key``."""
        return self.service_send(
            target, arg, key=key, delay=delay, idempotency_key=idempotency_key, headers=headers
        )

    workflow_call = object_call
    workflow_send = object_send

    @abc.abstractmethod
    def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[bytes]:
        """Call by name with raw bytes in and out (what typed proxies are built on)."""

    @abc.abstractmethod
    def generic_send(
        self,
        service: str,
        handler: str,
        arg: bytes,
        *,
        key: str | None = None,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle:
        """Send by name with raw bytes."""

    @abc.abstractmethod
    def cancel_invocation(self, invocation_id: str) -> None:
        """Cancel another invocation; it sees an InvocationCancelledError and may compensate."""

    @overload
    def attach_invocation(
        self, invocation_id: str, serde: Serde[T], type_hint: Any = None
    ) -> DurableFuture[T]: ...

    @overload
    def attach_invocation(
        self, invocation_id: str, serde: None = None, *, type_hint: type[T]
    ) -> DurableFuture[T]: ...

    @overload
    def attach_invocation(
        self, invocation_id: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]: ...

    @abc.abstractmethod
    def attach_invocation(
        self, invocation_id: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]:
        """Wait for another invocation's result."""

    # -- awakeables and signals ------------------------------------------------------------

    @overload
    def awakeable(self, serde: Serde[T], type_hint: Any = None) -> tuple[str, DurableFuture[T]]: ...

    @overload
    def awakeable(
        self, serde: None = None, *, type_hint: type[T]
    ) -> tuple[str, DurableFuture[T]]: ...

    @overload
    def awakeable(
        self, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> tuple[str, DurableFuture[Any]]: ...

    @abc.abstractmethod
    def awakeable(
        self, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> tuple[str, DurableFuture[Any]]:
        """An id to hand to someone else, and a future resolved when they complete it.

        Example::

            awakeable_id, approved = ctx.awakeable(type_hint=bool)
            await ctx.run("ask", send_approval_email, awakeable_id)
            if await approved: ...
        """

    @abc.abstractmethod
    def resolve_awakeable(
        self, awakeable_id: str, value: Any, serde: Serde[Any] | None = None
    ) -> None:
        """Complete someone's awakeable with a value."""

    @abc.abstractmethod
    def reject_awakeable(self, awakeable_id: str, message: str, code: int = 500) -> None:
        """Complete someone's awakeable with a failure (they get a TerminalError)."""

    @overload
    def signal(self, name: str, serde: Serde[T], type_hint: Any = None) -> DurableFuture[T]: ...

    @overload
    def signal(self, name: str, serde: None = None, *, type_hint: type[T]) -> DurableFuture[T]: ...

    @overload
    def signal(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]: ...

    @abc.abstractmethod
    def signal(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]:
        """A future of the named signal ``name`` sent to this invocation."""

    @abc.abstractmethod
    def resolve_signal(
        self, invocation_id: str, name: str, value: Any, serde: Serde[Any] | None = None
    ) -> None:
        """Send the named signal ``name`` with a value to another invocation."""

    @abc.abstractmethod
    def reject_signal(self, invocation_id: str, name: str, message: str, code: int = 500) -> None:
        """Send the named signal ``name`` as a failure to another invocation."""


class ObjectSharedContext(Context):
    """A shared handler of a virtual object: reads its state, never writes it."""

    @abc.abstractmethod
    def key(self) -> str:
        """The object's key."""

    @overload
    def get(self, name: str, serde: Serde[T], type_hint: Any = None) -> DurableFuture[T | None]: ...

    @overload
    def get(
        self, name: str, serde: None = None, *, type_hint: type[T]
    ) -> DurableFuture[T | None]: ...

    @overload
    def get(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]: ...

    @abc.abstractmethod
    def get(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurableFuture[Any]:
        """The value of state ``name``, or None when unset."""

    @abc.abstractmethod
    def state_keys(self) -> DurableFuture[list[str]]:
        """The names of all state entries."""


class ObjectContext(ObjectSharedContext):
    """An exclusive handler of a virtual object: one at a time per key; writes state."""

    @abc.abstractmethod
    def set(self, name: str, value: Any, serde: Serde[Any] | None = None) -> None:
        """Set state ``name``."""

    @abc.abstractmethod
    def clear(self, name: str) -> None:
        """Remove state ``name``."""

    @abc.abstractmethod
    def clear_all(self) -> None:
        """Remove all state of this object."""


class WorkflowSharedContext(ObjectSharedContext):
    """A workflow's shared handler (queries, signals): reads state, resolves promises."""

    @overload
    def promise(self, name: str, serde: Serde[T], type_hint: Any = None) -> DurablePromise[T]: ...

    @overload
    def promise(
        self, name: str, serde: None = None, *, type_hint: type[T]
    ) -> DurablePromise[T]: ...

    @overload
    def promise(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurablePromise[Any]: ...

    @abc.abstractmethod
    def promise(
        self, name: str, serde: Serde[Any] | None = None, type_hint: Any = None
    ) -> DurablePromise[Any]:
        """The workflow's promise ``name``."""


class WorkflowContext(ObjectContext, WorkflowSharedContext):
    """A workflow's ``run`` handler: runs once per key, owns the state."""
