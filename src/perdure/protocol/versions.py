"""Service protocol versions: content types, negotiation, and what each version can do."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from perdure.protocol.errors import UnsupportedVersion

CONTENT_TYPE_PREFIX = "application/vnd.restate.invocation."


class ServiceProtocolVersion(enum.IntEnum):
    """The invocation protocol versions Perdure speaks.

    V1-V2 used a journal model Perdure does not implement, and V3-V4 were withdrawn. A V8
    exists in the Restate SDK core shipped inside restate-sdk 1.2.0 (it knows the
    `...invocation.v8` content type and adds ephemeral state reads), but it is not published
    in the protocol sources, and that SDK still advertises 5..7 in its discovery manifest; so
    V8 stays out until its wire format is written down.
    """

    V5 = 5
    V6 = 6
    V7 = 7

    @property
    def content_type(self) -> str:
        return f"{CONTENT_TYPE_PREFIX}v{int(self)}"


V = ServiceProtocolVersion

MIN_VERSION = V.V5
MAX_VERSION = V.V7

#: The versions Perdure's server can invoke deployments with.
SERVER_VERSIONS: frozenset[ServiceProtocolVersion] = frozenset({V.V5, V.V6, V.V7})
#: The versions Perdure's SDK accepts when invoked.
SDK_VERSIONS: frozenset[ServiceProtocolVersion] = frozenset({V.V5, V.V6, V.V7})


def content_type_for(version: int) -> str:
    """The HTTP content-type for a version: `content_type_for(7)` is `...invocation.v7`."""
    try:
        return ServiceProtocolVersion(version).content_type
    except ValueError:
        raise ValueError(
            f"service protocol version {version!r} is not one Perdure speaks "
            f"({_describe(SERVER_VERSIONS)})"
        ) from None


def parse_version_number(content_type: str | None) -> int | None:
    """The N of `application/vnd.restate.invocation.vN` (any N), or None for another type.

    Parameters after `;` and letter case are ignored, as HTTP media types allow.
    """
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if not media.startswith(CONTENT_TYPE_PREFIX):
        return None
    tail = media[len(CONTENT_TYPE_PREFIX) :]
    if len(tail) < 2 or tail[0] != "v" or not tail[1:].isdigit() or len(tail) > 6:
        return None
    return int(tail[1:])


def parse_content_type(content_type: str | None) -> ServiceProtocolVersion | None:
    """The version a content-type names, if it is one Perdure speaks; None otherwise.

    >>> parse_content_type("application/vnd.restate.invocation.v6")
    <ServiceProtocolVersion.V6: 6>
    """
    number = parse_version_number(content_type)
    if number is None:
        return None
    try:
        return ServiceProtocolVersion(number)
    except ValueError:
        return None


def negotiate(
    offered_by_server: Iterable[int], supported_by_sdk: Iterable[int]
) -> ServiceProtocolVersion | None:
    """The highest version both sides speak, or None when they share none.

    The server decides: it picks from the versions the deployment advertised at discovery
    (its `minProtocolVersion..maxProtocolVersion`) and names the choice in the content-type.

    >>> negotiate(SERVER_VERSIONS, range(5, 8))
    <ServiceProtocolVersion.V7: 7>
    """
    common = set(offered_by_server) & set(supported_by_sdk)
    known = [ServiceProtocolVersion(v) for v in common if v in _VALUES]
    return max(known) if known else None


def negotiate_server(min_version: int, max_version: int) -> ServiceProtocolVersion | None:
    """The version Perdure's server uses for a deployment advertising `min..max` (inclusive)."""
    return negotiate(SERVER_VERSIONS, range(min_version, max_version + 1))


def unsupported_version_message(
    content_type: str | None, supported: Iterable[int] = SDK_VERSIONS
) -> str:
    """The body of a 415 answer: what was asked, what is spoken, and what to do about it."""
    spoken = _describe(supported)
    number = parse_version_number(content_type)
    if not content_type:
        return (
            "the request has no content-type; invoke this endpoint through a Restate or "
            f"Perdure server, which sends application/vnd.restate.invocation.vN ({spoken})"
        )
    if number is None:
        return (
            f"content-type {content_type!r} is not a Restate invocation stream; invoke this "
            "endpoint through a Restate or Perdure server, not directly"
        )
    newer = all(number > v for v in supported)
    fix = (
        "upgrade this deployment's SDK, or pin the server to an older protocol"
        if newer
        else "upgrade the server, or use an SDK release that still speaks it"
    )
    return f"protocol version v{number} is not supported here ({spoken}); {fix}"


def require_version(
    content_type: str | None, supported: Iterable[int] = SDK_VERSIONS
) -> ServiceProtocolVersion:
    """The version an invocation request asks for, or UnsupportedVersion (answer 415 with str()).

    >>> require_version("application/vnd.restate.invocation.v5")
    <ServiceProtocolVersion.V5: 5>
    """
    spoken = {int(v) for v in supported}
    version = parse_content_type(content_type)
    if version is None or version not in spoken:
        raise UnsupportedVersion(unsupported_version_message(content_type, spoken), content_type)
    return version


def _describe(versions: Iterable[int]) -> str:
    vs = sorted(int(v) for v in versions)
    if not vs:
        return "no versions"
    return "speaks " + ", ".join(f"v{v}" for v in vs)


_VALUES = frozenset(int(v) for v in ServiceProtocolVersion)


# --- What each version has ----------------------------------------------------------------------
# Small predicates, so that code reads `if has_random_seed(v)` rather than `if v >= 6`.


def has_random_seed(version: int) -> bool:
    """StartMessage.random_seed (V6+)."""
    return version >= 6


def has_failure_metadata(version: int) -> bool:
    """Failure.metadata (V6+)."""
    return version >= 6


def uses_awaiting_on_suspension(version: int) -> bool:
    """SuspensionMessage carries a Future tree in field 4 instead of three flat lists (V7+)."""
    return version >= 7


def has_awaiting_on_message(version: int) -> bool:
    """AwaitingOnMessage, the SDK's hint of what it waits on (V7+)."""
    return version >= 7


def has_propose_run_ack(version: int) -> bool:
    """ProposeRunCompletionAck answers a run proposal that set REQUESTED_ACK (V7+).

    Before V7 the server always answers a proposal with the full RunCompletionNotification.
    """
    return version >= 7


def has_error_behavior(version: int) -> bool:
    """ErrorMessage.behavior: retry, pause or fail (V7+)."""
    return version >= 7


def has_scope_and_limit_key(version: int) -> bool:
    """Scope and limit keys on calls, targets and StartMessage (V7+)."""
    return version >= 7


def has_start_idempotency_key(version: int) -> bool:
    """StartMessage.idempotency_key (V7+)."""
    return version >= 7


def answers_proposal_with_ack(version: int, requested_ack: bool) -> bool:
    """Whether the server answers a ProposeRunCompletion with the small ack (True) or with the
    full RunCompletionNotification (False): the ack only on V7+ and only when asked for."""
    return requested_ack and has_propose_run_ack(version)
