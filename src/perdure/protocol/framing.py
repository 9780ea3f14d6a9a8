"""Frames on the wire: the 8-byte header, encoding, and an incremental decoder."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from google.protobuf.message import Message

from perdure.protocol.errors import FrameTooLarge, ProtocolError, TruncatedFrame, UnknownMessageType
from perdure.protocol.messages import KNOWN_TYPES, Frame, message_type_of

# Header, big-endian: type (u16) | flags (u16) | payload length (u32).
HEADER = struct.Struct(">HHI")
HEADER_SIZE = HEADER.size
#: The most significant bit of the flag block. Only ProposeRunCompletion gives it a meaning.
REQUESTED_ACK_FLAG = 0x8000
#: What the length field can express.
MAX_PAYLOAD_LENGTH = 0xFFFF_FFFF
#: Frames whose header announces more than this are refused before any payload is buffered,
#: so a corrupt or hostile length cannot make a process allocate gigabytes. 32 MiB is
#: Restate's own default message size limit: anything a Restate server accepts, we accept.
DEFAULT_MAX_FRAME_SIZE = 32 * 1024 * 1024

_CUSTOM_START = 0xFC00


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """A decoded header.

    >>> decode_header(bytes.fromhex("0005800000000002"))
    FrameHeader(message_type=5, flags=32768, length=2)
    """

    message_type: int
    flags: int
    length: int

    @property
    def requested_ack(self) -> bool:
        return bool(self.flags & REQUESTED_ACK_FLAG)


def encode_header(message_type: int, length: int, *, requested_ack: bool = False) -> bytes:
    """The 8 header bytes of a frame.

    >>> encode_header(0x0400, 5).hex()
    '0400000000000005'
    """
    if not 0 <= message_type <= 0xFFFF:
        raise ValueError(f"message type {message_type!r} does not fit the 16-bit type field")
    if not 0 <= length <= MAX_PAYLOAD_LENGTH:
        raise ValueError(f"payload length {length} does not fit the 32-bit length field")
    return HEADER.pack(message_type, REQUESTED_ACK_FLAG if requested_ack else 0, length)


def decode_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader:
    """Unpacks the header at `offset`; the type code is returned as is, unchecked."""
    if len(data) - offset < HEADER_SIZE:
        raise TruncatedFrame(max(len(data) - offset, 0), None)
    message_type, flags, length = HEADER.unpack_from(data, offset)
    return FrameHeader(message_type, flags, length)


def encode_frame(
    message_type: int, payload: bytes | bytearray | memoryview, *, requested_ack: bool = False
) -> bytes:
    """Header + payload, for payloads already encoded (journal entries, custom commands)."""
    return encode_header(message_type, len(payload), requested_ack=requested_ack) + payload


def encode_message(msg: Message, *, requested_ack: bool = False) -> bytes:
    """A protobuf message as a whole frame, its type code taken from its class.

    >>> from perdure.protocol import pb
    >>> encode_message(pb.EndMessage()).hex()
    '0003000000000000'
    """
    payload = msg.SerializeToString()
    return encode_header(message_type_of(msg), len(payload), requested_ack=requested_ack) + payload


def encode_messages(*msgs: Message) -> bytes:
    """Several messages as consecutive frames, none of them asking for an ack."""
    return b"".join(encode_message(m) for m in msgs)


class FrameDecoder:
    """Turns a byte stream, cut anywhere, into whole frames.

    Sans-I/O: feed it what the socket gave, get back the frames completed so far. A protocol
    violation raises a ProtocolError and the decoder stays failed (the stream cannot be
    resynchronised once a length is wrong). Call `eof()` when the peer closed: it raises
    TruncatedFrame if a frame was cut short.

    >>> data = encode_frame(0x0400, b"in") + encode_frame(0x0003, b"")
    >>> decoder = FrameDecoder()
    >>> for chunk in (data[:5], data[5:12], data[12:]):
    ...     for frame in decoder.feed(chunk):
    ...         print(frame.name, frame.payload)
    INPUT_COMMAND b'in'
    END b''
    >>> decoder.eof()
    """

    __slots__ = ("_buf", "_closed", "_failure", "_max", "_need")

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 0:
            raise ValueError("max_frame_size cannot be negative")
        self._max = max_frame_size
        self._buf = bytearray()
        # Bytes the next frame needs before it can be cut: 8 until its header is read, then
        # 8 + payload length. Lets feed() return at once while a large payload trickles in.
        self._need = HEADER_SIZE
        self._failure: ProtocolError | None = None
        self._closed = False

    @property
    def buffered(self) -> int:
        """Bytes received that are not part of a returned frame yet."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Adds bytes; returns the frames they complete, in order (often none, maybe many)."""
        if self._failure is not None:
            raise ProtocolError(
                f"this stream already failed ({self._failure}); it cannot be read further"
            )
        if self._closed:
            raise ProtocolError("bytes were fed after eof(); start a new decoder per stream")
        buf = self._buf
        buf += data
        available = len(buf)
        if available < self._need:
            return []
        frames: list[Frame] = []
        pos = 0
        unpack = HEADER.unpack_from
        known = KNOWN_TYPES
        limit = self._max
        with memoryview(buf) as view:
            while available - pos >= HEADER_SIZE:
                code, flags, length = unpack(buf, pos)
                message_type: int | None = known.get(code)
                if message_type is None:
                    if code < _CUSTOM_START:
                        raise self._fail(UnknownMessageType(code))
                    message_type = code
                if length > limit:
                    raise self._fail(FrameTooLarge(code, length, limit))
                end = pos + HEADER_SIZE + length
                if end > available:
                    self._need = end - pos
                    break
                payload = view[pos + HEADER_SIZE : end].tobytes()
                frames.append(Frame(message_type, payload, bool(flags & REQUESTED_ACK_FLAG)))
                pos = end
            else:
                self._need = HEADER_SIZE
        if pos:
            del buf[:pos]  # bytearray drops a prefix without moving the rest
        return frames

    def eof(self) -> None:
        """The peer finished sending. Raises TruncatedFrame if a frame is incomplete."""
        self._closed = True
        pending = len(self._buf)
        if pending and self._failure is None:
            needed = self._need if pending >= HEADER_SIZE else None
            raise self._fail(TruncatedFrame(pending, needed))

    close = eof

    def _fail(self, error: ProtocolError) -> ProtocolError:
        self._failure = error
        self._buf = bytearray()  # rebinding, not clear(): feed() may still hold a view of it
        return error


def decode_frames(
    data: bytes | bytearray | memoryview, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
) -> list[Frame]:
    """All frames of a complete byte string (a whole request body, a stored journal).

    Raises TruncatedFrame when the bytes end inside a frame.
    """
    decoder = FrameDecoder(max_frame_size=max_frame_size)
    frames = decoder.feed(data)
    decoder.eof()
    return frames


__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER",
    "HEADER_SIZE",
    "MAX_PAYLOAD_LENGTH",
    "REQUESTED_ACK_FLAG",
    "Frame",
    "FrameDecoder",
    "FrameHeader",
    "decode_frames",
    "decode_header",
    "encode_frame",
    "encode_header",
    "encode_message",
    "encode_messages",
]
