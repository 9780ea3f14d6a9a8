"""Service, VirtualObject and Workflow definitions, their handler decorators and typed proxies."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal, TypeVar, Unpack

from perdure.sdk.handler import (
    HANDLER_ATTRIBUTE,
    SERVICE_NAME,
    Duration,
    Handler,
    HandlerKind,
    HandlerOptions,
    ObjectHandlerOptions,
    Options,
    RetryPolicy,
    ServiceType,
    WorkflowRunOptions,
    build_handler,
)

__all__ = ["Definition", "Service", "VirtualObject", "Workflow"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class Definition:
    """What Service, VirtualObject and Workflow share: a name, options and handlers.

    Not constructed directly; use one of the three subclasses.
    """

    service_type: ClassVar[ServiceType]

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: Duration | None = None,
        abort_timeout: Duration | None = None,
        journal_retention: Duration | None = None,
        idempotency_retention: Duration | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        **extra: Any,
    ) -> None:
        if not isinstance(name, str) or not SERVICE_NAME.match(name):
            raise ValueError(
                f"service name {name!r} must match {SERVICE_NAME.pattern} (letters, digits, "
                "'.', '_', '-'; starting with a letter)"
            )
        if name.lower().startswith("restate") or name.lower() == "openapi":
            raise ValueError(
                f"service name {name!r} is reserved: names starting with 'restate', and "
                "'openapi', belong to the server's own APIs"
            )
        self._name = name
        self._handlers: dict[str, Handler] = {}
        self._options = Options.build(
            f"{self.service_type.lower()} {name}",
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            **extra,
        )

    @property
    def name(self) -> str:
        """The service name callers use in URLs and calls."""
        return self._name

    @property
    def options(self) -> Options:
        """The service-level options emitted in the manifest."""
        return self._options

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The handlers registered so far, by name, in registration order."""
        return dict(self._handlers)

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers.values())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, handlers={list(self._handlers)})"

    def check(self) -> None:
        """Raise ``ValueError`` if the definition cannot be served as it is."""
        if not self._handlers:
            raise ValueError(
                f"{type(self).__name__} {self._name!r} has no handlers; decorate at least one "
                "async function with it"
            )

    def _decorator(
        self, name: str | None, kind: HandlerKind | None, options: Mapping[str, Any]
    ) -> Callable[[F], F]:
        def register(fn: F) -> F:
            handler = build_handler(
                fn,
                service_name=self._name,
                service_type=self.service_type,
                name=name,
                kind=kind,
                options=options,
            )
            if handler.name in self._handlers:
                raise ValueError(
                    f"{self._name} already has a handler named {handler.name!r}; "
                    "pass name=... to register this one under another name"
                )
            if kind == "workflow" and any(h.kind == "workflow" for h in self._handlers.values()):
                raise ValueError(
                    f"workflow {self._name} already has a run handler; a workflow has exactly "
                    "one, the others are @workflow.handler() (shared)"
                )
            self._handlers[handler.name] = handler
            return _tag(fn, handler)

        return register

    def _proxy(self, ctx: Any, key: str | None) -> ContextProxy:
        return ContextProxy(self, ctx, key)


def _tag(fn: F, handler: Handler) -> F:
    """A wrapper that remembers its handler, so one function may serve several services."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    setattr(wrapper, HANDLER_ATTRIBUTE, handler)
    return wrapper  # type: ignore[return-value]


class Service(Definition):
    """A stateless service: every handler may run any number of times concurrently.

    Example::

        greeter = perdure.Service("Greeter")

        @greeter.handler()
        async def greet(ctx: perdure.Context, name: str) -> str:
            return f"Hello {name}!"
    """

    service_type: ClassVar[ServiceType] = "SERVICE"

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: Duration | None = None,
        abort_timeout: Duration | None = None,
        journal_retention: Duration | None = None,
        idempotency_retention: Duration | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
        )

    def handler(
        self, name: str | None = None, **options: Unpack[HandlerOptions]
    ) -> Callable[[F], F]:
        """Register an ``async def handler(ctx)`` or ``async def handler(ctx, input)``.

        The input and return type hints choose the serdes and the manifest's JSON Schemas.

        Example::

            @greeter.handler(inactivity_timeout=timedelta(minutes=1))
            async def greet(ctx: perdure.Context, name: str) -> str: ...
        """
        return self._decorator(name, None, options)

    def proxy(self, ctx: Any) -> ContextProxy:
        """Call this service's handlers from another handler, by attribute.

        Example::

            greeting = await Greeter.proxy(ctx).greet("Ada")
            Greeter.proxy(ctx).greet.send("Bob", delay=timedelta(hours=1))
        """
        return self._proxy(ctx, None)


class VirtualObject(Definition):
    """A keyed object with durable state; exclusive handlers run one at a time per key.

    Example::

        counter = perdure.VirtualObject("Counter")

        @counter.handler()
        async def add(ctx: perdure.ObjectContext, delta: int) -> int: ...

        @counter.shared()
        async def get(ctx: perdure.ObjectSharedContext) -> int: ...
    """

    service_type: ClassVar[ServiceType] = "VIRTUAL_OBJECT"

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: Duration | None = None,
        abort_timeout: Duration | None = None,
        journal_retention: Duration | None = None,
        idempotency_retention: Duration | None = None,
        enable_lazy_state: bool | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            enable_lazy_state=enable_lazy_state,
        )

    def handler(
        self,
        name: str | None = None,
        kind: Literal["exclusive", "shared"] = "exclusive",
        **options: Unpack[ObjectHandlerOptions],
    ) -> Callable[[F], F]:
        """Register a handler; ``kind="shared"`` handlers run concurrently and only read state.

        Example::

            @counter.handler(kind="shared")
            async def get(ctx: perdure.ObjectSharedContext) -> int: ...
        """
        if kind not in ("exclusive", "shared"):
            raise ValueError(f"virtual object handlers are 'exclusive' or 'shared', not {kind!r}")
        return self._decorator(name, kind, options)

    def shared(
        self, name: str | None = None, **options: Unpack[ObjectHandlerOptions]
    ) -> Callable[[F], F]:
        """Shorthand for ``handler(kind="shared")``.

        Example::

            @counter.shared()
            async def get(ctx: perdure.ObjectSharedContext) -> int: ...
        """
        return self._decorator(name, "shared", options)

    def proxy(self, ctx: Any, key: str) -> ContextProxy:
        """Call the object with ``key`` from another handler, by attribute.

        Example::

            total = await Counter.proxy(ctx, "clicks").add(1)
        """
        return self._proxy(ctx, _check_key(key))


class Workflow(Definition):
    """A workflow: one run handler that runs once per key, plus shared handlers to talk to it.

    Example::

        signup = perdure.Workflow("Signup")

        @signup.main()
        async def run(ctx: perdure.WorkflowContext, email: str) -> bool:
            return await ctx.promise("confirmed")

        @signup.handler()
        async def confirm(ctx: perdure.WorkflowSharedContext) -> None:
            await ctx.promise("confirmed").resolve(True)
    """

    service_type: ClassVar[ServiceType] = "WORKFLOW"

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: Duration | None = None,
        abort_timeout: Duration | None = None,
        journal_retention: Duration | None = None,
        idempotency_retention: Duration | None = None,
        enable_lazy_state: bool | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            enable_lazy_state=enable_lazy_state,
        )

    def main(
        self, name: str | None = None, **options: Unpack[WorkflowRunOptions]
    ) -> Callable[[F], F]:
        """Register the run handler: it runs at most once per workflow key.

        Example::

            @signup.main(workflow_retention=timedelta(days=7))
            async def run(ctx: perdure.WorkflowContext, email: str) -> bool: ...
        """
        return self._decorator(name, "workflow", options)

    run = main
    """The same as :meth:`main`, for those who name the decorator after the handler."""

    def handler(
        self, name: str | None = None, **options: Unpack[ObjectHandlerOptions]
    ) -> Callable[[F], F]:
        """Register a shared handler that can read state and resolve promises while it runs.

        Example::

            @signup.handler()
            async def status(ctx: perdure.WorkflowSharedContext) -> str: ...
        """
        return self._decorator(name, "shared", options)

    @property
    def run_handler(self) -> Handler:
        """The handler registered with :meth:`main`."""
        for handler in self._handlers.values():
            if handler.kind == "workflow":
                return handler
        raise ValueError(
            f"workflow {self.name} has no run handler; decorate one with @{self.name.lower()}"
            ".main()"
        )

    def check(self) -> None:
        """Raise ``ValueError`` unless there is exactly one run handler."""
        super().check()
        _ = self.run_handler

    def proxy(self, ctx: Any, key: str) -> ContextProxy:
        """Call the workflow with ``key`` from another handler, by attribute.

        Example::

            Signup.proxy(ctx, "ada@example.com").run.send("ada@example.com")
        """
        return self._proxy(ctx, _check_key(key))


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"object and workflow keys are strings, got {type(key).__name__}")
    return key


_CALL = {"SERVICE": "service_call", "VIRTUAL_OBJECT": "object_call", "WORKFLOW": "workflow_call"}
_SEND = {"SERVICE": "service_send", "VIRTUAL_OBJECT": "object_send", "WORKFLOW": "workflow_send"}


class ContextProxy:
    """Handlers of one service (and key) bound to a context; attributes are handlers.

    Made by ``Service.proxy(ctx)``, ``VirtualObject.proxy(ctx, key)`` or
    ``Workflow.proxy(ctx, key)``.
    """

    def __init__(self, definition: Definition, ctx: Any, key: str | None) -> None:
        self._definition = definition
        self._ctx = ctx
        self._key = key

    def __getattr__(self, name: str) -> BoundHandler:
        handler = self._definition._handlers.get(name)
        if handler is None:
            known = ", ".join(self._definition._handlers) or "none"
            raise AttributeError(
                f"{self._definition.name} has no handler {name!r} (handlers: {known})"
            )
        return BoundHandler(handler, self._ctx, self._key)

    def __dir__(self) -> list[str]:
        return list(self._definition._handlers)


class BoundHandler:
    """One handler bound to a context (and key): call it, or ``send`` to it.

    Example::

        result = await Greeter.proxy(ctx).greet("Ada")
        handle = Greeter.proxy(ctx).greet.send("Bob", delay=timedelta(minutes=5))
    """

    def __init__(self, handler: Handler, ctx: Any, key: str | None) -> None:
        self.handler = handler
        self._ctx = ctx
        self._key = key

    def _args(self, arg: Any) -> tuple[Any, ...]:
        if not self.handler.takes_input and arg is not None:
            raise TypeError(
                f"{self.handler.service_name}.{self.handler.name} takes no input, got {arg!r}"
            )
        target: tuple[Any, ...] = (self.handler,)
        if self._key is not None:
            target += (self._key,)
        return (*target, arg)

    def __call__(
        self,
        arg: Any = None,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call the handler and return the context's durable future of its result."""
        method = getattr(self._ctx, _CALL[self.handler.service_type])
        return method(
            *self._args(arg),
            idempotency_key=idempotency_key,
            headers=dict(headers) if headers else None,
        )

    def send(
        self,
        arg: Any = None,
        *,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send to the handler without waiting for it, optionally after ``delay``."""
        from perdure.sdk.context import Context

        method = getattr(self._ctx, _SEND[self.handler.service_type])
        # Perdure's context spells it ``delay``; restate-sdk's context ``send_delay``.
        delay_name = "delay" if isinstance(self._ctx, Context) else "send_delay"
        return method(
            *self._args(arg),
            **{delay_name: delay},
            idempotency_key=idempotency_key,
            headers=dict(headers) if headers else None,
        )
