"""Restate's identifiers (invocation, awakeable, deployment): generate, render, parse."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

__all__ = [
    "CANCEL_SIGNAL_INDEX",
    "FIRST_AWAKEABLE_SIGNAL_INDEX",
    "AwakeableId",
    "AwakeableKind",
    "DeploymentId",
    "IdPart",
    "InvalidId",
    "InvocationId",
    "RandomBytes",
    "new_ulid",
    "parse_any_id",
    "partition_key_for_key",
]

# Layout of every printable id (restate crates/types/src/id_util.rs, scheme V1):
#   <resource type> "_" <scheme version "1"> <payload>
# Payloads of fixed-width integers are base62 with the digits 0-9, then a-z, then A-Z,
# left-padded with "0" to 11 characters for a u64 and 22 for a u128.
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_BASE62_VALUE = {char: value for value, char in enumerate(_BASE62)}
_SCHEME_VERSION = "1"
_U64_CHARS = 11  # ceil(64 / 6)
_U128_CHARS = 22  # ceil(128 / 6)

# Every prefix Restate knows, so that a wrong-but-valid id gets a precise message.
_RESOURCE_TYPES = {
    "inv": "an invocation",
    "dp": "a deployment",
    "sub": "a subscription",
    "prom": "an awakeable",
    "sign": "an awakeable (signal)",
    "snap": "a snapshot",
    "mut": "a state mutation",
    "vq": "a virtual queue",
}

# Signal indexes 1..16 are reserved by the protocol; 1 cancels the invocation. The SDKs hand
# out awakeables from 17 upwards (sdk-shared-core src/vm/context.rs, `signal_index: 17`).
CANCEL_SIGNAL_INDEX = 1
FIRST_AWAKEABLE_SIGNAL_INDEX = 17

_U32_MAX = (1 << 32) - 1
_U64_LIMIT = 1 << 64
_U128_LIMIT = 1 << 128
_ULID_TIME_LIMIT = 1 << 48
_HASH_SEPARATOR = b","  # 0x2c, as in restate InvocationUuid::generate

RandomBytes = Callable[[int], bytes]
"""A source of randomness: `n -> n random bytes` (`os.urandom` in production)."""


class IdPart(Enum):
    """The part of an id that failed to parse."""

    WHOLE = "id"
    RESOURCE_TYPE = "resource type"
    VERSION = "scheme version"
    PARTITION_KEY = "partition key"
    UUID = "uuid"
    ULID = "ulid"
    PAYLOAD = "payload"


class InvalidId(ValueError):
    """An id that does not parse; `part` says which piece is wrong.

    >>> try:
    ...     InvocationId.parse("inv_2abc")
    ... except InvalidId as e:
    ...     e.part
    <IdPart.VERSION: 'scheme version'>
    """

    def __init__(self, text: str, part: IdPart, reason: str) -> None:
        self.text = text
        self.part = part
        self.reason = reason
        shown = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(f"invalid id {shown!r}: {part.value}: {reason}")


# --- base62 -------------------------------------------------------------------------------


def _swap_bytes(value: int, width: int) -> int:
    return int.from_bytes(value.to_bytes(width, "big"), "little")


def _encode_fixed(value: int, width: int) -> str:
    # Restate calls `to_be()` on the integer before base62-encoding it. On the little-endian
    # hosts Restate ships for, that reverses the byte order, so the printed digits are those of
    # the byte-swapped integer. Printed ids only round-trip with Restate's tools if we do the same.
    number = _swap_bytes(value, width)
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    chars = _U64_CHARS if width == 8 else _U128_CHARS
    return "".join(reversed(digits)).rjust(chars, "0")


def _decode_fixed(text: str, segment: str, width: int, part: IdPart) -> int:
    number = 0
    for char in segment:
        digit = _BASE62_VALUE.get(char)
        if digit is None:
            raise InvalidId(text, part, f"{char!r} is not a base62 digit (0-9, a-z, A-Z)")
        number = number * 62 + digit
    if number >> (8 * width):
        raise InvalidId(text, part, f"{segment!r} does not fit in {8 * width} bits")
    return _swap_bytes(number, width)


def _payload_after_prefix(text: str, expected: str) -> str:
    """Checks `<expected>_1` and returns what follows it."""
    if not text:
        raise InvalidId(text, IdPart.WHOLE, f"the id is empty; expected '{expected}_1...'")
    prefix, separator, rest = text.partition("_")
    if not separator:
        raise InvalidId(
            text, IdPart.RESOURCE_TYPE, f"no '_' after the prefix; expected '{expected}_1...'"
        )
    if prefix != expected:
        known = _RESOURCE_TYPES.get(prefix)
        if known is None:
            reason = f"unknown prefix {prefix!r}; expected {expected!r}"
        else:
            wanted = _RESOURCE_TYPES[expected]
            reason = f"this is {known} id ({prefix!r}), expected {wanted} id ({expected!r})"
        raise InvalidId(text, IdPart.RESOURCE_TYPE, reason)
    if not rest:
        raise InvalidId(text, IdPart.VERSION, "missing the scheme version after '_'")
    if rest[0] != _SCHEME_VERSION:
        raise InvalidId(
            text, IdPart.VERSION, f"unsupported scheme version {rest[0]!r}; only '1' exists"
        )
    return rest[1:]


def _fixed_segment(text: str, payload: str, start: int, chars: int, part: IdPart) -> str:
    segment = payload[start : start + chars]
    if len(segment) < chars:
        raise InvalidId(text, part, f"too short: expected {chars} characters, got {len(segment)}")
    return segment


def _check_nothing_left(text: str, payload: str, used: int, part: IdPart) -> None:
    if len(payload) > used:
        extra = len(payload) - used
        raise InvalidId(text, part, f"{extra} unexpected character(s) after the {part.value}")


def _check_range(name: str, value: int, limit: int) -> None:
    if not 0 <= value < limit:
        raise ValueError(f"{name} must be in [0, {limit - 1}], got {value}")


# --- generation helpers --------------------------------------------------------------------


def new_ulid(now_ms: int, random_bytes: RandomBytes) -> int:
    """A ULID as a 128-bit integer: 48 bits of Unix time in ms, then 80 random bits.

    >>> hex(new_ulid(1, lambda n: bytes(n)))
    '0x100000000000000000000'
    """
    _check_range("now_ms", now_ms, _ULID_TIME_LIMIT)
    randomness = random_bytes(10)
    if len(randomness) != 10:
        raise ValueError(f"random_bytes(10) returned {len(randomness)} bytes")
    return (now_ms << 80) | int.from_bytes(randomness, "big")


def partition_key_for_key(key: str) -> int:
    """The partition key (u64) of a virtual-object or workflow key, or of an idempotency key.

    Restate hashes the key with xxh3-64 (seed 0) through Rust's `Hash` for `str`, which feeds the
    UTF-8 bytes followed by one 0xFF byte (restate crates/types/src/identifiers.rs,
    `HashPartitioner`). xxh3 is not in the standard library, so Perdure hashes the same bytes
    with BLAKE2b-64 instead: stable across runs and machines, but a different number than
    Restate computes. Only the owner of the id ever derives it, so nothing on the wire depends
    on it; swapping in xxh3 later would only change this function.

    >>> partition_key_for_key("alice") == partition_key_for_key("alice")
    True
    """
    digest = hashlib.blake2b(key.encode() + b"\xff", digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _sha256_uuid(*parts: bytes) -> int:
    hasher = hashlib.sha256()
    for index, part in enumerate(parts):
        if index:
            hasher.update(_HASH_SEPARATOR)
        hasher.update(part)
    return int.from_bytes(hasher.digest()[:16], "big")


# --- invocation id -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class InvocationId:
    """An invocation id: the partition key (u64) and a 128-bit uuid.

    Bytes form (StartMessage.id): 8 bytes partition key, then 16 bytes uuid, both big-endian.
    Printable form: ``inv_1`` + 11 base62 characters (partition key) + 22 (uuid), 38 in all.

    >>> iid = InvocationId.parse("inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz")
    >>> InvocationId.from_bytes(iid.to_bytes()) == iid and str(iid) == iid.to_str()
    True
    """

    partition_key: int
    uuid: int

    PREFIX: ClassVar[str] = "inv"
    RAW_LENGTH: ClassVar[int] = 24
    STR_LENGTH: ClassVar[int] = 38

    def __post_init__(self) -> None:
        _check_range("partition_key", self.partition_key, _U64_LIMIT)
        _check_range("uuid", self.uuid, _U128_LIMIT)

    @classmethod
    def generate(
        cls,
        service: str,
        handler: str,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        workflow_run: bool = False,
        now_ms: int,
        random_bytes: RandomBytes,
    ) -> InvocationId:
        """A new id for a call to `service/handler`, following Restate's rules.

        - The partition key is derived from `key` (objects, workflows), else from
          `idempotency_key`, else it is random.
        - The uuid of a workflow run (`workflow_run=True`, the workflow's main handler) is a
          SHA-256 of service and key; of a call with an idempotency key, a SHA-256 of service,
          key, handler and idempotency key. So retries of the same request get the same id.
          Any other call gets a fresh ULID.

        >>> def call(now_ms: int) -> InvocationId:
        ...     return InvocationId.generate(
        ...         "Shop", "buy", idempotency_key="k1", now_ms=now_ms, random_bytes=bytes
        ...     )
        >>> call(now_ms=0) == call(now_ms=9)  # same request, same id
        True
        """
        if workflow_run and key is None:
            raise ValueError("a workflow run needs the workflow key")
        if key is not None:
            partition_key = partition_key_for_key(key)
        elif idempotency_key is not None:
            partition_key = partition_key_for_key(idempotency_key)
        else:
            partition_key = int.from_bytes(_exactly(random_bytes, 8), "big")

        # restate InvocationUuid::generate; the optional "scope" part is not modelled.
        if workflow_run:
            assert key is not None
            uuid = _sha256_uuid(b"wf", service.encode(), key.encode())
        elif idempotency_key is not None:
            parts = [b"ik", service.encode()]
            if key is not None:
                parts.append(key.encode())
            parts += [handler.encode(), idempotency_key.encode()]
            uuid = _sha256_uuid(*parts)
        else:
            uuid = new_ulid(now_ms, random_bytes)
        return cls(partition_key, uuid)

    def to_bytes(self) -> bytes:
        """The 24 bytes Restate sends as `StartMessage.id`."""
        return self.partition_key.to_bytes(8, "big") + self.uuid.to_bytes(16, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> InvocationId:
        """Reads the 24-byte form; any other length is an `InvalidId`."""
        if len(data) != cls.RAW_LENGTH:
            raise InvalidId(
                data.hex(), IdPart.WHOLE, f"expected {cls.RAW_LENGTH} bytes, got {len(data)}"
            )
        return cls(int.from_bytes(data[:8], "big"), int.from_bytes(data[8:], "big"))

    def to_str(self) -> str:
        """The printable form, as Restate renders it (also `str(id)`)."""
        return (
            f"{self.PREFIX}_{_SCHEME_VERSION}"
            f"{_encode_fixed(self.partition_key, 8)}{_encode_fixed(self.uuid, 16)}"
        )

    __str__ = to_str

    @classmethod
    def parse(cls, text: str) -> InvocationId:
        """Reads the printable form; errors name the part that is wrong."""
        payload = _payload_after_prefix(text, cls.PREFIX)
        key_text = _fixed_segment(text, payload, 0, _U64_CHARS, IdPart.PARTITION_KEY)
        partition_key = _decode_fixed(text, key_text, 8, IdPart.PARTITION_KEY)
        uuid_text = _fixed_segment(text, payload, _U64_CHARS, _U128_CHARS, IdPart.UUID)
        uuid = _decode_fixed(text, uuid_text, 16, IdPart.UUID)
        _check_nothing_left(text, payload, _U64_CHARS + _U128_CHARS, IdPart.UUID)
        return cls(partition_key, uuid)

    from_str = parse


def _exactly(random_bytes: RandomBytes, count: int) -> bytes:
    data = random_bytes(count)
    if len(data) != count:
        raise ValueError(f"random_bytes({count}) returned {len(data)} bytes")
    return data


# --- awakeable ids -------------------------------------------------------------------------


class AwakeableKind(Enum):
    """The two awakeable id families Restate accepts; the value is the prefix."""

    SIGNAL = "sign"
    """Service protocol v4 and later (what current SDKs hand out): the index is a signal index."""
    ENTRY = "prom"
    """Older protocols: the index is the journal entry index of the awakeable entry."""


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_AWAKEABLE_RAW_LENGTH = InvocationId.RAW_LENGTH + 4


@dataclass(frozen=True, slots=True)
class AwakeableId:
    """An awakeable id: the owning invocation plus a u32 index, in URL-safe base64.

    Printable form: ``sign_1`` (or ``prom_1``) + unpadded URL-safe base64 of the 24 invocation-id
    bytes followed by the index as a big-endian u32: 38 characters of payload.

    The sdk-shared-core protocol document says ``prom_1`` + the signal index, but its code (and
    Restate's server) use ``sign_1`` for signal indexes and keep ``prom_1`` for the older
    entry-index awakeables; this class follows the code.

    >>> iid = InvocationId(1, 2)
    >>> awk = AwakeableId(iid, FIRST_AWAKEABLE_SIGNAL_INDEX)
    >>> AwakeableId.parse(str(awk)) == awk
    True
    """

    invocation_id: InvocationId
    index: int
    kind: AwakeableKind = AwakeableKind.SIGNAL

    def __post_init__(self) -> None:
        _check_range("index", self.index, _U32_MAX + 1)

    def to_bytes(self) -> bytes:
        """The 28 bytes that the printable form encodes."""
        return self.invocation_id.to_bytes() + self.index.to_bytes(4, "big")

    @classmethod
    def from_bytes(cls, data: bytes, kind: AwakeableKind = AwakeableKind.SIGNAL) -> AwakeableId:
        if len(data) != _AWAKEABLE_RAW_LENGTH:
            raise InvalidId(
                data.hex(),
                IdPart.PAYLOAD,
                f"expected {_AWAKEABLE_RAW_LENGTH} bytes, got {len(data)}",
            )
        return cls(
            InvocationId.from_bytes(data[: InvocationId.RAW_LENGTH]),
            int.from_bytes(data[InvocationId.RAW_LENGTH :], "big"),
            kind,
        )

    def to_str(self) -> str:
        payload = base64.urlsafe_b64encode(self.to_bytes()).rstrip(b"=").decode()
        return f"{self.kind.value}_{_SCHEME_VERSION}{payload}"

    __str__ = to_str

    @classmethod
    def parse(cls, text: str) -> AwakeableId:
        """Reads either family (``sign_1...`` or ``prom_1...``), like Restate's ingress does."""
        kind = AwakeableKind.ENTRY if text.startswith("prom_") else AwakeableKind.SIGNAL
        payload = _payload_after_prefix(text, kind.value)
        # Restate decodes with padding optional but, if present, correct; the alphabet check
        # comes first because b64decode would otherwise accept "+" and "/" after translation.
        if not _BASE64URL.fullmatch(payload):
            raise InvalidId(text, IdPart.PAYLOAD, "not URL-safe base64 (A-Z, a-z, 0-9, '-', '_')")
        unpadded = payload.rstrip("=")
        if payload != unpadded and len(payload) % 4:
            raise InvalidId(text, IdPart.PAYLOAD, "wrong base64 padding")
        try:
            raw = base64.b64decode(
                unpadded + "=" * (-len(unpadded) % 4), altchars=b"-_", validate=True
            )
        except binascii.Error as error:
            raise InvalidId(text, IdPart.PAYLOAD, f"not valid base64: {error}") from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != unpadded:
            # Non-zero unused bits in the last character: Rust's decoder rejects these.
            raise InvalidId(text, IdPart.PAYLOAD, "not canonical base64 (stray bits at the end)")
        if len(raw) != _AWAKEABLE_RAW_LENGTH:
            raise InvalidId(
                text,
                IdPart.PAYLOAD,
                f"decodes to {len(raw)} bytes, expected {_AWAKEABLE_RAW_LENGTH}",
            )
        return cls.from_bytes(raw, kind)

    from_str = parse


# --- deployment id -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class DeploymentId:
    """A deployment id: a ULID, printed as ``dp_1`` + 22 base62 characters.

    >>> DeploymentId.parse("dp_11nGQpCRmau6ypL82KH2TnP").timestamp_ms
    1736273149519
    """

    ulid: int

    PREFIX: ClassVar[str] = "dp"
    STR_LENGTH: ClassVar[int] = 26

    def __post_init__(self) -> None:
        _check_range("ulid", self.ulid, _U128_LIMIT)

    @classmethod
    def generate(cls, *, now_ms: int, random_bytes: RandomBytes) -> DeploymentId:
        return cls(new_ulid(now_ms, random_bytes))

    @property
    def timestamp_ms(self) -> int:
        """When the id was made (Unix ms), from the ULID's time part."""
        return self.ulid >> 80

    def to_bytes(self) -> bytes:
        return self.ulid.to_bytes(16, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> DeploymentId:
        if len(data) != 16:
            raise InvalidId(data.hex(), IdPart.WHOLE, f"expected 16 bytes, got {len(data)}")
        return cls(int.from_bytes(data, "big"))

    def to_str(self) -> str:
        return f"{self.PREFIX}_{_SCHEME_VERSION}{_encode_fixed(self.ulid, 16)}"

    __str__ = to_str

    @classmethod
    def parse(cls, text: str) -> DeploymentId:
        payload = _payload_after_prefix(text, cls.PREFIX)
        segment = _fixed_segment(text, payload, 0, _U128_CHARS, IdPart.ULID)
        ulid = _decode_fixed(text, segment, 16, IdPart.ULID)
        _check_nothing_left(text, payload, _U128_CHARS, IdPart.ULID)
        return cls(ulid)

    from_str = parse


def parse_any_id(text: str) -> InvocationId | AwakeableId | DeploymentId:
    """Parses whichever id `text` is, judged by its prefix.

    >>> type(parse_any_id("dp_11nGQpCRmau6ypL82KH2TnP")).__name__
    'DeploymentId'
    """
    prefix = text.partition("_")[0]
    if prefix == DeploymentId.PREFIX:
        return DeploymentId.parse(text)
    if prefix in (AwakeableKind.SIGNAL.value, AwakeableKind.ENTRY.value):
        return AwakeableId.parse(text)
    return InvocationId.parse(text)
