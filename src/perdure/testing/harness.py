"""Test your services with plain pytest: a Perdure server and your services, in the test process.

:class:`Harness` (blocking tests) and :class:`AsyncHarness` (``async def`` tests) start an
embedded Perdure server (storage in memory by default, or in a SQLite directory), serve your
service definitions on a real local port, register them, and hand you a client. Nothing to
install, no Docker: what runs is the same server ``perdure server`` runs, over real sockets.
:class:`ServiceEndpoint` serves the services alone, for a server you run yourself (a
``restate-server``, say).

Example::

    from perdure.testing import Harness
    from myapp import Counter

    def test_counter_adds() -> None:
        with Harness([Counter]) as env:
            assert env.client.object(Counter, "a").add(2) == 2
            assert env.client.object(Counter, "a").add(3) == 5
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from perdure.client import AsyncClient, Client
from perdure.sdk.endpoint import ProtocolModeName
from perdure.sdk.service import Definition

__all__ = ["AsyncHarness", "Harness", "ServiceEndpoint"]

T = TypeVar("T")

logger = logging.getLogger("perdure.testing")

# Tests want failures retried fast, not Restate's production pace (500 ms, doubling to 1 min).
RETRY_INITIAL_INTERVAL = "50ms"
RETRY_MAX_INTERVAL = "500ms"
# How long to wait for the services' port to accept connections before giving up.
START_TIMEOUT_SECONDS = 20.0
# At the end of a test, attempts still running get this long before their streams are cut:
# the server keeps their journals and retries them, so a test need not wait for them.
SHUTDOWN_GRACE_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_listening(port: int, task: asyncio.Task[None]) -> None:
    """Return once ``port`` accepts connections; raise if ``task`` (the server) ended first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_SECONDS
    while loop.time() < deadline:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError(f"the services' endpoint on port {port} stopped at start")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"the services' endpoint did not listen on port {port}")


class _Endpoint:
    """The services served by hypercorn in the running loop, on a free loopback port."""

    def __init__(
        self,
        services: Sequence[Definition],
        protocol_mode: ProtocolModeName | None,
        identity_keys: Sequence[str],
        port: int | None,
        shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    ) -> None:
        self.services = services
        self.shutdown_grace = shutdown_grace
        self.protocol_mode = protocol_mode
        self.identity_keys = identity_keys
        self.port = port or _free_port()
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from perdure.sdk.serving import serve_async

        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            serve_async(
                list(self.services),
                port=self.port,
                protocol_mode=self.protocol_mode,
                identity_keys=self.identity_keys,
                shutdown_trigger=self._stop.wait,
                graceful_shutdown_seconds=self.shutdown_grace,
            ),
            name=f"perdure test endpoint :{self.port}",
        )
        await _wait_listening(self.port, self._task)

    async def stop(self) -> None:
        if self._stop is None or self._task is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        try:
            await task
        except Exception as exc:
            # The endpoint ends its own streams before hypercorn's deadline (decision 0006);
            # should hypercorn still fail while stopping, the endpoint is down all the same.
            logger.debug("the endpoint on port %d stopped with %r", self.port, exc)


class _Stack:
    """An embedded Perdure server plus the endpoint, registered; started and stopped as one."""

    def __init__(
        self,
        services: Iterable[Definition],
        *,
        data_dir: str | Path | None,
        protocol_mode: ProtocolModeName | None,
    ) -> None:
        self.services = list(services)
        if not self.services:
            raise ValueError("the harness needs at least one service definition to serve")
        for definition in self.services:
            definition.check()
        self.data_dir = data_dir
        self.endpoint = _Endpoint(self.services, protocol_mode, (), None)
        self.use_http_11 = protocol_mode == "request_response"
        self.server: Any = None
        self._run: asyncio.Task[None] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ingress_url = ""
        self.admin_url = ""

    async def start(self) -> None:
        from perdure.server.app import PerdureServer
        from perdure.server.config import load
        from perdure.server.storage import open_storage

        await self.endpoint.start()
        try:
            if self.data_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="perdure-test-")
                data_dir, storage = Path(self._tmp.name), open_storage("memory:")
            else:
                data_dir, storage = Path(self.data_dir), None
            config = load(
                {
                    "ingress_bind": "127.0.0.1:0",
                    "admin_bind": "127.0.0.1:0",
                    "data_dir": str(data_dir),
                    "retry_initial_interval_ms": RETRY_INITIAL_INTERVAL,
                    "retry_max_interval_ms": RETRY_MAX_INTERVAL,
                    "log_level": "warning",
                },
                env={},
            )
            self.server = PerdureServer(config, storage=storage)
            ready = asyncio.Event()
            self._run = asyncio.create_task(self.server.run(lambda _bound: ready.set()))
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({self._run, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.is_set():
                waiter.cancel()
                await self._run  # raises why it could not start
                raise RuntimeError("the embedded Perdure server stopped while starting")
            bound = self.server.bound
            self.ingress_url = "http://{}:{}".format(*bound.ingress)
            self.admin_url = "http://{}:{}".format(*bound.admin)
            async with AsyncClient(self.ingress_url, admin_url=self.admin_url) as client:
                await client.register_deployment(
                    self.endpoint.uri, force=True, use_http_11=self.use_http_11
                )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        try:
            if self.server is not None and self._run is not None:
                self.server.stop()
                await self._run
        finally:
            self.server = None
            self._run = None
            await self.endpoint.stop()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None


class AsyncHarness:
    """An embedded Perdure server with ``services`` registered, for ``async def`` tests.

    ``data_dir`` keeps the server's SQLite files there (default: in memory, gone at exit).
    ``protocol_mode="request_response"`` serves the services over HTTP/1.1 in
    REQUEST_RESPONSE mode, where every await the server cannot answer at once suspends.

    Example::

        async def test_signup() -> None:
            async with AsyncHarness([signup]) as env:
                flow = env.client.workflow(signup, "ada@example.com")
                await flow.submit(NewUser("Ada", "ada@example.com"))
                assert await flow.getStatus() == "waiting for click"
    """

    def __init__(
        self,
        services: Iterable[Definition],
        *,
        data_dir: str | Path | None = None,
        protocol_mode: ProtocolModeName | None = None,
    ) -> None:
        self._stack = _Stack(services, data_dir=data_dir, protocol_mode=protocol_mode)
        self._client: AsyncClient | None = None

    @property
    def client(self) -> AsyncClient:
        """An :class:`~perdure.client.AsyncClient` for the server's ingress and admin API."""
        if self._client is None:
            raise RuntimeError("use the harness in `async with` first")
        return self._client

    @property
    def ingress_url(self) -> str:
        return self._stack.ingress_url

    @property
    def admin_url(self) -> str:
        return self._stack.admin_url

    async def __aenter__(self) -> AsyncHarness:
        await self._stack.start()
        self._client = AsyncClient(self.ingress_url, admin_url=self.admin_url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._client is not None:
                await self._client.aclose()
        finally:
            self._client = None
            await self._stack.stop()


class _LoopThread:
    """An event loop in a daemon thread, for blocking code that needs servers running."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_rest())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class _Threaded:
    """Runs an async start/stop pair in a loop thread, for ``with`` blocks."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: _LoopThread | None = None

    def _start(self, start: Callable[[], Awaitable[None]]) -> None:
        self._thread = _LoopThread(self._name)
        try:
            self._thread.run(_awaited(start))
        except BaseException:
            self._thread.close()
            self._thread = None
            raise

    def _stop(self, stop: Callable[[], Awaitable[None]]) -> None:
        if self._thread is None:
            return  # never started, or stopped already
        try:
            self._thread.run(_awaited(stop))
        finally:
            self._thread.close()
            self._thread = None


async def _awaited(make: Callable[[], Awaitable[None]]) -> None:
    await make()


class Harness(_Threaded):
    """An embedded Perdure server with ``services`` registered, for blocking tests.

    The server and the services run on an event loop in a background thread; the test talks
    to them with a blocking :class:`~perdure.client.Client`. Options as for
    :class:`AsyncHarness`.

    Example::

        def test_counter() -> None:
            with Harness([counter]) as env:
                assert env.client.object(counter, "a").add(2) == 2
    """

    def __init__(
        self,
        services: Iterable[Definition],
        *,
        data_dir: str | Path | None = None,
        protocol_mode: ProtocolModeName | None = None,
    ) -> None:
        super().__init__("perdure test harness")
        self._stack = _Stack(services, data_dir=data_dir, protocol_mode=protocol_mode)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """A :class:`~perdure.client.Client` for the server's ingress and admin API."""
        if self._client is None:
            raise RuntimeError("use the harness in a `with` block first")
        return self._client

    @property
    def ingress_url(self) -> str:
        return self._stack.ingress_url

    @property
    def admin_url(self) -> str:
        return self._stack.admin_url

    def __enter__(self) -> Harness:
        self._start(self._stack.start)
        self._client = Client(self.ingress_url, admin_url=self.admin_url)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._client is not None:
                self._client.close()
        finally:
            self._client = None
            self._stop(self._stack.stop)


class ServiceEndpoint(_Threaded):
    """``services`` served on a free loopback port by a background thread, without a server.

    For tests against a server you run yourself: register :attr:`uri` with it. Leaving the
    ``with`` block stops it (attempts still running get ``shutdown_grace`` seconds); a new
    endpoint on the same ``port`` takes over, as a redeployed service would.

    Example::

        with ServiceEndpoint([greeter], protocol_mode="request_response") as endpoint:
            restate.register(endpoint.uri, use_http_11=True)
    """

    def __init__(
        self,
        services: Iterable[Definition],
        *,
        protocol_mode: ProtocolModeName | None = None,
        identity_keys: Sequence[str] = (),
        port: int | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    ) -> None:
        super().__init__("perdure test endpoint")
        self._endpoint = _Endpoint(
            list(services), protocol_mode, identity_keys, port, shutdown_grace
        )

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:PORT``, the address to register."""
        return self._endpoint.uri

    @property
    def port(self) -> int:
        return self._endpoint.port

    def __enter__(self) -> ServiceEndpoint:
        self._start(self._endpoint.start)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop(self._endpoint.stop)
