"""Fetching a deployment's manifest: GET {uri}/discover over h2c or HTTP/1.1, then validated.

Like Restate (crates/service-protocol-v4/src/discovery.rs): the Accept header offers every
manifest version the server reads (v1..v4), plain http:// URIs are spoken to with HTTP/2 prior
knowledge unless the registration asks for HTTP/1.1, the answer's Content-Type names the
version, and `x-restate-server` names the SDK. Every way this can fail becomes a catalog
error that says what to do: unreachable (502), an error status (502), an answer that is not a
manifest (502), a manifest Perdure refuses (400), protocol versions it does not speak (400).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from perdure.protocol import versions
from perdure.protocol.discovery import (
    DISCOVER_PATH,
    Endpoint,
    ManifestError,
    ManifestVersion,
    ProtocolMode,
    accept_header,
    parse_manifest,
    version_from_content_type,
)
from perdure.server import errors as E
from perdure.server.errors import PerdureError
from perdure.server.invoker.transport import (
    ConnectError,
    Response,
    Transport,
    TransportError,
    TransportTimeout,
)

# Discovery is one small GET; an SDK that needs longer than this is stuck, not slow.
DISCOVERY_TIMEOUT_S = 10.0
# Real manifests are kilobytes; this bounds what a wrong URI can make the server parse.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

HTTP11_HINT = (
    'If the deployment speaks only HTTP/1.1, register it with "use_http_11": true '
    "(`perdure deployments register --use-http1.1 <uri>`)."
)


@dataclass(frozen=True, slots=True)
class Discovered:
    """What a deployment said about itself, validated."""

    uri: str
    endpoint: Endpoint
    document: dict[str, Any]  # the manifest as parsed JSON, for the services' definitions
    manifest: str  # the manifest exactly as sent
    version: ManifestVersion
    sdk_version: str | None  # the x-restate-server header
    http_version: str  # "HTTP/2.0" or "HTTP/1.1", as Restate's admin API reports it

    def service_documents(self) -> list[dict[str, Any]]:
        services = self.document.get("services", [])
        return [s for s in services if isinstance(s, dict)]


def check_uri(uri: str) -> str:
    """The URI, normalised (no trailing slash); a 400 `PerdureError` if it cannot be used."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PerdureError(E.BAD_DEPLOYMENT_URI, f"The deployment URI '{uri}' is not usable.")
    if parts.scheme == "https":
        raise PerdureError(
            E.BAD_DEPLOYMENT_URI,
            f"The deployment URI '{uri}' uses https://, which Perdure does not speak to "
            "deployments yet.",
            hint="Serve the deployment over plain http:// (HTTP/2 prior knowledge or HTTP/1.1) "
            "on a trusted network.",
        )
    return uri.strip().rstrip("/")


class Discoverer:
    """Discovers deployments with the invoker's transports (HTTP/2 and HTTP/1.1).

    ::

        discoverer = Discoverer(h2_transport, h1_transport)
        found = await discoverer.discover("http://127.0.0.1:9080")
        found.endpoint.services[0].name
    """

    def __init__(
        self,
        h2: Transport | None = None,
        h1: Transport | None = None,
        timeout_s: float = DISCOVERY_TIMEOUT_S,
        sign: Callable[[str], list[tuple[str, str]]] | None = None,
    ) -> None:
        self._h2 = h2
        self._h1 = h1
        self._sign = sign  # the request-identity headers for a URL (server/identity.py)
        self._owned: list[Transport] = []
        self._timeout_s = timeout_s

    def _transport(self, use_http_11: bool) -> Transport:
        if use_http_11:
            if self._h1 is None:
                from perdure.server.invoker.h1 import H1Transport

                self._h1 = H1Transport()
                self._owned.append(self._h1)
            return self._h1
        if self._h2 is None:
            from perdure.server.invoker.h2 import H2Transport

            self._h2 = H2Transport()
            self._owned.append(self._h2)
        return self._h2

    async def close(self) -> None:
        """Closes the transports this discoverer created (never the ones it was given)."""
        for transport in self._owned:
            await transport.close()
        self._owned.clear()

    async def discover(
        self,
        uri: str,
        additional_headers: Sequence[tuple[str, str]] = (),
        use_http_11: bool = False,
    ) -> Discovered:
        """The deployment's validated manifest, or a `PerdureError` that says what to do."""
        base = check_uri(uri)
        url = base + DISCOVER_PATH
        headers = [("accept", accept_header()), *additional_headers]
        if self._sign is not None:
            headers.extend(self._sign(url))
        try:
            response = await self._transport(use_http_11).request(
                "GET", url, headers, timeout=self._timeout_s
            )
        except TransportError as exc:
            raise _unreachable(url, exc, use_http_11) from None
        return read_answer(base, url, response, use_http_11)


def _unreachable(url: str, exc: TransportError, use_http_11: bool) -> PerdureError:
    if isinstance(exc, TransportTimeout):
        message = f"GET {url} got no answer within {DISCOVERY_TIMEOUT_S:.0f} s."
    else:
        message = f"GET {url} failed: {exc}."
    hint = E.DEPLOYMENT_UNREACHABLE.hint
    if not use_http_11 and not isinstance(exc, ConnectError):
        # Connected, but the HTTP/2 exchange broke: the classic sign of an HTTP/1.1-only server.
        hint = f"{hint} {HTTP11_HINT}"
    return PerdureError(E.DEPLOYMENT_UNREACHABLE, message, hint=hint)


def read_answer(base: str, url: str, response: Response, use_http_11: bool) -> Discovered:
    """Validates a discovery answer (pure: separated from the I/O for testing)."""
    if response.status != 200:
        raise _bad_status(url, response)
    if len(response.body) > MAX_MANIFEST_BYTES:
        raise PerdureError(
            E.DISCOVERY_BAD_RESPONSE,
            f"GET {url} answered {len(response.body)} bytes, more than a manifest can be "
            f"({MAX_MANIFEST_BYTES} bytes).",
        )
    try:
        version = version_from_content_type(response.header("content-type"))
    except ManifestError as exc:
        raise PerdureError(E.DISCOVERY_BAD_RESPONSE, f"GET {url}: {exc}.") from None
    try:
        text = response.body.decode("utf-8")
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PerdureError(
            E.DISCOVERY_BAD_RESPONSE, f"GET {url} answered a manifest that is not JSON: {exc}."
        ) from None
    try:
        endpoint = parse_manifest(response.body)
    except ManifestError as exc:
        where = f" at {exc.path}" if exc.path else ""
        raise PerdureError(
            E.MANIFEST_INVALID, f"The manifest of {base} is invalid{where}: {exc.reason}."
        ) from None
    if (
        versions.negotiate_server(endpoint.min_protocol_version, endpoint.max_protocol_version)
        is None
    ):
        raise PerdureError(
            E.PROTOCOL_UNSUPPORTED,
            f"{base} speaks service protocol versions {endpoint.min_protocol_version} to "
            f"{endpoint.max_protocol_version}; this server speaks {int(versions.MIN_VERSION)} to "
            f"{int(versions.MAX_VERSION)}.",
        )
    if use_http_11 and endpoint.protocol_mode is ProtocolMode.BIDI_STREAM:
        raise PerdureError(
            E.INVALID_FIELD,
            f"{base} asks for bidirectional streaming (BIDI_STREAM), which needs HTTP/2, but it "
            'was registered with "use_http_11": true.',
            hint='Register it without "use_http_11" (http:// URIs are spoken to with HTTP/2 '
            "prior knowledge), or configure the SDK for request-response mode.",
        )
    return Discovered(
        uri=base,
        endpoint=endpoint,
        document=document,
        manifest=text,
        version=version,
        sdk_version=response.header("x-restate-server"),
        http_version="HTTP/1.1" if use_http_11 else "HTTP/2.0",
    )


def _bad_status(url: str, response: Response) -> PerdureError:
    body = response.body[:300].decode("utf-8", "replace").strip()
    shown = f": {body}" if body else ""
    status = response.status
    if status == 404:
        hint = (
            "Check the path: the URI must be where the SDK endpoint is mounted, and Perdure "
            f"asks {url} for the manifest."
        )
    elif status == 415:
        hint = (
            "The SDK accepts none of the manifest versions Perdure offers (v1 to v4); "
            "upgrade the SDK."
        )
    elif status in (401, 403):
        hint = 'Give the credentials the deployment expects with "additional_headers".'
    elif status == 505 or (status == 400 and "HTTP/2" in body):
        hint = HTTP11_HINT
    else:
        hint = "Check the deployment's logs for why discovery failed."
    return PerdureError(E.DISCOVERY_BAD_STATUS, f"GET {url} answered {status}{shown}.", hint=hint)


__all__ = [
    "DISCOVERY_TIMEOUT_S",
    "Discovered",
    "Discoverer",
    "check_uri",
    "read_answer",
]
