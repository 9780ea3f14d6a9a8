"""What the partition asks the world to do, in the imperative; dispatched only after commit."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from perdure.server.storage.api import Outcome, TimerRow


class ReplyKind(enum.Enum):
    OUTPUT = "output"  # the invocation completed: `outcome` holds its value or failure
    ACCEPTED = "accepted"  # a send was accepted (or had been accepted before)
    NOT_READY = "not_ready"  # /output asked for an invocation that has not completed yet
    DONE = "done"  # an operation succeeded and has nothing more to say
    ERROR = "error"  # the request failed: `status` and `message` say why


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    invocation_id: str | None = None
    outcome: Outcome | None = None
    status: int = 200
    message: str = ""
    previously_accepted: bool = False
    # For an invocation with an idempotency key: when the key is forgotten (ms since the
    # epoch); the ingress shows it as the `idempotency-expires` header, as Restate does.
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class ReplyToRequest:
    request_id: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class StartAttempt:
    """Open a stream to `deployment_id` and send `frames` (Start message + known entries)."""

    invocation_id: str
    attempt: int
    deployment_id: str
    service: str
    handler: str
    protocol_version: int
    frames: bytes


@dataclass(frozen=True, slots=True)
class SendToAttempt:
    """Write already-encoded messages (notifications, acks) to a running attempt."""

    invocation_id: str
    attempt: int
    frames: bytes


@dataclass(frozen=True, slots=True)
class AbortAttempt:
    """Close a running attempt's stream at once (kill, or the attempt has ended)."""

    invocation_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    timer: TimerRow


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class RegistryChanged:
    """Deployments or services were stored or removed: reload the registry."""


Effect = (
    ReplyToRequest
    | StartAttempt
    | SendToAttempt
    | AbortAttempt
    | ScheduleTimer
    | CancelTimer
    | RegistryChanged
)
