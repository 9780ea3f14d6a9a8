"""Fakes for the ingress tests: a scripted driver, a fixed id source, a registry from rows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from perdure.server.partition.effects import Reply, ReplyKind
from perdure.server.partition.events import Event
from perdure.server.registry import Registry
from perdure.server.storage.api import Outcome, ServiceRow, ServiceType, Target

DEPLOYMENT = "dp_11nGQpCRmau6ypL82KH2TnP"
JSON_INPUT = {
    "required": False,
    "contentType": "application/json",
    "jsonSchema": {"type": "string"},
}
JSON_OUTPUT = {"setContentTypeIfEmpty": False, "contentType": "application/json"}
INVOCATION_ID = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"


def service_row(
    name: str, ty: ServiceType, handlers: list[dict[str, Any]], **opts: Any
) -> ServiceRow:
    definition = {"name": name, "ty": ty.value, "handlers": handlers, **opts}
    return ServiceRow(name, 1, DEPLOYMENT, ty, json.dumps(definition))


def handler(name: str, ty: str | None = None, **fields: Any) -> dict[str, Any]:
    h: dict[str, Any] = {"name": name, "input": JSON_INPUT, "output": JSON_OUTPUT, **fields}
    if ty is not None:
        h["ty"] = ty
    return h


def make_registry() -> Registry:
    return Registry(
        services=[
            service_row(
                "Greeter",
                ServiceType.SERVICE,
                [
                    handler("greet"),
                    handler("secret", ingressPrivate=True),
                    handler("ping", input={}, output={"setContentTypeIfEmpty": False}),
                    handler(
                        "raw",
                        input={"required": True, "contentType": "application/octet-stream"},
                        output={"contentType": "application/octet-stream"},
                    ),
                    {"name": "anything"},  # no input/output: Restate's defaults
                ],
            ),
            service_row(
                "Counter",
                ServiceType.VIRTUAL_OBJECT,
                [handler("add", "EXCLUSIVE"), handler("get", "SHARED")],
            ),
            service_row(
                "Signup",
                ServiceType.WORKFLOW,
                [handler("run", "WORKFLOW"), handler("status", "SHARED")],
            ),
        ]
    )


class FixedIds:
    def __init__(self, invocation_id: str = INVOCATION_ID) -> None:
        self.invocation_id_value = invocation_id
        self.asked: list[tuple[Target, str | None]] = []

    def invocation_id(self, target: Target, idempotency_key: str | None) -> str:
        self.asked.append((target, idempotency_key))
        return self.invocation_id_value


Responder = Callable[[Event], Reply]


def output(value: bytes, invocation_id: str = INVOCATION_ID) -> Reply:
    return Reply(ReplyKind.OUTPUT, invocation_id, Outcome(value=value))


class FakeDriver:
    """Records every event and answers with `responder(event)`; `hold` makes replies wait."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.events: list[Event] = []
        self.responder: Responder = responder or (lambda event: output(b'"ok"'))
        self.hold: asyncio.Event | None = None
        self.cancelled = 0
        self._next = 1

    async def request(self, make: Callable[[int], Event]) -> Reply:
        event = make(self._next)
        self._next += 1
        self.events.append(event)
        if self.hold is not None:
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return self.responder(event)

    @property
    def last(self) -> Event:
        return self.events[-1]
