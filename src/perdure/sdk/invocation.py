"""The one asyncio loop per invocation attempt: server bytes into the VM, awaits into progress.

Theory of operation. ``run_invocation`` owns one VM. A *pump* task reads the request body and
feeds it to the VM as it arrives, then tells waiters that something changed. The handler runs
in the caller's task. Each time it awaits a durable future whose result is not there yet, the
await runs ``Attempt.wait_for``, which loops:

1. send whatever the VM wrote (commands, proposals, hints);
2. ask the VM for progress on the await point;
3. then, depending on the answer: return (the result is ready); start the ctx.run closure the
   VM asks for, as a task; raise InvocationCancelledError into the handler; raise
   SuspendedError (the VM wrote a SuspensionMessage); or wait until the pump or a finished
   closure reports news, and go back to 1.

Several awaits may run this loop at once (user code awaiting in parallel tasks); they share
the pump, so none of them can swallow input another one needs. When the handler returns or
raises, the attempt writes the output (or the error) and ends: closures still running are
cancelled, and the pump stops. This is the shape of the official SDK's
``create_poll_or_cancel_coroutine``, with reading moved to one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from perdure.sdk.errors import (
    AttemptAbortedError,
    InternalSignal,
    InvocationCancelledError,
    RetryableError,
    SuspendedError,
    TerminalError,
)
from perdure.sdk.vm import (
    ANY_COMPLETED,
    CANCEL_SIGNAL_RECEIVED,
    SUSPENDED,
    VM,
    ExecuteRun,
    Failure,
    FutureTree,
    Input,
    VMError,
    VMOptions,
)

__all__ = ["Attempt", "HandlerSpec", "run_invocation"]

logger = logging.getLogger("perdure.sdk")

ServiceType = Literal["SERVICE", "VIRTUAL_OBJECT", "WORKFLOW"]
HandlerType = Literal["EXCLUSIVE", "SHARED", "WORKFLOW"]
Receive = Callable[[], Awaitable[bytes | None]]
Send = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """What the runtime needs to know about one handler to run an invocation of it.

    ``fn`` is the user's ``async def handler(ctx)`` or ``async def handler(ctx, input)``;
    which one is read from its signature unless ``takes_input`` says. ``decode_input`` turns
    the request body into ``input`` (raise TerminalError to refuse it for good);
    ``encode_output`` turns the return value into the response body. ``handler_type`` is
    None when the definition left it to the default (exclusive for virtual objects, shared
    for workflow handlers other than ``run``).

    Example::

        HandlerSpec("Greeter", "greet", "SERVICE", None, greet,
                    decode_input=json.loads, encode_output=lambda v: json.dumps(v).encode())
    """

    service_name: str
    handler_name: str
    service_type: ServiceType | str
    handler_type: HandlerType | str | None
    fn: Callable[..., Awaitable[Any]]
    decode_input: Callable[[bytes], Any]
    encode_output: Callable[[Any], bytes]
    takes_input: bool | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.service_name}/{self.handler_name}"

    def wants_input(self) -> bool:
        if self.takes_input is not None:
            return self.takes_input
        return _positional_count(self.fn) >= 2


@functools.cache
def _positional_count(fn: Callable[..., Any]) -> int:
    parameters = inspect.signature(fn).parameters.values()
    return sum(1 for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


async def run_invocation(
    handler: HandlerSpec,
    *,
    protocol_version: int,
    receive: Receive,
    send: Send,
    request_response: bool,
    headers: Sequence[tuple[str, str]] = (),
) -> None:
    """Run one attempt of an invocation of ``handler`` over one request stream.

    ``receive()`` returns the next chunk of the request body, or None once it has ended;
    ``send(data)`` writes to the response body. Returns when the attempt is over (the
    invocation ended, suspended or failed); the caller then closes the response. In
    ``request_response`` mode the whole request body is available up front, so every await
    that is not satisfied by it suspends; the loop itself is the same in both modes.
    """
    attempt = Attempt(
        protocol_version,
        receive,
        send,
        attempt_headers=headers,
        request_response=request_response,
    )
    await attempt.run(handler)


class Attempt:
    """One invocation attempt: its VM, its pump, its ctx.run tasks, and the await loop."""

    def __init__(
        self,
        protocol_version: int,
        receive: Receive,
        send: Send,
        *,
        attempt_headers: Sequence[tuple[str, str]] = (),
        request_response: bool = False,
        options: VMOptions | None = None,
    ) -> None:
        self.vm = VM(protocol_version, options)
        self.attempt_headers = tuple(attempt_headers)
        #: Informational: the loop is the same in both modes (see run_invocation).
        self.request_response = request_response
        self._receive = receive
        self._send = send
        self._news = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._input_done = False
        self._runs_to_start: dict[int, Callable[[], Awaitable[None]]] = {}
        self._run_tasks: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None
        self._send_failed = False
        self.where = "?"

    # -- the attempt -------------------------------------------------------------------------

    async def run(self, spec: HandlerSpec) -> None:
        from perdure.sdk.context_impl import make_context

        self.where = spec.qualified_name
        self._pump = asyncio.create_task(self._read_input(), name=f"perdure input {self.where}")
        try:
            invocation = await self._start()
            if invocation is None:
                return
            self.where = f"{spec.qualified_name} {invocation.invocation_id}"
            ctx = make_context(spec, self, invocation)
            await self._run_handler(spec, ctx, invocation)
        finally:
            await self._stop_tasks()
            with contextlib.suppress(AttemptAbortedError):
                await self.flush()

    async def _start(self) -> Input | None:
        """Waits for the StartMessage and the journal to replay; None if the stream failed."""
        while True:
            try:
                if self.vm.is_ready_to_execute():
                    return self.vm.sys_input()
            except VMError as exc:
                logger.warning("%s: the invocation could not start: %s", self.where, exc)
                return None
            if self._input_done:
                return None  # unreachable: a stream that ends early fails the VM
            await self._news.wait()

    async def _run_handler(self, spec: HandlerSpec, ctx: Any, invocation: Input) -> None:
        try:
            if spec.wants_input():
                result = await spec.fn(ctx, spec.decode_input(invocation.body))
            else:
                result = await spec.fn(ctx)
            output = spec.encode_output(result)
            self.vm.sys_write_output(output)
            self.vm.sys_end()
        except VMError as exc:
            logger.warning("%s: attempt failed: %s", self.where, exc)
        except InternalSignal:
            pass  # suspended or aborted: the VM already wrote what the server needs
        except Exception as exc:
            self._on_handler_error(exc)

    def _on_handler_error(self, exc: Exception) -> None:
        cause = _decisive_cause(exc)
        try:
            if isinstance(cause, TerminalError):
                logger.info("%s: ended with terminal error %r", self.where, cause)
                self.vm.sys_write_output(_failure_of(cause))
                self.vm.sys_end()
            elif isinstance(cause, InternalSignal):
                pass
            else:
                retry_after = cause.retry_after if isinstance(cause, RetryableError) else None
                code = cause.status_code if isinstance(cause, RetryableError) else 500
                logger.warning("%s: attempt failed, will be retried", self.where, exc_info=exc)
                self.vm.notify_error(
                    describe_exception(cause),
                    code=code,
                    stacktrace="".join(traceback.format_exception(exc)),
                    next_retry_delay_ms=_millis(retry_after),
                )
        except VMError as vm_exc:
            logger.warning("%s: attempt failed: %s", self.where, vm_exc)

    async def _stop_tasks(self) -> None:
        tasks = [*self._run_tasks, *([self._pump] if self._pump is not None else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- input and output ------------------------------------------------------------------

    async def _read_input(self) -> None:
        try:
            while (chunk := await self._receive()) is not None:
                if chunk:
                    self.vm.notify_input(chunk)
                    self._pulse()
        except Exception as exc:  # the transport's way of saying the server left varies
            logger.info("%s: reading the request failed: %r", self.where, exc)
        finally:
            # Whatever ended the input, waiting for more of it is over: awaits now suspend.
            self.vm.notify_input_closed()
            self._input_done = True
            self._pulse()

    def _pulse(self) -> None:
        """Wake every waiter: the VM may be able to make progress now."""
        self._news.set()
        self._news = asyncio.Event()

    async def flush(self) -> None:
        """Send what the VM wrote. The lock keeps chunks in order across concurrent awaits.

        Raises AttemptAbortedError when the response cannot be written any more: the server
        is gone, and handler code must not carry on as if its steps were journaled.
        """
        async with self._send_lock:
            data = self.vm.take_output()
            if not data:
                return
            if self._send_failed:
                raise AttemptAbortedError("the connection to the server was lost")
            try:
                await self._send(data)
            except Exception as exc:
                self._send_failed = True
                raise AttemptAbortedError(
                    f"the connection to the server was lost ({exc!r})"
                ) from exc

    # -- awaiting --------------------------------------------------------------------------

    async def wait_for(self, tree: FutureTree) -> None:
        """Return once the VM can make progress on ``tree``; raise if the handler must stop."""
        while True:
            news = self._news
            await self.flush()
            try:
                progress = self.vm.do_progress(tree)
            except VMError as exc:
                await self.flush()
                raise AttemptAbortedError(str(exc)) from exc
            if progress is ANY_COMPLETED:
                return
            if isinstance(progress, ExecuteRun):
                self._start_run(progress.handle)
                continue
            if progress is CANCEL_SIGNAL_RECEIVED:
                await self.flush()
                raise InvocationCancelledError()
            if progress is SUSPENDED:
                await self.flush()
                raise SuspendedError()
            await self.flush()  # an AwaitingOn hint, if the VM wrote one
            await news.wait()

    # -- ctx.run ---------------------------------------------------------------------------

    def register_run(self, handle: int, execute: Callable[[], Awaitable[None]]) -> None:
        """Remember how to execute the closure of ``handle`` when the VM asks for it."""
        self._runs_to_start[handle] = execute

    def _start_run(self, handle: int) -> None:
        execute = self._runs_to_start.pop(handle, None)
        if execute is None:
            raise AttemptAbortedError(f"the VM asked to run unknown ctx.run handle {handle}")
        task = asyncio.create_task(self._execute_run(execute), name=f"perdure run {self.where}")
        self._run_tasks.add(task)
        task.add_done_callback(self._run_tasks.discard)

    async def _execute_run(self, execute: Callable[[], Awaitable[None]]) -> None:
        try:
            await execute()
        except VMError:
            pass  # the VM failed the attempt (e.g. to retry the run); awaiters will see it
        finally:
            self._pulse()


def _decisive_cause(exc: BaseException) -> BaseException:
    """The SDK error that decides the outcome, also when user code wrapped it in another."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, TerminalError | RetryableError | InternalSignal):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__
    return exc


def _failure_of(error: TerminalError) -> Failure:
    metadata = tuple((error.metadata or {}).items())
    return Failure(error.status_code, error.message, metadata)


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message``, the way the error is shown to whoever looks at the invocation."""
    if isinstance(exc, RetryableError | TerminalError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _millis(delta: Any) -> int | None:
    return None if delta is None else max(int(delta.total_seconds() * 1000), 0)
