"""Handlers as attributes, from their definitions: ``client.service(Greeter).greet(...)``.

These proxies build :class:`~perdure.client.requests.Call` values and hand them to the client's
``execute``, which answers a value (``Client``) or an awaitable (``AsyncClient``); so the same
proxies serve both shells.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from perdure.client import requests as rq
from perdure.sdk.handler import Handler
from perdure.sdk.service import Definition

__all__ = ["HandlerClient", "TargetClient", "WorkflowClient", "target", "workflow_target"]

Execute = Callable[[rq.Call[Any]], Any]


def target(
    definition: Definition | str, key: str | None, execute: Execute, *, expected: str
) -> TargetClient:
    """A service or object target, after checking it is of the kind the caller asked for."""
    _check(definition, key, expected)
    return TargetClient(definition, key, execute)


def workflow_target(
    definition: Definition | str, key: str, execute: Execute, *, run_handler: str = "run"
) -> WorkflowClient:
    """A workflow instance target, after checking ``definition`` is a workflow."""
    _check(definition, key, "WORKFLOW")
    return WorkflowClient(definition, key, execute, run_handler=run_handler)


def _check(definition: Definition | str, key: str | None, expected: str) -> None:
    if isinstance(definition, Definition):
        kind = definition.service_type
        if kind != expected:
            method = {"SERVICE": "service", "VIRTUAL_OBJECT": "object", "WORKFLOW": "workflow"}
            raise TypeError(
                f"{definition.name} is a {kind.lower().replace('_', ' ')}; use "
                f"client.{method[kind]}({definition.name}{'' if kind == 'SERVICE' else ', key'})"
            )
    elif not isinstance(definition, str):
        raise TypeError(f"expected a Service/VirtualObject/Workflow or a name, got {definition!r}")
    if expected != "SERVICE" and not isinstance(key, str):
        raise TypeError(f"object and workflow keys are strings, got {type(key).__name__}")


class TargetClient:
    """One service (or one object/workflow key); each attribute is a :class:`HandlerClient`.

    Example::

        client.service(Greeter).greet("Ada")
        client.object(Counter, "clicks").add(1)
        client.object("Counter", "clicks").add(1)   # by name: JSON in, JSON out
    """

    def __init__(self, definition: Definition | str, key: str | None, execute: Execute) -> None:
        self._definition = definition
        self._key = key
        self._execute = execute

    @property
    def name(self) -> str:
        """The service name."""
        d = self._definition
        return d if isinstance(d, str) else d.name

    def handler(self, name: str) -> HandlerClient:
        """The handler called ``name`` (for names this class uses itself, e.g. ``submit``)."""
        found: Handler | None = None
        if isinstance(self._definition, Definition):
            found = self._definition.handlers.get(name)
            if found is None:
                known = ", ".join(self._definition.handlers) or "none"
                raise AttributeError(f"{self.name} has no handler {name!r} (handlers: {known})")
        return HandlerClient(self.name, name, self._key, found, self._execute)

    def __getattr__(self, name: str) -> HandlerClient:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.handler(name)

    def __dir__(self) -> list[str]:
        handlers = (
            list(self._definition.handlers) if isinstance(self._definition, Definition) else []
        )
        return sorted(set(super().__dir__()) | set(handlers))


class HandlerClient:
    """One handler through a client: call it, send to it, or find an idempotent call again.

    Example::

        greet = client.service(Greeter).greet
        greet("Ada")                                    # call and wait
        greet.send("Ada", delay=timedelta(minutes=5))   # SendReceipt
        greet("Ada", idempotency_key="once")            # runs once per key
        greet.attach("once")                            # that call's output, waiting for it
    """

    def __init__(
        self,
        service: str,
        name: str,
        key: str | None,
        handler: Handler | None,
        execute: Execute,
    ) -> None:
        self.service = service
        self.name = name
        self._key = key
        self._handler = handler
        self._execute = execute

    def __call__(
        self,
        arg: Any = None,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call the handler and return its output (a coroutine with ``AsyncClient``)."""
        body, content_type = self._encode(arg)
        return self._execute(
            rq.call(
                self.service,
                self.name,
                body,
                key=self._key,
                content_type=content_type,
                idempotency_key=idempotency_key,
                headers=headers,
                decode=self._decode,
            )
        )

    def send(
        self,
        arg: Any = None,
        *,
        delay: datetime.timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Start the handler without waiting; returns a :class:`SendReceipt`."""
        body, content_type = self._encode(arg)
        return self._execute(
            rq.send(
                self.service,
                self.name,
                body,
                key=self._key,
                delay=delay,
                content_type=content_type,
                idempotency_key=idempotency_key,
                headers=headers,
            )
        )

    def attach(self, idempotency_key: str) -> Any:
        """Wait for the call made with ``idempotency_key`` and return its output."""
        return self._execute(
            rq.attach(
                service=self.service,
                handler=self.name,
                idempotency_key=idempotency_key,
                key=self._key,
                decode=self._decode,
            )
        )

    def output(self, idempotency_key: str) -> Any:
        """The output of the call made with ``idempotency_key``; NotReadyError if running."""
        return self._execute(
            rq.output(
                service=self.service,
                handler=self.name,
                idempotency_key=idempotency_key,
                key=self._key,
                decode=self._decode,
            )
        )

    def _encode(self, arg: Any) -> tuple[bytes, str | None]:
        handler = self._handler
        if handler is None:  # known by name only: bytes travel raw, anything else as JSON
            body, content_type = rq.encode_value(arg)
            return body, content_type if body else None
        if not handler.takes_input:
            if arg is not None:
                raise TypeError(f"{self.service}.{self.name} takes no input, got {arg!r}")
            return b"", None
        accepted = handler.input.content_type
        # A handler that accepts anything (*/*) still deserves to be told what it gets.
        sent = "application/octet-stream" if accepted is None or "*" in accepted else accepted
        return handler.input.serde.serialize(arg), sent

    def _decode(self, response: rq.HttpResponse) -> Any:
        if self._handler is None:
            return rq.decode_output(response)
        return self._handler.output.serde.deserialize(response.body)


class WorkflowClient(TargetClient):
    """One workflow instance (a workflow and its key).

    Example::

        signup = client.workflow(Signup, "ada@example.com")
        signup.submit("ada@example.com")   # starts the run handler once per key
        signup.confirm("123456")           # a shared handler
        signup.attach()                    # waits for the run handler's output
    """

    def __init__(
        self,
        definition: Definition | str,
        key: str | None,
        execute: Execute,
        *,
        run_handler: str = "run",
    ) -> None:
        super().__init__(definition, key, execute)
        self._run_name = run_handler
        if isinstance(definition, Definition):
            from perdure.sdk.service import Workflow

            if isinstance(definition, Workflow):
                self._run_name = definition.run_handler.name

    @property
    def run_handler(self) -> HandlerClient:
        """The workflow's run handler (``@workflow.main()``)."""
        return self.handler(self._run_name)

    def submit(
        self,
        arg: Any = None,
        *,
        delay: datetime.timedelta | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Start the run handler; a second submit for the same key starts nothing new."""
        return self.run_handler.send(arg, delay=delay, headers=headers)

    def attach(self) -> Any:
        """Wait for the run handler to finish and return its output."""
        return self._execute(
            rq.workflow_attach(self.name, self._require_key(), decode=self._decode)
        )

    def output(self) -> Any:
        """The run handler's output if it finished; :class:`NotReadyError` if not."""
        return self._execute(
            rq.workflow_output(self.name, self._require_key(), decode=self._decode)
        )

    def _require_key(self) -> str:
        assert self._key is not None  # target() checked it
        return self._key

    def _decode(self, response: rq.HttpResponse) -> Any:
        return self.run_handler._decode(response)
