"""Notifications: their ids, their results, and the table of handles user code awaits on.

A notification is addressed by a completion id (the answer to a command), a signal index
(1 is cancellation; awakeables count from 17) or a signal name. User code never sees those:
each sys call hands out an integer *handle* mapped to the id it waits for. Notifications that
arrive go to a queue first; the VM moves them to *ready* one at a time while resolving an await
point (see ``futures.py``), and user code finally *takes* a ready result through its handle.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from perdure.protocol.errors import ProtocolError
from perdure.protocol.messages import Frame, parse_notification
from perdure.protocol.pb import protocol_pb2 as pb

__all__ = [
    "CANCEL_HANDLE",
    "CANCEL_SIGNAL_INDEX",
    "FIRST_AWAKEABLE_SIGNAL_INDEX",
    "NOT_READY",
    "CompletionId",
    "Failure",
    "NotReady",
    "NotificationId",
    "Outcome",
    "Result",
    "Results",
    "SignalId",
    "SignalName",
    "notification_from_frame",
]

#: The built-in cancellation signal (BuiltInSignal.CANCEL).
CANCEL_SIGNAL_INDEX = 1
#: Signal indexes 1-16 are reserved for built-in signals; awakeables take 17 onwards.
FIRST_AWAKEABLE_SIGNAL_INDEX = 17
#: The handle of the cancellation signal, the same number as in sdk-shared-core.
CANCEL_HANDLE = 1
# Handles 1-16 mirror the reserved signal range, so that user handles never collide with them.
_FIRST_USER_HANDLE = 17


class Outcome(enum.Enum):
    """Where one handle, or one node of an await tree, stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CompletionId:
    id: int


@dataclass(frozen=True, slots=True)
class SignalId:
    index: int


@dataclass(frozen=True, slots=True)
class SignalName:
    name: str


NotificationId = CompletionId | SignalId | SignalName


@dataclass(frozen=True, slots=True)
class Failure:
    """A terminal failure carried by a notification or written by user code."""

    code: int
    message: str
    metadata: tuple[tuple[str, str], ...] = ()

    def to_pb(self) -> pb.Failure:
        return pb.Failure(
            code=self.code,
            message=self.message,
            metadata=[pb.FailureMetadata(key=k, value=v) for k, v in self.metadata],
        )

    @classmethod
    def from_pb(cls, msg: pb.Failure) -> Failure:
        return cls(msg.code, msg.message, tuple((m.key, m.value) for m in msg.metadata))


Result = None | bytes | str | tuple[str, ...] | Failure
"""A notification's result: None (void), bytes (a value), str (an invocation id), a tuple of
state keys, or a Failure."""


class NotReady(enum.Enum):
    """What ``take_notification`` returns for a handle whose result has not arrived."""

    NOT_READY = "not ready"


NOT_READY = NotReady.NOT_READY


def notification_from_frame(frame: Frame) -> tuple[NotificationId, Result]:
    """Reads any notification frame through the shape all notifications share.

    Raises ProtocolError when the payload does not parse or names no id.
    """
    msg = parse_notification(frame.payload)
    which_id = msg.WhichOneof("id")
    nid: NotificationId
    if which_id == "completion_id":
        nid = CompletionId(msg.completion_id)
    elif which_id == "signal_id":
        nid = SignalId(msg.signal_id)
    elif which_id == "signal_name":
        nid = SignalName(msg.signal_name)
    else:
        raise ProtocolError(f"a {frame.name} message carries no completion id or signal id")
    return nid, result_of(msg)


def result_of(msg: pb.NotificationTemplate) -> Result:
    which = msg.WhichOneof("result")
    if which == "value":
        return msg.value.content
    if which == "failure":
        return Failure.from_pb(msg.failure)
    if which == "invocation_id":
        return msg.invocation_id
    if which == "state_keys":
        return tuple(k.decode("utf-8", "replace") for k in msg.state_keys.keys)
    # "void", or a notification sent without a result (a sleep that just fired): no value.
    return None


def outcome_of_result(result: Result) -> Outcome:
    return Outcome.FAILED if isinstance(result, Failure) else Outcome.SUCCEEDED


class Results:
    """The notification table of one attempt: queue, ready results, and handles.

    ``ready`` is keyed by notification id, so one notification can satisfy several handles
    (two awaits of the same promise); ``take`` is destructive, so the SDK decides which
    awaiter consumes it.
    """

    __slots__ = ("_handles", "_next_handle", "_queue", "_ready", "_run_cache", "_taken")

    def __init__(self) -> None:
        self._queue: deque[tuple[NotificationId, Result]] = deque()
        self._ready: dict[NotificationId, Result] = {}
        # V7: what this attempt proposed for each ctx.run, until the server acks it.
        self._run_cache: dict[int, Result] = {}
        self._handles: dict[int, NotificationId] = {CANCEL_HANDLE: SignalId(CANCEL_SIGNAL_INDEX)}
        self._next_handle = _FIRST_USER_HANDLE
        # The outcome of each handle already taken, so a tree that still names it resolves.
        self._taken: dict[int, Outcome] = {}

    # -- arrival ---------------------------------------------------------------------------

    def enqueue(self, nid: NotificationId, result: Result) -> None:
        self._queue.append((nid, result))

    def insert_ready(self, nid: NotificationId, result: Result) -> None:
        self._ready[nid] = result

    def cache_run_proposal(self, completion_id: int, result: Result) -> None:
        self._run_cache[completion_id] = result

    def enqueue_run_ack(self, completion_id: int) -> bool:
        """The server stored a proposal: it now counts as arrived. False if none was pending."""
        if completion_id not in self._run_cache:
            return False
        self.enqueue(CompletionId(completion_id), self._run_cache.pop(completion_id))
        return True

    def pop_queue(self) -> bool:
        """Moves the oldest queued notification to ready; False when the queue is empty."""
        if not self._queue:
            return False
        nid, result = self._queue.popleft()
        self._ready[nid] = result
        return True

    def knows(self, nid: NotificationId) -> bool:
        """Whether this notification arrived at all, ready or still queued."""
        return nid in self._ready or any(queued == nid for queued, _ in self._queue)

    # -- handles ---------------------------------------------------------------------------

    def new_handle(self, nid: NotificationId) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._handles[handle] = nid
        return handle

    def id_of(self, handle: int) -> NotificationId | None:
        """The id a handle waits for; None once taken (or for an unknown handle)."""
        return self._handles.get(handle)

    def outcome(self, handle: int) -> Outcome:
        nid = self._handles.get(handle)
        if nid is None:
            return self._taken.get(handle, Outcome.PENDING)
        if nid not in self._ready:
            return Outcome.PENDING
        return outcome_of_result(self._ready[nid])

    def is_completed(self, handle: int) -> bool:
        """True when the handle's result is ready, or was already taken."""
        nid = self._handles.get(handle)
        return handle in self._taken if nid is None else nid in self._ready

    def take(self, handle: int) -> Result | NotReady:
        nid = self._handles.get(handle)
        if nid is None or nid not in self._ready:
            return NOT_READY
        result = self._ready.pop(nid)
        del self._handles[handle]
        self._taken[handle] = outcome_of_result(result)
        return result

    def peek(self, handle: int) -> Result | NotReady:
        nid = self._handles.get(handle)
        if nid is None or nid not in self._ready:
            return NOT_READY
        return self._ready[nid]
