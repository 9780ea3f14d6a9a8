"""The only module that binds sockets and runs ASGI apps: uvicorn's protocols in our own loop.

The ingress and the admin API are served by uvicorn's HTTP/1.1 protocol classes (httptools
when installed, h11 otherwise) attached with `loop.create_server` to sockets bound here. There
is no `uvicorn.Server`: it would run a 100 ms ticker task per server and install its own
signal handlers, while the Perdure server wants one event loop, one TaskGroup and its own
SIGINT/SIGTERM handling. What `uvicorn.Server` adds on top of the protocols, we do here in a
few lines: the Date header (refreshed by a timer, not a task) and a graceful shutdown.

    servers = await serve_apps([Site("ingress", ingress_app, ("127.0.0.1", 0), "--ingress-bind")])
    servers.address("ingress")    # ('127.0.0.1', 54321): the port actually bound
    await servers.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TypeVar

import uvicorn
from uvicorn.server import ServerState

from perdure.server.asgi import Receive, Scope, Send, respond_error
from perdure.server.config import Config
from perdure.server.errors import UNAVAILABLE, Api, PerdureError

log = logging.getLogger("perdure.http")

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")

# Open requests get this long to finish when the server stops; then they are cancelled. The
# invocations behind them are not affected: they are durable and carry on after a restart.
GRACEFUL_SHUTDOWN_S = 2.0
# Idle keep-alive connections are closed after this; 75 s outlives common client pools (60 s)
# so the server, not the client, is rarely the one to close a connection about to be reused.
KEEP_ALIVE_S = 75
# A burst of connections larger than this waits in the kernel rather than being refused.
BACKLOG = 2048

HTTP_IMPLEMENTATION = "httptools" if importlib.util.find_spec("httptools") else "h11"


class BindError(OSError):
    """An address could not be bound; the message names it and the setting that changes it."""


@dataclass(frozen=True, slots=True)
class Site:
    """One app to serve: a name for messages, the app, where, and how to change where."""

    name: str
    app: ASGIApp
    bind: tuple[str, int]
    setting: str = ""  # e.g. "--ingress-bind / PERDURE_INGRESS_BIND"
    api: Api = Api.INGRESS  # the shape of the one error http.py itself may answer


def sites(config: Config, ingress: ASGIApp, admin: ASGIApp) -> list[Site]:
    """The two sites of `perdure server`, with the settings that move them."""
    return [
        Site("ingress", ingress, config.ingress_bind, "--ingress-bind / PERDURE_INGRESS_BIND"),
        Site("admin", admin, config.admin_bind, "--admin-bind / PERDURE_ADMIN_BIND", Api.ADMIN),
    ]


def _bind(site: Site) -> socket.socket:
    host, port = site.bind
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(
            f"cannot listen for the {site.name} on {host}:{port}: the host does not resolve "
            f"({exc.strerror}); {_fix(site)}"
        ) from exc
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        # Lets a restarted server bind at once while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        raise BindError(
            f"cannot listen for the {site.name} on {host}:{port} ({why}); another process may "
            f"be using it — {_fix(site)}"
        ) from exc
    sock.setblocking(False)
    return sock


def _fix(site: Site) -> str:
    if site.setting:
        return f"choose another address with {site.setting}"
    return "choose another address"


STOPPING = PerdureError(
    UNAVAILABLE,
    "The server is stopping; what it accepted is stored and carries on when it is back.",
    hint="Retry in a moment. A call that was waiting keeps running: attach to it with GET "
    "/restate/invocation/{id}/attach, or resend it with the same idempotency-key.",
)


def _stoppable(app: ASGIApp, servers: HttpServers, api: Api) -> ASGIApp:
    """Answers 503 to requests still open when the server stops, instead of a bare 500."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            if not servers.closing:
                raise
            # The response may have started already; then there is nothing left to say.
            with contextlib.suppress(Exception):
                await respond_error(send, STOPPING, api)

    return guarded


def _uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        http=HTTP_IMPLEMENTATION,
        interface="asgi3",
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,  # never touch the process's logging setup
        proxy_headers=False,
        server_header=False,
        date_header=True,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_S),
        backlog=BACKLOG,
    )
    config.load()
    return config


class HttpServers:
    """Listening servers in the running loop; `close()` stops them gracefully."""

    def __init__(self) -> None:
        self.sites: list[Site] = []
        self.addresses: list[tuple[str, int]] = []
        self._servers: list[asyncio.Server] = []
        self._states: list[ServerState] = []
        self._configs: list[uvicorn.Config] = []
        self._date_timer: asyncio.TimerHandle | None = None
        self.closing = False

    def address(self, name: str) -> tuple[str, int]:
        """Where site `name` listens, with the real port when port 0 was asked for."""
        for site, address in zip(self.sites, self.addresses, strict=True):
            if site.name == name:
                return address
        raise KeyError(name)

    def url(self, name: str) -> str:
        host, port = self.address(name)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _refresh_date(self) -> None:
        date = [(b"date", formatdate(time.time(), usegmt=True).encode())]
        for state, config in zip(self._states, self._configs, strict=True):
            state.default_headers = date + config.encoded_headers
        loop = asyncio.get_running_loop()
        self._date_timer = loop.call_later(1.0, self._refresh_date)

    async def close(self, grace_s: float = GRACEFUL_SHUTDOWN_S) -> None:
        """Stops accepting, lets open requests finish for `grace_s`, then cancels them."""
        if self.closing:
            return
        self.closing = True
        if self._date_timer is not None:
            self._date_timer.cancel()
        for server in self._servers:
            server.close()
        for state in self._states:
            # Idle keep-alive connections close now; busy ones after their response.
            for connection in list(state.connections):
                connection.shutdown()
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(s.connections or s.tasks for s in self._states):
            await asyncio.sleep(0.02)
        leftover = [task for state in self._states for task in state.tasks]
        for task in leftover:
            task.cancel()
        for task in leftover:
            with contextlib.suppress(BaseException):
                await task
        for state in self._states:
            for connection in list(state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)


async def serve_apps(apps: Sequence[Site | tuple[ASGIApp, tuple[str, int]]]) -> HttpServers:
    """Binds every site first (all or none), then serves them in the running loop.

    Returns once all are listening. A bind failure raises `BindError` and leaves nothing
    open. Plain `(app, (host, port))` pairs are accepted and named app0, app1, ...
    """
    site_list = [
        item if isinstance(item, Site) else Site(f"app{i}", item[0], item[1])
        for i, item in enumerate(apps)
    ]
    sockets: list[socket.socket] = []
    try:
        for site in site_list:
            sockets.append(_bind(site))
    except BindError:
        for sock in sockets:
            sock.close()
        raise
    loop = asyncio.get_running_loop()
    servers = HttpServers()
    try:
        for site, sock in zip(site_list, sockets, strict=True):
            config = _uvicorn_config(_stoppable(site.app, servers, site.api))
            state = ServerState()

            def protocol(
                config: uvicorn.Config = config, state: ServerState = state
            ) -> asyncio.Protocol:
                return config.http_protocol_class(  # type: ignore[call-arg]
                    config=config, server_state=state, app_state={}, _loop=loop
                )

            server = await loop.create_server(protocol, sock=sock, backlog=BACKLOG)
            servers.sites.append(site)
            servers.addresses.append(sock.getsockname()[:2])
            servers._servers.append(server)
            servers._states.append(state)
            servers._configs.append(config)
            log.debug("%s listening on %s", site.name, servers.url(site.name))
    except BaseException:
        await servers.close(0)
        for sock in sockets:
            sock.close()
        raise
    servers._refresh_date()
    return servers


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """Runs the server's main coroutine in one event loop (uvloop when installed)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)


__all__ = [
    "GRACEFUL_SHUTDOWN_S",
    "HTTP_IMPLEMENTATION",
    "BindError",
    "HttpServers",
    "Site",
    "run",
    "serve_apps",
    "sites",
]
