"""The protocol messages the partition writes: notifications, acks and the Start message.

Journal entries are kept as the raw bytes the wire carried; this module builds the few
messages the server itself authors, and returns each with the notification key the journal
indexes it by ("c:<completion id>", "s:<signal index>", "n:<signal name>").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perdure.protocol.framing import encode_header
from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.storage.api import Failure, JournalEntry, Outcome

# Journal entries that are notifications authored by the server.
NOTIFICATION_TYPES = frozenset(t for t in T if 0x8000 <= int(t) < 0xFC00)


@dataclass(frozen=True, slots=True)
class Authored:
    """A notification the server wrote: its wire type, payload and journal key."""

    message_type: int
    payload: bytes
    key: str
    is_failure: bool = False

    def entry(self, index: int) -> JournalEntry:
        return JournalEntry(index, self.message_type, self.payload, self.key, self.is_failure)


def frame(message_type: int, payload: bytes, requested_ack: bool = False) -> bytes:
    return encode_header(message_type, len(payload), requested_ack=requested_ack) + payload


def frames_of(entries: Sequence[JournalEntry]) -> bytes:
    return b"".join(frame(e.message_type, e.payload) for e in entries)


def to_pb_failure(failure: Failure) -> pb.Failure:
    return pb.Failure(
        code=failure.code,
        message=failure.message,
        metadata=[pb.FailureMetadata(key=k, value=v) for k, v in failure.metadata],
    )


def from_pb_failure(msg: pb.Failure) -> Failure:
    return Failure(
        code=msg.code or 500,
        message=msg.message,
        metadata=tuple((m.key, m.value) for m in msg.metadata),
    )


def _fill_result(msg: object, outcome: Outcome | None) -> bool:
    """Sets void / value / failure on a notification; returns whether it is a failure."""
    if outcome is None:
        msg.void.SetInParent()  # type: ignore[attr-defined]
        return False
    if outcome.failure is not None:
        msg.failure.CopyFrom(to_pb_failure(outcome.failure))  # type: ignore[attr-defined]
        return True
    msg.value.content = outcome.value or b""  # type: ignore[attr-defined]
    return False


def completion(message_type: int, completion_id: int, outcome: Outcome | None) -> Authored:
    """A completion carrying void (`outcome` None), a value or a failure."""
    cls = pb_class(message_type)
    msg = cls(completion_id=completion_id)
    is_failure = _fill_result(msg, outcome)
    return Authored(message_type, msg.SerializeToString(), f"c:{completion_id}", is_failure)


def invocation_id_completion(completion_id: int, invocation_id: str) -> Authored:
    msg = pb.CallInvocationIdCompletionNotificationMessage(
        completion_id=completion_id, invocation_id=invocation_id
    )
    return Authored(
        T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION, msg.SerializeToString(), f"c:{completion_id}"
    )


def state_keys_completion(completion_id: int, keys: Sequence[bytes]) -> Authored:
    msg = pb.GetLazyStateKeysCompletionNotificationMessage(
        completion_id=completion_id, state_keys=pb.StateKeys(keys=list(keys))
    )
    return Authored(
        T.GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION, msg.SerializeToString(), f"c:{completion_id}"
    )


def signal(index: int | None, name: str | None, outcome: Outcome | None) -> Authored:
    msg = pb.SignalNotificationMessage()
    if name is not None:
        msg.name = name
        key = f"n:{name}"
    else:
        msg.idx = index or 0
        key = f"s:{index}"
    is_failure = _fill_result(msg, outcome)
    return Authored(T.SIGNAL_NOTIFICATION, msg.SerializeToString(), key, is_failure)


def run_ack(completion_id: int) -> bytes:
    payload = pb.ProposeRunCompletionAckMessage(completion_id=completion_id).SerializeToString()
    return frame(T.PROPOSE_RUN_COMPLETION_ACK, payload)


def input_command(payload: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    msg = pb.InputCommandMessage(
        headers=[pb.Header(key=k, value=v) for k, v in headers], value=pb.Value(content=payload)
    )
    return msg.SerializeToString()


def start_message(
    *,
    id_bytes: bytes,
    debug_id: str,
    known_entries: int,
    state: Sequence[tuple[bytes, bytes]],
    partial_state: bool,
    key: str,
    retry_count: int,
    duration_since_last_entry_ms: int,
    random_seed: int,
    protocol_version: int,
    idempotency_key: str | None,
) -> bytes:
    msg = pb.StartMessage(
        id=id_bytes,
        debug_id=debug_id,
        known_entries=known_entries,
        state_map=[pb.StartMessage.StateEntry(key=k, value=v) for k, v in state],
        partial_state=partial_state,
        key=key,
        retry_count_since_last_stored_entry=retry_count,
        duration_since_last_stored_entry=duration_since_last_entry_ms,
    )
    if protocol_version >= 6:
        msg.random_seed = random_seed
    if protocol_version >= 7 and idempotency_key:
        msg.idempotency_key = idempotency_key
    return frame(T.START, msg.SerializeToString())


def pb_class(message_type: int) -> type:
    from perdure.protocol.messages import message_class

    return message_class(message_type)
