"""Frames: the header layout, and a decoder that survives any chunking and any garbage."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perdure.protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    Frame,
    FrameDecoder,
    FrameTooLarge,
    MessageKind,
    MessageType,
    ProtocolError,
    TruncatedFrame,
    UnknownMessageType,
    decode_frames,
    decode_header,
    encode_frame,
    encode_header,
    encode_message,
    encode_messages,
    pb,
)

# --- the header -----------------------------------------------------------------------------


def test_header_layout_is_type_flags_length_big_endian() -> None:
    assert encode_header(0x0411, 0x01020304).hex() == "0411000001020304"
    header = decode_header(bytes.fromhex("0005800000000010"))
    assert (header.message_type, header.flags, header.length) == (0x0005, 0x8000, 16)
    assert header.requested_ack


def test_requested_ack_is_the_most_significant_flag_bit() -> None:
    # As a 64-bit word the bit is 0x0000_8000_0000_0000, the mask the Restate cores use.
    word = int.from_bytes(encode_header(0x0005, 0, requested_ack=True), "big")
    assert word == 0x0005_8000_0000_0000
    assert not decode_header(encode_header(0x0005, 0)).requested_ack


def test_header_fields_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="16-bit"):
        encode_header(0x1_0000, 0)
    with pytest.raises(ValueError, match="32-bit"):
        encode_header(0x0400, 2**32)
    with pytest.raises(TruncatedFrame):
        decode_header(b"\x04\x00")


def test_encode_frame_and_encode_message_agree() -> None:
    msg = pb.OutputCommandMessage(value=pb.Value(content=b"done"))
    payload = msg.SerializeToString()
    assert encode_message(msg) == encode_frame(MessageType.OUTPUT_COMMAND, payload)
    assert encode_messages(msg, pb.EndMessage()) == encode_message(msg) + encode_message(
        pb.EndMessage()
    )


# --- the decoder, by example ----------------------------------------------------------------

START = encode_message(pb.StartMessage(id=b"inv", debug_id="inv_1", known_entries=1))
INPUT = encode_message(pb.InputCommandMessage(value=pb.Value(content=b'"Ada"')))
PROPOSAL = encode_message(
    pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"42"), requested_ack=True
)


def test_one_byte_at_a_time_gives_the_same_frames() -> None:
    stream = START + INPUT + PROPOSAL
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i : i + 1])
    decoder.eof()
    assert [f.message_type for f in frames] == [
        MessageType.START,
        MessageType.INPUT_COMMAND,
        MessageType.PROPOSE_RUN_COMPLETION,
    ]
    assert [f.requested_ack for f in frames] == [False, False, True]
    assert frames[1].decode() == pb.InputCommandMessage(value=pb.Value(content=b'"Ada"'))


def test_frames_are_returned_as_soon_as_they_are_complete() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(START[:-1]) == []
    assert decoder.buffered == len(START) - 1
    (start,) = decoder.feed(START[-1:] + INPUT[:3])
    assert start.message_type == MessageType.START
    assert decoder.buffered == 3
    assert decoder.feed(b"") == []


def test_empty_payloads_and_custom_types_pass_through() -> None:
    stream = (
        encode_message(pb.EndMessage()) + encode_frame(0xFFFF, b"") + encode_frame(0xFC00, b"x")
    )
    frames = decode_frames(stream)
    assert frames == [Frame(MessageType.END, b""), Frame(0xFFFF, b""), Frame(0xFC00, b"x")]
    assert [f.kind for f in frames] == [MessageKind.CONTROL, MessageKind.CUSTOM, MessageKind.CUSTOM]


def test_unknown_type_names_the_code_in_hex() -> None:
    decoder = FrameDecoder()
    with pytest.raises(UnknownMessageType, match="0x0415") as info:
        decoder.feed(START + encode_frame(0x0415, b"abc"))
    assert info.value.message_type == 0x0415
    # The stream cannot be trusted past a bad header: the decoder stays failed.
    with pytest.raises(ProtocolError, match="already failed"):
        decoder.feed(INPUT)


def test_unknown_type_is_reported_from_the_header_alone() -> None:
    # No need to wait for (possibly gigabytes of) payload to know the frame is bad.
    with pytest.raises(UnknownMessageType, match="0x7FFF"):
        FrameDecoder().feed(encode_header(0x7FFF, 1_000_000))


def test_oversized_frames_are_refused_before_buffering() -> None:
    decoder = FrameDecoder(max_frame_size=16)
    assert len(decoder.feed(encode_frame(0x0400, b"x" * 16))) == 1
    with pytest.raises(FrameTooLarge, match="17 bytes of payload, more than the limit of 16"):
        decoder.feed(encode_header(0x0400, 17))
    with pytest.raises(FrameTooLarge):
        FrameDecoder().feed(encode_header(0x0400, DEFAULT_MAX_FRAME_SIZE + 1))


@pytest.mark.parametrize("cut", [1, 7, 8, 9, len(START) - 1])
def test_eof_inside_a_frame_is_a_truncated_frame(cut: int) -> None:
    decoder = FrameDecoder()
    assert decoder.feed(START[:cut]) == []
    with pytest.raises(TruncatedFrame, match="the stream ended after") as info:
        decoder.eof()
    assert info.value.buffered == cut
    assert info.value.needed == (None if cut < 8 else len(START))


def test_eof_between_frames_is_clean_and_final() -> None:
    decoder = FrameDecoder()
    assert len(decoder.feed(START + INPUT)) == 2
    decoder.eof()
    with pytest.raises(ProtocolError, match="after eof"):
        decoder.feed(INPUT)


def test_feed_accepts_any_buffer() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(bytearray(START)) + decoder.feed(memoryview(INPUT))
    assert [f.payload for f in frames] == [START[8:], INPUT[8:]]
    assert all(type(f.payload) is bytes for f in frames)


# --- the decoder, by property ---------------------------------------------------------------

KNOWN_CODES = [int(t) for t in MessageType]
frame_types = st.one_of(st.sampled_from(KNOWN_CODES), st.integers(0xFC00, 0xFFFF))
frames_st = st.lists(
    st.builds(
        Frame,
        message_type=frame_types,
        payload=st.binary(max_size=300),
        requested_ack=st.booleans(),
    ),
    max_size=12,
)


def wire(frames: list[Frame]) -> bytes:
    return b"".join(
        encode_frame(f.message_type, f.payload, requested_ack=f.requested_ack) for f in frames
    )


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(frames=frames_st, cuts=st.lists(st.integers(0, 10_000), max_size=30))
def test_any_chunking_yields_the_frames_that_were_sent(
    frames: list[Frame], cuts: list[int]
) -> None:
    decoder = FrameDecoder()
    out: list[Frame] = []
    for chunk in chunked(wire(frames), cuts):
        out += decoder.feed(chunk)
    decoder.eof()
    assert out == frames


@given(
    frames=frames_st.filter(bool), cut=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 10_000))
)
def test_a_cut_stream_yields_the_whole_frames_then_truncated(
    frames: list[Frame], cut: int, cuts: list[int]
) -> None:
    data = wire(frames)
    cut %= len(data) + 1
    decoder = FrameDecoder()
    out: list[Frame] = []
    for chunk in chunked(data[:cut], cuts):
        out += decoder.feed(chunk)
    boundaries = [0]
    for f in frames:
        boundaries.append(boundaries[-1] + 8 + len(f.payload))
    whole = sum(1 for b in boundaries[1:] if b <= cut)
    assert out == frames[:whole]
    if cut in boundaries:
        decoder.eof()
    else:
        with pytest.raises(TruncatedFrame):
            decoder.eof()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 4000), max_size=20))
def test_garbage_only_ever_raises_protocol_errors(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_frame_size=4096)
    try:
        for chunk in chunked(data, cuts):
            for frame in decoder.feed(chunk):
                if frame.kind is not MessageKind.CUSTOM:
                    frame.decode()
        decoder.eof()
    except ProtocolError:
        pass


@given(
    message_type=st.sampled_from(list(MessageType)),
    payload=st.binary(max_size=200),
)
def test_random_payloads_parse_or_raise_malformed(
    message_type: MessageType, payload: bytes
) -> None:
    (frame,) = decode_frames(encode_frame(message_type, payload))
    with contextlib.suppress(ProtocolError):
        frame.decode()


@given(
    frames=frames_st.filter(bool),
    damage=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1),
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
)
def test_damaged_streams_only_ever_raise_protocol_errors(
    frames: list[Frame], damage: list[tuple[int, int]], cuts: list[int]
) -> None:
    data = bytearray(wire(frames))
    for where, byte in damage:
        data[where % len(data)] = byte
    decoder = FrameDecoder(max_frame_size=1024)
    with contextlib.suppress(ProtocolError):
        for chunk in chunked(bytes(data), cuts):
            for frame in decoder.feed(chunk):
                if frame.kind is not MessageKind.CUSTOM:
                    frame.decode()
        decoder.eof()
