"""How the invoker reaches deployments: the Transport/Stream seam, its errors, URLs and sockets."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

Headers = list[tuple[str, str]]

# How much of an error response body a BadStatus keeps, and how long we wait for it: enough for
# an SDK's error text, never enough to let a misbehaving deployment hold an attempt open.
BAD_STATUS_BODY_LIMIT = 1024
BAD_STATUS_BODY_TIMEOUT_S = 2.0

# Restate's own connect timeout (`http.connect-timeout`) is 10 s.
CONNECT_TIMEOUT_S = 10.0

# Hop-by-hop headers are meaningless (and, over HTTP/2, forbidden) on a request we build
# ourselves; a deployment's `additional_headers` could still name them.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host"}
)


class TransportError(Exception):
    """The deployment could not be reached or the exchange broke; the attempt can be retried.

    Every message is a sentence naming the deployment URL and what to check; `url` holds it.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError):
    """No connection could be made (refused, unresolvable, TLS or HTTP/2 handshake failed).

    Nothing was sent: retrying is always safe.
    """


class ConnectionLost(TransportError):
    """The connection broke (peer closed it, crashed, sent GOAWAY or broke the protocol)."""


class StreamReset(TransportError):
    """The deployment reset this one stream (RST_STREAM); `error_code` is the HTTP/2 code."""

    def __init__(self, message: str, *, url: str = "", error_code: int = 0) -> None:
        super().__init__(message, url=url)
        self.error_code = error_code


class TransportTimeout(TransportError):
    """A `request()` did not complete within the timeout its caller gave."""


class BadStatus(TransportError):
    """The deployment answered with a status outside 2xx.

    `status`, `headers` (e.g. `retry-after` on a 429) and the first bytes of `body` say why.
    """

    def __init__(self, url: str, status: int, headers: Headers, body: bytes) -> None:
        snippet = body[:BAD_STATUS_BODY_LIMIT].decode("utf-8", "replace").strip()
        said = f": {snippet!r}" if snippet else ""
        super().__init__(
            f"the deployment at {url} answered HTTP {status}{said}; {_status_hint(status)}",
            url=url,
        )
        self.status = status
        self.headers = headers
        self.body = body


def _status_hint(status: int) -> str:
    if status == 404:
        return "check that the deployment still serves this service and handler (re-register it)"
    if status == 415:
        return "the deployment does not speak this protocol version: check its SDK version"
    if status in (401, 403):
        return "check the deployment's additional headers and its request-identity key"
    if status in (502, 503, 504):
        return "a proxy or gateway in front of the deployment could not reach it"
    if status == 429:
        return "the deployment is rate limiting: the attempt is retried later"
    return "its logs should say why"


@dataclass(frozen=True, slots=True)
class Response:
    """A whole response, as `Transport.request()` returns it."""

    status: int
    headers: Headers
    body: bytes
    url: str = ""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def raise_for_status(self) -> Response:
        """Returns self when the status is 2xx, raises BadStatus otherwise.

        >>> Response(200, [], b"{}").raise_for_status().status
        200
        """
        if not 200 <= self.status < 300:
            raise BadStatus(self.url, self.status, self.headers, self.body)
        return self


class Stream(Protocol):
    """One exchange with a deployment: a request body going out, a response coming back.

    Over HTTP/2 both halves are open at once (BIDI_STREAM); over HTTP/1.1 the request body is
    buffered and goes out at `end()` (REQUEST_RESPONSE).

        stream = await transport.open_stream(url, headers)
        await stream.send(start_frames)
        status, headers = await stream.response_headers()
        while (chunk := await stream.receive()) is not None:
            ...
        await stream.end()
        await stream.aclose()
    """

    @property
    def url(self) -> str: ...

    async def send(self, data: bytes) -> None:
        """Queues `data` on the request body; waits only when too much is queued already.

        Data is taken whole or not at all, so cancelling a send never cuts a frame in two.
        Raises StreamReset/ConnectionLost if the exchange broke; sending after `end()` is a
        bug (RuntimeError). Once the response has ended, the attempt is over: the request side
        is closed for us and later data is dropped silently.
        """
        ...

    async def end(self) -> None:
        """Ends the request body (HTTP/2 END_STREAM once queued data is out). Idempotent."""
        ...

    async def response_headers(self) -> tuple[int, Headers]:
        """Waits for the response status and headers (lower-case names), whatever the status."""
        ...

    async def receive(self) -> bytes | None:
        """The response bytes that arrived since the last call (at least one), None at the end.

        Raises StreamReset/ConnectionLost if the response broke off, after the bytes that
        did arrive have been returned.
        """
        ...

    async def reset(self) -> None:
        """Abandons the exchange now (HTTP/2 RST_STREAM CANCEL; HTTP/1.1 closes the socket)."""
        ...

    async def aclose(self) -> None:
        """Releases the stream: resets it unless both sides already ended. Idempotent."""
        ...


class Transport(Protocol):
    """Opens streams and plain requests to deployments; owns the connection pool."""

    async def open_stream(self, url: str, headers: Headers) -> Stream:
        """Starts `POST url` with `headers`; raises ConnectError if no connection can be made."""
        ...

    async def request(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: bytes = b"",
        timeout: float = 30.0,
    ) -> Response:
        """One whole exchange (e.g. discovery); any status is returned, see raise_for_status."""
        ...

    async def close(self) -> None:
        """Closes every pooled connection; streams still open fail with ConnectionLost."""
        ...


async def require_success(stream: Stream) -> Headers:
    """The response headers if the status is 2xx; otherwise BadStatus with the body's start.

    headers = await require_success(stream)  # BadStatus(status=404, ...) otherwise
    """
    status, headers = await stream.response_headers()
    if 200 <= status < 300:
        return headers
    body = b""
    with contextlib.suppress(TransportError, TimeoutError):
        async with asyncio.timeout(BAD_STATUS_BODY_TIMEOUT_S):
            while len(body) < BAD_STATUS_BODY_LIMIT:
                chunk = await stream.receive()
                if chunk is None:
                    break
                body += chunk
    raise BadStatus(stream.url, status, headers, body[:BAD_STATUS_BODY_LIMIT])


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed deployment URL: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    authority: str
    path: str

    @property
    def origin(self) -> tuple[str, str, int]:
        """The pool key: connections are shared by URLs with the same origin."""
        return (self.scheme, self.host, self.port)

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.authority}"


@functools.lru_cache(maxsize=4096)  # the invoker opens the same few URLs over and over
def parse_url(url: str) -> Target:
    """Splits a deployment URL; raises ConnectError when it cannot be used.

    >>> parse_url("http://127.0.0.1:9080/invoke/Greeter/greet?x=1").path
    '/invoke/Greeter/greet?x=1'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConnectError(f"'{url}' is not a usable deployment URL: {exc}", url=url) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(
            f"'{url}' is not a usable deployment URL: it must start with http:// or https:// "
            "and name a host",
            url=url,
        )
    default_port = 443 if parts.scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = parts.netloc.rpartition("@")[2]  # never send credentials as the authority
    return Target(parts.scheme, parts.hostname, port or default_port, authority, path)


def request_headers(headers: Headers) -> Headers:
    """Lower-cased names, hop-by-hop headers dropped (the transport owns those)."""
    return [(k.lower(), v) for k, v in headers if k.lower() not in HOP_BY_HOP]


def tls_context(alpn: str) -> ssl.SSLContext:
    """The default client TLS context (system roots), offering only `alpn`."""
    context = ssl.create_default_context()
    context.set_alpn_protocols([alpn])
    return context


async def open_socket(
    target: Target, url: str, ssl_context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP (and TLS for https) to the target; ConnectError with a hint when it fails.

    The caller bounds the time (the connect timeout covers any handshake after this too).
    """
    use_tls = target.scheme == "https"
    try:
        return await asyncio.open_connection(
            target.host,
            target.port,
            ssl=ssl_context if use_tls else None,
            server_hostname=target.host if use_tls else None,
            limit=2**20,
        )
    except ssl.SSLError as exc:
        raise ConnectError(
            f"the TLS handshake with the deployment at {target.base} failed ({exc}); check its "
            "certificate, or register it with an http:// URI if it does not use TLS",
            url=url,
        ) from exc
    except OSError as exc:
        raise ConnectError(
            f"cannot connect to the deployment at {target.base} ({exc.strerror or exc}); check "
            "that it is running and that the registered URI is right",
            url=url,
        ) from exc


# The HTTP/2 transport turns h2's own check of outbound headers off (it costs ~20 % of a stream
# open); the pseudo-headers are ours, and every other pair is checked once by `checked_headers`
# and remembered.
_CHECKED_LIMIT = 4096
# RFC 9110 token characters, lower case only (names are lower-cased before the check).
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")

_checked: set[tuple[str, str]] = set()


def checked_headers(headers: Headers, url: str) -> Headers:
    """`headers` as they go on the wire (lower-cased, hop-by-hop ones dropped), each pair
    checked once per process: a deployment's `additional_headers` are the same on every
    stream, so after the first stream this is one set lookup per header."""
    out = request_headers(headers)
    for pair in out:
        if pair in _checked:
            continue
        problem = _header_problem(*pair)
        if problem is not None:
            raise TransportError(
                f"the header {pair[0]!r} cannot be sent to {url}: {problem}; fix the "
                "deployment's additional_headers (re-register it with valid ones)",
                url=url,
            )
        if len(_checked) >= _CHECKED_LIMIT:
            _checked.clear()  # signed tokens change every few seconds: keep the set small
        _checked.add(pair)
    return out


def _header_problem(name: str, value: str) -> str | None:
    if not name:
        return "an empty header name"
    if name[0] == ":":
        return "names starting with ':' are HTTP/2 pseudo-headers, which the server sets"
    if not _TOKEN.issuperset(name):
        return "a header name may hold only letters, digits and !#$%&'*+-.^_`|~"
    if "\r" in value or "\n" in value or "\0" in value:
        return "a header value may not contain CR, LF or NUL"
    return None
