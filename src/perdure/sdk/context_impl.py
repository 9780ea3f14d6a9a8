"""The context API (context.py) implemented on the VM and the invocation loop.

Every method does its sys call at once, synchronously: that is what journals the step, in
program order. What it returns is a future over the VM handle; awaiting it goes through
``Attempt.wait_for``. VM errors raised by sys calls become AttemptAbortedError, which derives
from BaseException so that the handler's own ``except Exception`` cannot hide them.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
import traceback
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from random import Random
from typing import Any, Generic, TypeVar
from uuid import UUID

from perdure.sdk.context import (
    CallFuture,
    CallTarget,
    Context,
    DurableFuture,
    DurablePromise,
    ObjectContext,
    ObjectSharedContext,
    Request,
    RunOptions,
    SendHandle,
    WorkflowContext,
    WorkflowSharedContext,
)
from perdure.sdk.errors import InternalSignal, RetryableError, TerminalError
from perdure.sdk.future_impl import (
    CallFutureImpl,
    HandleFuture,
    SendHandleImpl,
    decoder,
    guard,
    invocation_id_of,
    keys_of,
    running_closure,
    void,
)
from perdure.sdk.invocation import Attempt, HandlerSpec, describe_exception
from perdure.sdk.serde import BytesSerde, JsonSerde, serde_for
from perdure.sdk.serde_protocol import Serde
from perdure.sdk.vm import (
    Failure,
    Input,
    Result,
    RetryPolicy,
)

__all__ = ["HandleFuture", "make_context"]

logger = logging.getLogger("perdure.sdk")

T = TypeVar("T")

_JSON: Serde[Any] = JsonSerde()
_BYTES: Serde[Any] = BytesSerde()


# --- Serdes -------------------------------------------------------------------------------


def _serde(serde: Serde[Any] | None, type_hint: Any = None) -> Serde[Any]:
    if serde is not None:
        return serde
    if type_hint is not None:
        return serde_for(type_hint)
    return _JSON


def _return_hint(fn: Callable[..., Any]) -> Any:
    """The return annotation of ``fn`` (through partials), or None when absent or unreadable."""
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    try:
        hint = typing.get_type_hints(target).get("return")
    except Exception:  # an annotation that does not resolve: fall back to plain JSON
        return None
    if hint is None or hint is type(None):
        return None
    origin = typing.get_origin(hint)
    if origin is not None and getattr(origin, "__name__", "") in ("Coroutine", "Awaitable"):
        return None
    return hint


def _is_async(fn: Callable[..., Any]) -> bool:
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    return inspect.iscoroutinefunction(target)


async def _call_closure(name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Run a ctx.run closure: async ones in this task, plain ones in a worker thread."""
    token = running_closure.set(name)
    try:
        if _is_async(fn):
            return await fn(*args)
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        value = await loop.run_in_executor(None, call)
        if inspect.isawaitable(value):  # a lambda returning a coroutine
            value = await value
        return value
    finally:
        running_closure.reset(token)


def _millis(delta: timedelta | None) -> int | None:
    return None if delta is None else max(int(delta.total_seconds() * 1000), 0)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _retry_policy(options: RunOptions[Any]) -> RetryPolicy:
    return RetryPolicy(
        initial_interval_ms=_millis(options.initial_retry_interval),
        factor=options.retry_interval_factor,
        max_interval_ms=_millis(options.max_retry_interval),
        max_attempts=options.max_attempts,
        max_duration_ms=_millis(options.max_duration or options.max_retry_duration),
    )


def _resolve_target(target: CallTarget) -> tuple[str, str, Serde[Any], Serde[Any]]:
    """(service, handler, input serde, output serde) for anything calls accept."""
    if isinstance(target, tuple):
        service, handler = target
        return service, handler, _JSON, _JSON
    if isinstance(target, str):
        service, sep, handler = target.partition("/")
        if not sep or not service or not handler:
            raise ValueError(f"call target {target!r} is not of the form 'Service/handler'")
        return service, handler, _JSON, _JSON
    from perdure.sdk.handler import handler_of

    definition = handler_of(target)
    return (
        definition.service_name,
        definition.name,
        definition.input.serde,
        definition.output.serde,
    )


def _headers(headers: Mapping[str, str] | None) -> list[tuple[str, str]]:
    return list(headers.items()) if headers else []


# --- Contexts -----------------------------------------------------------------------------


class _BaseContext(Context):
    """Everything a service handler can do; the keyed contexts add to it."""

    def __init__(self, attempt: Attempt, invocation: Input) -> None:
        self._attempt = attempt
        self._vm = attempt.vm
        self._invocation = invocation
        self._random = Random(invocation.random_seed)

    def _future(self, handle: int, convert: Callable[[Result], T]) -> HandleFuture[T]:
        return HandleFuture(self._attempt, handle, convert)

    # -- request and determinism -------------------------------------------------------------

    def request(self) -> Request:
        inv = self._invocation
        return Request(
            id=inv.invocation_id,
            headers=dict(inv.headers),
            attempt_headers=dict(self._attempt.attempt_headers),
            body=inv.body,
            key=inv.key,
            idempotency_key=inv.idempotency_key,
            scope=inv.scope,
            limit_key=inv.limit_key,
        )

    def random(self) -> Random:
        return self._random

    def uuid(self) -> UUID:
        return UUID(int=self._random.getrandbits(128), version=4)

    def time(self) -> DurableFuture[float]:
        # The same run name as restate-sdk, so journals look alike in the UI.
        return self.run("timestamp", time.time, type_hint=float)

    # -- ctx.run -------------------------------------------------------------------------------

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
        options = options or RunOptions()
        hint = type_hint if type_hint is not None else options.type_hint
        chosen = _serde(serde or options.serde, hint if hint is not None else _return_hint(fn))
        with guard:
            run = self._vm.sys_run(name)
        if not run.replayed:
            policy = _retry_policy(options)
            execute = functools.partial(
                self._execute_run, run.handle, name, fn, args, chosen, policy
            )
            self._attempt.register_run(run.handle, execute)
        return self._future(run.handle, decoder(chosen))

    async def _execute_run(
        self,
        handle: int,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        serde: Serde[Any],
        policy: RetryPolicy,
    ) -> None:
        started = time.monotonic()
        try:
            value = await _call_closure(name, fn, args)
            self._vm.propose_run_completion(handle, serde.serialize(value))
        except TerminalError as exc:
            metadata = tuple((exc.metadata or {}).items())
            self._vm.propose_run_completion(handle, Failure(exc.status_code, exc.message, metadata))
        except (asyncio.CancelledError, InternalSignal):
            raise
        except Exception as exc:
            elapsed_ms = int((time.monotonic() - started) * 1000)
            logger.warning(
                "%s: ctx.run %r failed: %s", self._attempt.where, name, describe_exception(exc)
            )
            retryable = exc if isinstance(exc, RetryableError) else None
            self._vm.propose_run_failure(
                handle,
                Failure(retryable.status_code if retryable else 500, describe_exception(exc)),
                attempt_duration_ms=elapsed_ms,
                policy=policy,
                retry_after_ms=_millis(retryable.retry_after) if retryable else None,
                stacktrace="".join(traceback.format_exception(exc)),
            )

    # -- timers ------------------------------------------------------------------------------

    def sleep(self, delta: timedelta, name: str | None = None) -> DurableFuture[None]:
        wake_up = _now_ms() + (_millis(delta) or 0)
        with guard:
            handle = self._vm.sys_sleep(wake_up, name or "")
        return self._future(handle, void)

    # -- calls ---------------------------------------------------------------------------------

    def service_call(
        self,
        target: CallTarget,
        arg: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[Any]:
        service, handler, input_serde, output_serde = _resolve_target(target)
        return self._call(
            service,
            handler,
            input_serde.serialize(arg),
            output_serde,
            key,
            idempotency_key,
            headers,
        )

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
        return self._call(service, handler, arg, _BYTES, key, idempotency_key, headers)

    def _call(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        output_serde: Serde[Any],
        key: str | None,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None,
    ) -> CallFutureImpl[Any]:
        with guard:
            handles = self._vm.sys_call(
                service,
                handler,
                parameter,
                key=key,
                idempotency_key=idempotency_key,
                headers=_headers(headers),
            )
        id_future = self._future(handles.invocation_id_handle, invocation_id_of)
        return CallFutureImpl(
            self._attempt, handles.result_handle, decoder(output_serde), id_future, self
        )

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
        service, handler, input_serde, _ = _resolve_target(target)
        return self._send(
            service, handler, input_serde.serialize(arg), key, delay, idempotency_key, headers
        )

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
        return self._send(service, handler, arg, key, delay, idempotency_key, headers)

    def _send(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        key: str | None,
        delay: timedelta | None,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None,
    ) -> SendHandle:
        invoke_time = _now_ms() + (_millis(delay) or 0) if delay else 0
        with guard:
            handle = self._vm.sys_send(
                service,
                handler,
                parameter,
                key=key,
                invoke_time_ms=invoke_time,
                idempotency_key=idempotency_key,
                headers=_headers(headers),
            )
        return SendHandleImpl(self._future(handle, invocation_id_of), self)

    def cancel_invocation(self, invocation_id: str) -> None:
        if not invocation_id:
            raise ValueError("cancel_invocation needs an invocation id")
        with guard:
            self._vm.sys_cancel_invocation(invocation_id)

    def attach_invocation(
        self, invocation_id: str, serde: Serde[T] | None = None, type_hint: Any = None
    ) -> DurableFuture[T]:
        if not invocation_id:
            raise ValueError("attach_invocation needs an invocation id")
        with guard:
            handle = self._vm.sys_attach_invocation(invocation_id)
        return self._future(handle, decoder(_serde(serde, type_hint)))

    # -- awakeables and signals ----------------------------------------------------------------

    def awakeable(
        self, serde: Serde[T] | None = None, type_hint: Any = None
    ) -> tuple[str, DurableFuture[T]]:
        with guard:
            awakeable_id, handle = self._vm.sys_awakeable()
        return awakeable_id, self._future(handle, decoder(_serde(serde, type_hint)))

    def resolve_awakeable(
        self, awakeable_id: str, value: Any, serde: Serde[Any] | None = None
    ) -> None:
        data = _serde(serde).serialize(value)
        with guard:
            self._vm.sys_complete_awakeable(awakeable_id, data)

    def reject_awakeable(self, awakeable_id: str, message: str, code: int = 500) -> None:
        with guard:
            self._vm.sys_complete_awakeable(awakeable_id, Failure(code, message))

    def signal(
        self, name: str, serde: Serde[T] | None = None, type_hint: Any = None
    ) -> DurableFuture[T]:
        with guard:
            handle = self._vm.sys_signal(name)
        return self._future(handle, decoder(_serde(serde, type_hint)))

    def resolve_signal(
        self, invocation_id: str, name: str, value: Any, serde: Serde[Any] | None = None
    ) -> None:
        data = _serde(serde).serialize(value)
        with guard:
            self._vm.sys_complete_signal(invocation_id, name, data)

    def reject_signal(self, invocation_id: str, name: str, message: str, code: int = 500) -> None:
        with guard:
            self._vm.sys_complete_signal(invocation_id, name, Failure(code, message))


class _ObjectSharedContext(_BaseContext, ObjectSharedContext):
    def key(self) -> str:
        return self._invocation.key

    def get(
        self, name: str, serde: Serde[T] | None = None, type_hint: Any = None
    ) -> DurableFuture[T | None]:
        with guard:
            handle = self._vm.sys_state_get(name)
        return self._future(handle, decoder(_serde(serde, type_hint)))

    def state_keys(self) -> DurableFuture[list[str]]:
        with guard:
            handle = self._vm.sys_state_get_keys()
        return self._future(handle, keys_of)


class _ObjectContext(_ObjectSharedContext, ObjectContext):
    def set(self, name: str, value: Any, serde: Serde[Any] | None = None) -> None:
        data = _serde(serde).serialize(value)
        with guard:
            self._vm.sys_state_set(name, data)

    def clear(self, name: str) -> None:
        with guard:
            self._vm.sys_state_clear(name)

    def clear_all(self) -> None:
        with guard:
            self._vm.sys_state_clear_all()


class _Promise(DurablePromise[T], Generic[T]):
    def __init__(self, context: _BaseContext, name: str, serde: Serde[Any]) -> None:
        super().__init__(name)
        self._context = context
        self._serde = serde

    def value(self) -> DurableFuture[T]:
        with guard:
            handle = self._context._vm.sys_get_promise(self.name)
        return self._context._future(handle, decoder(self._serde))

    def peek(self) -> DurableFuture[T | None]:
        with guard:
            handle = self._context._vm.sys_peek_promise(self.name)
        return self._context._future(handle, decoder(self._serde))

    def resolve(self, value: T) -> DurableFuture[None]:
        data = self._serde.serialize(value)
        with guard:
            handle = self._context._vm.sys_complete_promise(self.name, data)
        return self._context._future(handle, void)

    def reject(self, message: str, code: int = 500) -> DurableFuture[None]:
        with guard:
            handle = self._context._vm.sys_complete_promise(self.name, Failure(code, message))
        return self._context._future(handle, void)


class _WorkflowSharedContext(_ObjectSharedContext, WorkflowSharedContext):
    def promise(
        self, name: str, serde: Serde[T] | None = None, type_hint: Any = None
    ) -> DurablePromise[T]:
        return _Promise(self, name, _serde(serde, type_hint))


class _WorkflowContext(_ObjectContext, _WorkflowSharedContext, WorkflowContext):
    pass


def make_context(spec: HandlerSpec, attempt: Attempt, invocation: Input) -> Context:
    """The context for a handler of this kind (see the table in context.py)."""
    handler_type = (spec.handler_type or "").upper()
    if spec.service_type == "VIRTUAL_OBJECT":
        if handler_type == "SHARED":
            return _ObjectSharedContext(attempt, invocation)
        return _ObjectContext(attempt, invocation)
    if spec.service_type == "WORKFLOW":
        if handler_type == "WORKFLOW":
            return _WorkflowContext(attempt, invocation)
        return _WorkflowSharedContext(attempt, invocation)
    return _BaseContext(attempt, invocation)
