"""Endpoint-manifest versions: their content types, the Accept header, and negotiation."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

__all__ = [
    "DISCOVER_PATH",
    "LATEST_MANIFEST_VERSION",
    "SDK_MANIFEST_VERSIONS",
    "SERVER_MANIFEST_VERSIONS",
    "ManifestError",
    "ManifestVersion",
    "accept_header",
    "negotiate_version",
    "version_from_content_type",
]

DISCOVER_PATH = "/discover"  # what Restate GETs on a deployment (crates/service-protocol-v4)


class ManifestVersion(IntEnum):
    """Versions of the endpoint manifest (restate service-protocol/discovery.proto)."""

    V1 = 1
    V2 = 2  # documentation and metadata on services and handlers
    V3 = 3  # timeouts, retentions, lazy state, ingress-private
    V4 = 4  # lambdaCompression and the retryPolicy* fields

    @property
    def content_type(self) -> str:
        """The media type naming this version in Accept and Content-Type headers.

        >>> ManifestVersion.V4.content_type
        'application/vnd.restate.endpointmanifest.v4+json'
        """
        return f"application/vnd.restate.endpointmanifest.v{self.value}+json"


LATEST_MANIFEST_VERSION = ManifestVersion.V4
# Restate accepts v1..v4 (crates/types/src/service_discovery.rs); so does Perdure's server.
SERVER_MANIFEST_VERSIONS: tuple[ManifestVersion, ...] = tuple(ManifestVersion)
# Perdure's SDK can write every version: `Endpoint.to_json` refuses fields a version lacks.
# (The official Python SDK answers v2..v4 and refuses a v1-only Accept with 415.)
SDK_MANIFEST_VERSIONS: tuple[ManifestVersion, ...] = tuple(ManifestVersion)

_BY_MEDIA_TYPE = {version.content_type: version for version in ManifestVersion}


class ManifestError(ValueError):
    """A manifest (or discovery header) Perdure refuses; `path` is the culprit's JSON path.

    >>> str(ManifestError("services[1].handlers[0].ty", 'expected one of ..., got "X"'))
    'services[1].handlers[0].ty: expected one of ..., got "X"'
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


def accept_header(versions: Sequence[ManifestVersion] = SERVER_MANIFEST_VERSIONS) -> str:
    """The Accept header a server sends to /discover, offering `versions` as Restate does.

    >>> for media_type in accept_header([ManifestVersion.V4, ManifestVersion.V3]).split(", "):
    ...     print(media_type)
    application/vnd.restate.endpointmanifest.v3+json
    application/vnd.restate.endpointmanifest.v4+json
    """
    return ", ".join(version.content_type for version in sorted(versions))


def _media_type(value: str) -> str:
    return value.partition(";")[0].strip().lower()


def version_from_content_type(
    value: str | None, accepted: Sequence[ManifestVersion] = SERVER_MANIFEST_VERSIONS
) -> ManifestVersion:
    """The manifest version an SDK answered with, from its Content-Type header.

    Restate compares the header byte for byte; Perdure also tolerates case, spaces and
    parameters, which only ever accepts more.

    >>> version_from_content_type("application/vnd.restate.endpointmanifest.v3+json")
    <ManifestVersion.V3: 3>
    """
    expected = ", ".join(version.content_type for version in accepted)
    if value is None:
        raise ManifestError("", f"the discovery response has no Content-Type; expected {expected}")
    version = _BY_MEDIA_TYPE.get(_media_type(value))
    if version is None or version not in accepted:
        raise ManifestError(
            "", f"the discovery response's Content-Type {value!r} is not one of {expected}"
        )
    return version


def negotiate_version(
    accept: str | None, supported: Sequence[ManifestVersion] = SDK_MANIFEST_VERSIONS
) -> ManifestVersion | None:
    """The SDK's choice: the newest supported version that the Accept header offers.

    None means "answer 415". With no Accept header the official Python SDK answers v2, and so
    does this; a wildcard (``*/*``) picks the newest.

    >>> negotiate_version(accept_header())
    <ManifestVersion.V4: 4>
    """
    if accept is None or not accept.strip():
        return ManifestVersion.V2 if ManifestVersion.V2 in supported else None
    offered: set[ManifestVersion] = set()
    for item in accept.split(","):
        media_type = _media_type(item)
        if media_type in ("*/*", "application/*"):
            offered.update(supported)
        elif media_type in _BY_MEDIA_TYPE:
            offered.add(_BY_MEDIA_TYPE[media_type])
    usable = offered.intersection(supported)
    return max(usable) if usable else None
