"""The message type table: type codes, their kinds and protobuf classes, and decoded frames."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from perdure.protocol.errors import MalformedMessage, UnexpectedMessage, UnknownMessageType
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.protocol.versions import uses_awaiting_on_suspension

_M = TypeVar("_M", bound=Message)

# The 16-bit type code space is cut into four ranges; the range alone says what a frame is.
CONTROL_RANGE = range(0x0000, 0x0400)
COMMAND_RANGE = range(0x0400, 0x8000)
NOTIFICATION_RANGE = range(0x8000, 0xFC00)
CUSTOM_RANGE = range(0xFC00, 0x10000)


class MessageKind(enum.Enum):
    """What a type code is, by its range."""

    CONTROL = "control"  # steers the stream; never journaled
    COMMAND = "command"  # a journal entry the invocation wrote
    NOTIFICATION = "notification"  # a journal entry delivered to the invocation
    CUSTOM = "custom"  # an SDK-defined command, opaque bytes to everyone else


class MessageType(enum.IntEnum):
    """Every type code of the service protocol V5-V7 (custom commands are plain ints)."""

    START = 0x0000
    SUSPENSION = 0x0001
    ERROR = 0x0002
    END = 0x0003
    COMMAND_ACK = 0x0004
    PROPOSE_RUN_COMPLETION = 0x0005
    AWAITING_ON = 0x0006
    PROPOSE_RUN_COMPLETION_ACK = 0x0007

    INPUT_COMMAND = 0x0400
    OUTPUT_COMMAND = 0x0401
    GET_LAZY_STATE_COMMAND = 0x0402
    SET_STATE_COMMAND = 0x0403
    CLEAR_STATE_COMMAND = 0x0404
    CLEAR_ALL_STATE_COMMAND = 0x0405
    GET_LAZY_STATE_KEYS_COMMAND = 0x0406
    GET_EAGER_STATE_COMMAND = 0x0407
    GET_EAGER_STATE_KEYS_COMMAND = 0x0408
    GET_PROMISE_COMMAND = 0x0409
    PEEK_PROMISE_COMMAND = 0x040A
    COMPLETE_PROMISE_COMMAND = 0x040B
    SLEEP_COMMAND = 0x040C
    CALL_COMMAND = 0x040D
    ONE_WAY_CALL_COMMAND = 0x040E
    SEND_SIGNAL_COMMAND = 0x0410
    RUN_COMMAND = 0x0411
    ATTACH_INVOCATION_COMMAND = 0x0412
    GET_INVOCATION_OUTPUT_COMMAND = 0x0413
    COMPLETE_AWAKEABLE_COMMAND = 0x0414

    GET_LAZY_STATE_COMPLETION_NOTIFICATION = 0x8002
    GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION = 0x8006
    GET_PROMISE_COMPLETION_NOTIFICATION = 0x8009
    PEEK_PROMISE_COMPLETION_NOTIFICATION = 0x800A
    COMPLETE_PROMISE_COMPLETION_NOTIFICATION = 0x800B
    SLEEP_COMPLETION_NOTIFICATION = 0x800C
    CALL_COMPLETION_NOTIFICATION = 0x800D
    CALL_INVOCATION_ID_COMPLETION_NOTIFICATION = 0x800E
    RUN_COMPLETION_NOTIFICATION = 0x8011
    ATTACH_INVOCATION_COMPLETION_NOTIFICATION = 0x8012
    GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION = 0x8013
    SIGNAL_NOTIFICATION = 0xFBFF

    @property
    def kind(self) -> MessageKind:
        return kind_of(self)

    @property
    def pb_class(self) -> type[Message]:
        return _CLASS_BY_TYPE[self]


T = MessageType

_CLASS_BY_TYPE: dict[MessageType, type[Message]] = {
    T.START: pb.StartMessage,
    T.SUSPENSION: pb.SuspensionMessage,
    T.ERROR: pb.ErrorMessage,
    T.END: pb.EndMessage,
    T.COMMAND_ACK: pb.CommandAckMessage,
    T.PROPOSE_RUN_COMPLETION: pb.ProposeRunCompletionMessage,
    T.AWAITING_ON: pb.AwaitingOnMessage,
    T.PROPOSE_RUN_COMPLETION_ACK: pb.ProposeRunCompletionAckMessage,
    T.INPUT_COMMAND: pb.InputCommandMessage,
    T.OUTPUT_COMMAND: pb.OutputCommandMessage,
    T.GET_LAZY_STATE_COMMAND: pb.GetLazyStateCommandMessage,
    T.SET_STATE_COMMAND: pb.SetStateCommandMessage,
    T.CLEAR_STATE_COMMAND: pb.ClearStateCommandMessage,
    T.CLEAR_ALL_STATE_COMMAND: pb.ClearAllStateCommandMessage,
    T.GET_LAZY_STATE_KEYS_COMMAND: pb.GetLazyStateKeysCommandMessage,
    T.GET_EAGER_STATE_COMMAND: pb.GetEagerStateCommandMessage,
    T.GET_EAGER_STATE_KEYS_COMMAND: pb.GetEagerStateKeysCommandMessage,
    T.GET_PROMISE_COMMAND: pb.GetPromiseCommandMessage,
    T.PEEK_PROMISE_COMMAND: pb.PeekPromiseCommandMessage,
    T.COMPLETE_PROMISE_COMMAND: pb.CompletePromiseCommandMessage,
    T.SLEEP_COMMAND: pb.SleepCommandMessage,
    T.CALL_COMMAND: pb.CallCommandMessage,
    T.ONE_WAY_CALL_COMMAND: pb.OneWayCallCommandMessage,
    T.SEND_SIGNAL_COMMAND: pb.SendSignalCommandMessage,
    T.RUN_COMMAND: pb.RunCommandMessage,
    T.ATTACH_INVOCATION_COMMAND: pb.AttachInvocationCommandMessage,
    T.GET_INVOCATION_OUTPUT_COMMAND: pb.GetInvocationOutputCommandMessage,
    T.COMPLETE_AWAKEABLE_COMMAND: pb.CompleteAwakeableCommandMessage,
    T.GET_LAZY_STATE_COMPLETION_NOTIFICATION: pb.GetLazyStateCompletionNotificationMessage,
    T.GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION: (
        pb.GetLazyStateKeysCompletionNotificationMessage
    ),
    T.GET_PROMISE_COMPLETION_NOTIFICATION: pb.GetPromiseCompletionNotificationMessage,
    T.PEEK_PROMISE_COMPLETION_NOTIFICATION: pb.PeekPromiseCompletionNotificationMessage,
    T.COMPLETE_PROMISE_COMPLETION_NOTIFICATION: pb.CompletePromiseCompletionNotificationMessage,
    T.SLEEP_COMPLETION_NOTIFICATION: pb.SleepCompletionNotificationMessage,
    T.CALL_COMPLETION_NOTIFICATION: pb.CallCompletionNotificationMessage,
    T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION: pb.CallInvocationIdCompletionNotificationMessage,
    T.RUN_COMPLETION_NOTIFICATION: pb.RunCompletionNotificationMessage,
    T.ATTACH_INVOCATION_COMPLETION_NOTIFICATION: pb.AttachInvocationCompletionNotificationMessage,
    T.GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION: (
        pb.GetInvocationOutputCompletionNotificationMessage
    ),
    T.SIGNAL_NOTIFICATION: pb.SignalNotificationMessage,
}

_TYPE_BY_CLASS: dict[type[Message], MessageType] = {c: t for t, c in _CLASS_BY_TYPE.items()}

#: Code -> member, for the decoder's hot path (a dict lookup is much cheaper than MessageType(x)).
KNOWN_TYPES: dict[int, MessageType] = {int(t): t for t in MessageType}

#: The notifications each completable command is answered with, in the order they arrive.
#: Commands not listed here are not completable: writing them is the whole action.
COMPLETIONS: dict[MessageType, tuple[MessageType, ...]] = {
    T.GET_LAZY_STATE_COMMAND: (T.GET_LAZY_STATE_COMPLETION_NOTIFICATION,),
    T.GET_LAZY_STATE_KEYS_COMMAND: (T.GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION,),
    T.GET_PROMISE_COMMAND: (T.GET_PROMISE_COMPLETION_NOTIFICATION,),
    T.PEEK_PROMISE_COMMAND: (T.PEEK_PROMISE_COMPLETION_NOTIFICATION,),
    T.COMPLETE_PROMISE_COMMAND: (T.COMPLETE_PROMISE_COMPLETION_NOTIFICATION,),
    T.SLEEP_COMMAND: (T.SLEEP_COMPLETION_NOTIFICATION,),
    T.CALL_COMMAND: (
        T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,
        T.CALL_COMPLETION_NOTIFICATION,
    ),
    T.ONE_WAY_CALL_COMMAND: (T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,),
    T.RUN_COMMAND: (T.RUN_COMPLETION_NOTIFICATION,),
    T.ATTACH_INVOCATION_COMMAND: (T.ATTACH_INVOCATION_COMPLETION_NOTIFICATION,),
    T.GET_INVOCATION_OUTPUT_COMMAND: (T.GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION,),
}

#: Message types that only exist from a given protocol version on. Every other type exists in
#: V5, V6 and V7 alike.
SINCE_VERSION: dict[MessageType, int] = {T.AWAITING_ON: 7, T.PROPOSE_RUN_COMPLETION_ACK: 7}


def kind_of(message_type: int) -> MessageKind:
    """The kind of a type code, by range: `kind_of(0x0411) is MessageKind.COMMAND`."""
    if message_type < 0x0400:
        return MessageKind.CONTROL
    if message_type < 0x8000:
        return MessageKind.COMMAND
    if message_type < 0xFC00:
        return MessageKind.NOTIFICATION
    return MessageKind.CUSTOM


def is_custom(message_type: int) -> bool:
    return message_type >= 0xFC00


def is_journaled(message_type: int) -> bool:
    """True for commands, notifications and custom commands: what the journal stores."""
    return message_type >= 0x0400


def is_completable(message_type: int) -> bool:
    """True for commands the server answers with one or more completion notifications."""
    return message_type in COMPLETIONS


def allows_ack(message_type: int) -> bool:
    """True for the types whose REQUESTED_ACK header bit means something.

    Only ProposeRunCompletion: with the bit set (V7+) the server answers with a small
    ProposeRunCompletionAck instead of the whole RunCompletionNotification.
    """
    return message_type == T.PROPOSE_RUN_COMPLETION


def type_name(message_type: int) -> str:
    """A readable name: `"RUN_COMMAND"`, or `"CUSTOM_0xFC01"`, or `"UNKNOWN_0x0415"`."""
    known = KNOWN_TYPES.get(message_type)
    if known is not None:
        return known.name
    return f"{'CUSTOM' if is_custom(message_type) else 'UNKNOWN'}_0x{message_type:04X}"


def check_type(message_type: int) -> int:
    """Returns the code as a MessageType when known, as an int when custom; raises otherwise."""
    known = KNOWN_TYPES.get(message_type)
    if known is not None:
        return known
    if message_type >= 0xFC00:
        return message_type
    raise UnknownMessageType(message_type)


def message_class(message_type: int) -> type[Message]:
    """The protobuf class of a type code: `message_class(0x0000) is pb.StartMessage`.

    Raises UnknownMessageType for custom codes (their payload is opaque bytes) and for codes
    the protocol does not define.
    """
    known = KNOWN_TYPES.get(message_type)
    if known is not None:
        return _CLASS_BY_TYPE[known]
    if is_custom(message_type):
        raise UnknownMessageType(
            message_type,
            f"custom message type 0x{message_type:04X} has no protobuf schema: its payload is "
            "opaque bytes that only the SDK which wrote it can read",
        )
    raise UnknownMessageType(message_type)


def message_type_of(msg: Message) -> MessageType:
    """The type code of a protobuf message: `message_type_of(pb.EndMessage()) is T.END`."""
    found = _TYPE_BY_CLASS.get(type(msg))
    if found is None:
        raise TypeError(
            f"{type(msg).__name__} is not sent as a frame of its own; only the messages with "
            "a type code (StartMessage, RunCommandMessage, ...) can be encoded as frames"
        )
    return found


def decode_payload(message_type: int, payload: bytes | bytearray | memoryview) -> Message:
    """Parses the payload of a frame of a known type into its protobuf message.

    Raises MalformedMessage when the bytes do not parse, UnknownMessageType for codes
    without a schema (custom or undefined).
    """
    cls = message_class(message_type)
    msg = cls()
    try:
        msg.ParseFromString(bytes(payload) if not isinstance(payload, bytes) else payload)
    except Exception as exc:  # DecodeError mostly; anything the parser raises is bad input
        raise MalformedMessage(message_type, type_name(message_type), str(exc) or "") from exc
    return msg


def parse_notification(payload: bytes) -> pb.NotificationTemplate:
    """Reads any notification payload through the common shape all notifications share.

    Handy where only the id and the result matter, not the concrete notification type.
    """
    msg = pb.NotificationTemplate()
    try:
        msg.ParseFromString(payload)
    except Exception as exc:
        raise MalformedMessage(0x8000, "notification", str(exc)) from exc
    return msg


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame off the wire: its type code, its REQUESTED_ACK bit and its raw payload.

    The payload stays as the bytes the peer sent, so a journal can store it without
    re-encoding; `decode()` parses it when the content is needed.

    >>> from perdure.protocol import FrameDecoder, encode_message
    >>> output = pb.OutputCommandMessage(value=pb.Value(content=b"42"))
    >>> (frame,) = FrameDecoder().feed(encode_message(output))
    >>> frame.name, frame.payload.hex(), frame.decode() == output
    ('OUTPUT_COMMAND', '72040a023432', True)
    """

    #: A MessageType member for protocol types; a plain int for custom commands.
    message_type: int
    payload: bytes
    requested_ack: bool = False

    @property
    def kind(self) -> MessageKind:
        return kind_of(self.message_type)

    @property
    def name(self) -> str:
        return type_name(self.message_type)

    def decode(self) -> Message:
        """A fresh protobuf message parsed from the payload (custom types raise, see is_custom)."""
        return decode_payload(self.message_type, self.payload)

    def decode_as(self, cls: type[_M]) -> _M:
        """Like decode(), checked against the class the caller expects.

        >>> Frame(MessageType.END, b"").decode_as(pb.EndMessage)
        <BLANKLINE>
        """
        msg = self.decode()
        if not isinstance(msg, cls):
            raise UnexpectedMessage(self.message_type, cls.__name__)
        return msg


# --- Suspension across versions ---------------------------------------------------------------


def suspension_message(awaiting: pb.Future, version: int) -> pb.SuspensionMessage:
    """The SuspensionMessage for an await point, in the shape `version` expects.

    V7+ carries the tree itself. V5 and V6 only know "wake me when any of these arrives", so
    the tree's leaves are flattened into the three lists; the server then resumes on the first
    of them and the SDK, replaying, suspends again if that was not enough.
    """
    if uses_awaiting_on_suspension(version):
        msg = pb.SuspensionMessage()
        msg.awaiting_on.CopyFrom(awaiting)
        return msg
    completions: list[int] = []
    signals: list[int] = []
    named: list[str] = []
    stack = [awaiting]
    while stack:
        node = stack.pop()
        completions.extend(node.waiting_completions)
        signals.extend(node.waiting_signals)
        named.extend(node.waiting_named_signals)
        stack.extend(reversed(node.nested_futures))
    return pb.SuspensionMessage(
        waiting_completions=completions, waiting_signals=signals, waiting_named_signals=named
    )


def awaited_future(msg: pb.SuspensionMessage) -> pb.Future:
    """The await point of a SuspensionMessage of any version, as a Future tree.

    A V5/V6 suspension (three flat lists) becomes one FIRST_COMPLETED node: it is resumed
    as soon as any listed notification arrives, which is exactly what those versions meant.
    """
    if msg.HasField("awaiting_on"):
        return msg.awaiting_on
    return pb.Future(
        waiting_completions=msg.waiting_completions,
        waiting_signals=msg.waiting_signals,
        waiting_named_signals=msg.waiting_named_signals,
        combinator_type=pb.FIRST_COMPLETED,
    )
