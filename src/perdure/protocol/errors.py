"""Errors of the wire codec, and the numbered codes the protocol reserves for failures."""

from __future__ import annotations

# --- Codes ----------------------------------------------------------------------------------
# ErrorMessage.code and Failure.code are HTTP-like status codes. The protocol reserves a few
# numbers in the 5xx space for failures that only durable execution has; SDKs put them in the
# ErrorMessage that ends a failed attempt, and a server shows them to the user as they are.

#: The stream asked for a protocol version the other side does not speak (an HTTP 415).
UNSUPPORTED_MEDIA_TYPE = 415
#: Anything else that went wrong inside an SDK or the server.
INTERNAL = 500
#: Replaying the journal, user code did something other than what the journal recorded (it is
#: not deterministic, or the code changed under a running invocation).
JOURNAL_MISMATCH = 570
#: A message arrived that is not allowed at this point of the stream, or does not parse.
PROTOCOL_VIOLATION = 571
#: User code awaited two results at once in a way the SDK cannot journal.
AWAITING_TWO_ASYNC_RESULTS = 572
#: User code used a feature the negotiated protocol version does not have (for example a
#: failure with metadata on V5, or a call scope before V7).
UNSUPPORTED_FEATURE = 573
#: Used inside SDKs: the state machine is already closed. Not meant to reach a server.
CLOSED = 598
#: Used inside SDKs: the invocation suspended. Not meant to reach a server.
SUSPENDED = 599

CODE_NAMES: dict[int, str] = {
    UNSUPPORTED_MEDIA_TYPE: "unsupported protocol version",
    INTERNAL: "internal error",
    JOURNAL_MISMATCH: "journal mismatch",
    PROTOCOL_VIOLATION: "protocol violation",
    AWAITING_TWO_ASYNC_RESULTS: "awaiting two async results",
    UNSUPPORTED_FEATURE: "unsupported feature",
    CLOSED: "closed",
    SUSPENDED: "suspended",
}


def describe_code(code: int) -> str:
    """A short name for a protocol code, e.g. `describe_code(570) == "570 journal mismatch"`."""
    name = CODE_NAMES.get(code)
    return f"{code} {name}" if name else str(code)


# --- Exceptions -----------------------------------------------------------------------------


class ProtocolError(Exception):
    """Bytes or messages that break the service protocol.

    Every message says what was wrong and what to look at. `code` is the protocol code to put
    in an ErrorMessage or Failure about it (571 unless a subclass says otherwise).

    >>> from perdure.protocol import FrameDecoder
    >>> try:
    ...     FrameDecoder().feed(bytes.fromhex("0415000000000000"))
    ... except ProtocolError as exc:
    ...     print(exc.code, str(exc).split(":")[0])
    571 unknown message type 0x0415
    """

    code: int = PROTOCOL_VIOLATION


class FrameTooLarge(ProtocolError):
    """A frame header announced a payload bigger than the decoder accepts."""

    def __init__(self, message_type: int, length: int, limit: int) -> None:
        self.message_type = message_type
        self.length = length
        self.limit = limit
        super().__init__(
            f"a frame of type 0x{message_type:04X} announces {length} bytes of payload, more "
            f"than the limit of {limit} bytes; if the peer really sends messages this big, "
            "raise max_frame_size, otherwise the stream is corrupt or not a Restate stream"
        )


class TruncatedFrame(ProtocolError):
    """The stream ended in the middle of a frame."""

    def __init__(self, buffered: int, needed: int | None) -> None:
        self.buffered = buffered
        self.needed = needed
        what = (
            f"{buffered} of the 8 header bytes"
            if needed is None
            else f"{buffered} of the {needed} bytes (header included) of its last frame"
        )
        super().__init__(
            f"the stream ended after {what}; the peer closed or crashed mid-message, so that "
            "message was lost and the attempt must be retried"
        )


class UnknownMessageType(ProtocolError):
    """A frame carries a type code outside the protocol's table (and outside the custom range)."""

    def __init__(self, message_type: int, detail: str = "") -> None:
        self.message_type = message_type
        super().__init__(
            detail
            or (
                f"unknown message type 0x{message_type:04X}: it is not in the service protocol "
                "(V5-V7) nor in the custom range 0xFC00-0xFFFF; the peer may speak a newer "
                "protocol version than was negotiated, or the stream is corrupt"
            )
        )


class MalformedMessage(ProtocolError):
    """A frame's payload does not parse as the protobuf message its type code names."""

    def __init__(self, message_type: int, type_name: str, reason: str) -> None:
        self.message_type = message_type
        self.type_name = type_name
        self.reason = reason
        super().__init__(
            f"the payload of a {type_name} frame (type 0x{message_type:04X}) is not valid "
            f"protobuf for that message ({reason}); the peer wrote a different message than "
            "its type code says, or the bytes were damaged"
        )


class UnsupportedVersion(ProtocolError):
    """The content-type names a protocol version this side does not speak (HTTP 415)."""

    code = UNSUPPORTED_MEDIA_TYPE

    def __init__(self, message: str, content_type: str | None) -> None:
        self.content_type = content_type
        super().__init__(message)


class UnexpectedMessage(ProtocolError):
    """A well-formed message arrived where the protocol expects a different one."""

    def __init__(self, message_type: int, expected: str) -> None:
        self.message_type = message_type
        self.expected = expected
        super().__init__(
            f"expected a {expected} but the peer sent a message of type 0x{message_type:04X}; "
            "the two sides disagree about where the stream is (see the protocol's stream "
            "lifecycle), which is a bug in the peer or a journal from a different invocation"
        )
