"""A test environment for the partition: memory storage, a fixed registry, a manual clock.

`env.apply(event)` runs one event in its own committed transaction and returns the effects,
so a test reads like the rules: given these events, the partition answers with these effects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from perdure.protocol.framing import decode_frames
from perdure.protocol.ids import AwakeableId, InvocationId
from perdure.protocol.messages import Frame, message_type_of
from perdure.server.partition import Partition
from perdure.server.partition.effects import (
    Effect,
    ReplyToRequest,
    ScheduleTimer,
    SendToAttempt,
    StartAttempt,
)
from perdure.server.partition.events import (
    CallMode,
    Event,
    FramesReceived,
    InvocationRequested,
    TimerFired,
)
from perdure.server.registry import Registry
from perdure.server.storage.api import (
    DeploymentRow,
    HandlerType,
    InvocationRow,
    ServiceRow,
    ServiceType,
    Target,
)
from perdure.server.storage.memory import MemoryStorage

DEPLOYMENT = "dp_test"


def service_row(
    name: str, ty: ServiceType, handlers: dict[str, str | None], **opts: Any
) -> ServiceRow:
    definition = {
        "name": name,
        "ty": ty.value,
        "handlers": [{"name": h, **({"ty": t} if t else {})} for h, t in handlers.items()],
        **opts,
    }
    return ServiceRow(name, 1, DEPLOYMENT, ty, json.dumps(definition))


DEFAULT_SERVICES = [
    service_row("Greeter", ServiceType.SERVICE, {"greet": None}),
    service_row("Counter", ServiceType.VIRTUAL_OBJECT, {"add": "EXCLUSIVE", "get": "SHARED"}),
    service_row("Signup", ServiceType.WORKFLOW, {"run": "WORKFLOW", "click": "SHARED"}),
    service_row(
        "Fragile",
        ServiceType.SERVICE,
        {"go": None},
        retryPolicyMaxAttempts=3,
        retryPolicyInitialInterval=100,
    ),
]


class SeqIds:
    """Deterministic ids: inv ids from a counter, seed 42."""

    def __init__(self) -> None:
        self.n = 0

    def invocation_id(self, target: Target, idempotency_key: str | None) -> str:
        self.n += 1
        return InvocationId(self.n, self.n).to_str()

    def invocation_id_bytes(self, invocation_id: str) -> bytes:
        return InvocationId.parse(invocation_id).to_bytes()

    def random_seed(self) -> int:
        return 42

    def parse_awakeable(self, awakeable_id: str) -> tuple[str, int] | None:
        try:
            parsed = AwakeableId.parse(awakeable_id)
        except ValueError:
            return None
        return parsed.invocation_id.to_str(), parsed.index


def target(service: str, handler: str, key: str = "") -> Target:
    for row in DEFAULT_SERVICES:
        if row.name == service:
            defn = json.loads(row.definition)
            ty = next(h.get("ty") for h in defn["handlers"] if h["name"] == handler)
            htype = HandlerType(ty) if ty else None
            return Target(service, handler, key, row.service_type, htype)
    raise KeyError(service)


def cmd(msg: Message, ack: bool = False) -> tuple[int, bool, bytes]:
    return (int(message_type_of(msg)), ack, msg.SerializeToString())


@dataclass
class Env:
    version: int = 6
    services: list[ServiceRow] = field(default_factory=lambda: list(DEFAULT_SERVICES))
    protocol_mode: str = "BIDI_STREAM"
    now: int = 1_700_000_000_000

    def __post_init__(self) -> None:
        self.storage = MemoryStorage()
        deployment = DeploymentRow(
            DEPLOYMENT, "http://127.0.0.1:1", self.protocol_mode, self.version, self.version, 0
        )
        self.registry = Registry([deployment], self.services)
        self.ids = SeqIds()
        self.partition = Partition(lambda: self.registry, self.ids)
        self.next_request = 1

    def apply(self, event: Event) -> list[Effect]:
        tx = self.storage.begin()
        effects = self.partition.apply(tx, event, self.now)
        tx.commit()
        return effects

    def request(
        self,
        tgt: Target,
        payload: bytes = b'"x"',
        *,
        mode: CallMode = CallMode.CALL,
        idempotency_key: str | None = None,
        execution_time: int | None = None,
    ) -> tuple[int, str, list[Effect]]:
        rid = self.next_request
        self.next_request += 1
        inv = InvocationId(10_000 + rid, rid).to_str()
        ev = InvocationRequested(rid, inv, tgt, payload, (), mode, idempotency_key, execution_time)
        return rid, inv, self.apply(ev)

    def frames(self, inv: str, attempt: int, *messages: tuple[int, bool, bytes]) -> list[Effect]:
        return self.apply(FramesReceived(inv, attempt, tuple(messages)))

    def row(self, inv: str) -> InvocationRow:
        found = self.storage.reader().get_invocation(inv)
        assert found is not None, f"{inv} not stored"
        return found

    def fire_timers(self, effects: list[Effect], advance_to: int | None = None) -> list[Effect]:
        out: list[Effect] = []
        for e in effects:
            if isinstance(e, ScheduleTimer):
                self.now = max(self.now, advance_to or e.timer.fire_at)
                out.extend(self.apply(TimerFired(e.timer)))
        return out


def only(effects: list[Effect], kind: type) -> Any:
    found = [e for e in effects if isinstance(e, kind)]
    assert len(found) == 1, f"expected one {kind.__name__}, got {effects}"
    return found[0]


def all_of(effects: list[Effect], kind: type) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def start_frames(effect: StartAttempt) -> list[Frame]:
    return decode_frames(effect.frames)


def sent_frames(effects: list[Effect]) -> list[Frame]:
    out: list[Frame] = []
    for e in all_of(effects, SendToAttempt):
        out.extend(decode_frames(e.frames))
    return out


def reply(effects: list[Effect]) -> ReplyToRequest:
    return only(effects, ReplyToRequest)  # type: ignore[no-any-return]
