"""The message type table: every type round-trips, codes and field numbers are Restate's."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from perdure.protocol import (
    COMPLETIONS,
    Frame,
    MalformedMessage,
    MessageKind,
    MessageType,
    ProtocolError,
    UnexpectedMessage,
    UnknownMessageType,
    allows_ack,
    awaited_future,
    decode_frames,
    decode_payload,
    encode_frame,
    encode_message,
    is_completable,
    is_journaled,
    kind_of,
    message_class,
    message_type_of,
    parse_notification,
    pb,
    suspension_message,
    type_name,
)

T = MessageType


def sample(cls: type[Message], depth: int = 0) -> Message:
    """A message of `cls` with every field set to something other than its default."""
    msg = cls()
    filled_oneofs: set[str] = set()
    for field in cls.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in filled_oneofs:
                continue
            filled_oneofs.add(oneof.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 2:
                continue
            if field.is_repeated:
                for _ in range(2):
                    item = getattr(msg, field.name).add()
                    item.CopyFrom(sample(type(item), depth + 1))
            else:
                child = getattr(msg, field.name)
                child.CopyFrom(sample(type(child), depth + 1))
                child.SetInParent()
            continue
        values = [_scalar(field, i) for i in range(2)]
        if field.is_repeated:
            getattr(msg, field.name).extend(values)
        else:
            setattr(msg, field.name, values[0])
    return msg


def _scalar(field: FieldDescriptor, i: int) -> object:
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{i}-ü"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return f"{field.name}-{i}".encode() + b"\x00\xff"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    return 1000 * field.number + i + 1  # uint32 / uint64


# --- the table ------------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", list(MessageType), ids=lambda t: t.name)
def test_every_message_type_round_trips_through_a_frame(message_type: MessageType) -> None:
    msg = sample(message_class(message_type))
    wire = encode_message(msg)
    (frame,) = decode_frames(wire)
    assert frame.message_type == message_type
    assert frame.decode() == msg
    assert frame.payload == msg.SerializeToString()
    assert message_type_of(frame.decode()) is message_type


@pytest.mark.parametrize("message_type", list(MessageType), ids=lambda t: t.name)
def test_names_and_ranges_agree(message_type: MessageType) -> None:
    name = message_type.name
    if name.endswith("_COMMAND"):
        assert message_type.kind is MessageKind.COMMAND
        assert is_journaled(message_type)
    elif name.endswith("_NOTIFICATION"):
        assert message_type.kind is MessageKind.NOTIFICATION
        assert is_journaled(message_type)
    else:
        assert message_type.kind is MessageKind.CONTROL
        assert not is_journaled(message_type)
    assert message_type.pb_class.DESCRIPTOR.full_name.startswith("dev.restate.service.protocol.")


def test_type_codes_are_the_published_ones() -> None:
    # A few spot checks by hand, so a renumbering of the enum cannot go unnoticed.
    assert (T.START, T.SUSPENSION, T.ERROR, T.END) == (0x0000, 0x0001, 0x0002, 0x0003)
    assert (T.PROPOSE_RUN_COMPLETION, T.AWAITING_ON, T.PROPOSE_RUN_COMPLETION_ACK) == (5, 6, 7)
    assert (T.INPUT_COMMAND, T.RUN_COMMAND, T.COMPLETE_AWAKEABLE_COMMAND) == (0x400, 0x411, 0x414)
    assert T.CALL_COMPLETION_NOTIFICATION == 0x800D
    assert T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION == 0x800E
    assert T.SIGNAL_NOTIFICATION == 0xFBFF
    assert len(MessageType) == 40  # 8 control, 20 commands, 12 notifications


def test_kinds_follow_the_ranges() -> None:
    assert kind_of(0x03FF) is MessageKind.CONTROL
    assert kind_of(0x0400) is MessageKind.COMMAND
    assert kind_of(0x7FFF) is MessageKind.COMMAND
    assert kind_of(0x8000) is MessageKind.NOTIFICATION
    assert kind_of(0xFBFF) is MessageKind.NOTIFICATION
    assert kind_of(0xFC00) is MessageKind.CUSTOM
    assert kind_of(0xFFFF) is MessageKind.CUSTOM


def test_completable_commands_name_their_notifications() -> None:
    for command, notifications in COMPLETIONS.items():
        assert command.kind is MessageKind.COMMAND
        assert all(n.kind is MessageKind.NOTIFICATION for n in notifications)
        assert is_completable(command)
    assert COMPLETIONS[T.CALL_COMMAND] == (
        T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,
        T.CALL_COMPLETION_NOTIFICATION,
    )
    assert not is_completable(T.SET_STATE_COMMAND)
    assert not is_completable(T.OUTPUT_COMMAND)


def test_only_run_proposals_carry_the_ack_bit() -> None:
    assert [t for t in MessageType if allows_ack(t)] == [T.PROPOSE_RUN_COMPLETION]


def test_type_names_are_readable_for_every_code() -> None:
    assert type_name(0x0411) == "RUN_COMMAND"
    assert type_name(0xFC01) == "CUSTOM_0xFC01"
    assert type_name(0x0415) == "UNKNOWN_0x0415"


def test_custom_and_unknown_codes_have_no_schema() -> None:
    with pytest.raises(UnknownMessageType, match="0xFC01 has no protobuf schema"):
        message_class(0xFC01)
    with pytest.raises(UnknownMessageType, match="0x0415"):
        message_class(0x0415)
    with pytest.raises(TypeError, match="Future"):
        message_type_of(pb.Future())


def test_custom_frames_keep_their_bytes() -> None:
    (frame,) = decode_frames(encode_frame(0xFC07, b"\x01\x02 not protobuf"))
    assert frame == Frame(0xFC07, b"\x01\x02 not protobuf")
    assert frame.kind is MessageKind.CUSTOM
    with pytest.raises(ProtocolError):
        frame.decode()


# --- golden bytes: the field numbers are Restate's ------------------------------------------


def test_golden_encodings() -> None:
    def frame_hex(msg: Message, **kw: bool) -> str:
        return encode_message(msg, **kw).hex()

    # InputCommandMessage.value is field 14 (tag 0x72); Value.content field 1.
    assert frame_hex(pb.InputCommandMessage(value=pb.Value(content=b"hi"))) == (
        "040000000000000672040a026869"
    )
    # ProposeRunCompletionMessage: id field 1, value bytes field 14, ack bit in the flags.
    assert (
        frame_hex(
            pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"1"), requested_ack=True
        )
        == "0005800000000005"
        "0801"
        "720131"
    )
    # V7 suspension: Future in field 4 holding completion 1 (packed field 1).
    v7 = suspension_message(pb.Future(waiting_completions=[1]), 7)
    assert v7.SerializeToString().hex() == "22030a0101"
    # V5/V6 suspension: the same await point as the flat list in field 1.
    v6 = suspension_message(pb.Future(waiting_completions=[1]), 6)
    assert v6.SerializeToString().hex() == "0a0101"
    # StartMessage.random_seed is field 9 (uint64), idempotency_key field 12.
    start = pb.StartMessage(random_seed=5, idempotency_key="k")
    assert start.SerializeToString().hex() == "480562016b"
    # SignalNotificationMessage addresses by idx (field 2) and carries void in field 4.
    signal = pb.SignalNotificationMessage(idx=1, void=pb.Void())
    assert signal.SerializeToString().hex() == "10012200"
    # ErrorMessage.behavior is field 9, next_retry_delay field 8.
    error = pb.ErrorMessage(code=571, next_retry_delay=10, behavior=pb.PAUSE)
    assert error.SerializeToString().hex() == "08bb04400a4801"


# --- decoding -----------------------------------------------------------------------------


def test_malformed_payload_is_a_protocol_error_naming_the_type() -> None:
    with pytest.raises(MalformedMessage, match=r"RUN_COMMAND frame \(type 0x0411\)") as info:
        decode_payload(T.RUN_COMMAND, b"\xff\xff\xff")
    assert info.value.code == 571


def test_decode_as_checks_the_expected_class() -> None:
    (frame,) = decode_frames(encode_message(pb.EndMessage()))
    assert isinstance(frame.decode_as(pb.EndMessage), pb.EndMessage)
    with pytest.raises(UnexpectedMessage, match="expected a StartMessage"):
        frame.decode_as(pb.StartMessage)


@pytest.mark.parametrize(
    "message_type", [t for t in MessageType if t.kind is MessageKind.NOTIFICATION]
)
def test_every_notification_reads_through_the_common_shape(message_type: MessageType) -> None:
    msg = sample(message_class(message_type))
    template = parse_notification(msg.SerializeToString())
    if message_type == T.SIGNAL_NOTIFICATION:
        assert (template.WhichOneof("id"), template.signal_id) == ("signal_id", msg.idx)
    else:
        assert (template.WhichOneof("id"), template.completion_id) == (
            "completion_id",
            msg.completion_id,
        )
    results = {"void", "value", "failure", "invocation_id", "state_keys"}
    (result,) = [f.name for f, _ in msg.ListFields() if f.name in results]
    assert template.WhichOneof("result") == result
    assert getattr(template, result) == getattr(msg, result)


# --- suspension across versions -------------------------------------------------------------


def test_suspension_tree_is_flattened_for_v5_and_v6() -> None:
    tree = pb.Future(
        combinator_type=pb.ALL_SUCCEEDED_OR_FIRST_FAILED,
        waiting_completions=[3],
        nested_futures=[
            pb.Future(
                combinator_type=pb.FIRST_COMPLETED,
                waiting_signals=[17],
                waiting_named_signals=["approved"],
            ),
            pb.Future(waiting_completions=[4]),
        ],
    )
    for version in (5, 6):
        msg = suspension_message(tree, version)
        assert not msg.HasField("awaiting_on")
        assert list(msg.waiting_completions) == [3, 4]
        assert list(msg.waiting_signals) == [17]
        assert list(msg.waiting_named_signals) == ["approved"]
        back = awaited_future(msg)
        assert back.combinator_type == pb.FIRST_COMPLETED
        assert list(back.waiting_completions) == [3, 4]
    v7 = suspension_message(tree, 7)
    assert list(v7.waiting_completions) == []
    assert awaited_future(v7) == tree


def test_docstring_examples_run() -> None:
    import doctest

    from perdure.protocol import errors, framing, messages, versions

    for module in (errors, versions, messages, framing):
        assert doctest.testmod(module).failed == 0, module.__name__
