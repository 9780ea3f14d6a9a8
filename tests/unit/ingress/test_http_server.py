"""http.py on real sockets: port 0, both apps in this loop, clear bind errors, clean close."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from perdure.server.asgi import Receive, Scope, Send, respond_json
from perdure.server.config import Config
from perdure.server.http import BindError, Site, serve_apps, sites


def named(name: str):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, {"app": name, "path": scope["path"]})

    return app


async def test_port_zero_binds_ephemeral_ports_and_reports_them() -> None:
    config = Config(ingress_bind=("127.0.0.1", 0), admin_bind=("127.0.0.1", 0))
    servers = await serve_apps(sites(config, named("ingress"), named("admin")))
    try:
        ingress, admin = servers.address("ingress"), servers.address("admin")
        assert ingress[0] == "127.0.0.1" and ingress[1] > 0 and admin[1] not in (0, ingress[1])
        async with httpx.AsyncClient() as client:
            r1 = await client.get(f"{servers.url('ingress')}/x")
            r2 = await client.get(f"{servers.url('admin')}/y")
        assert r1.json() == {"app": "ingress", "path": "/x"}
        assert r2.json() == {"app": "admin", "path": "/y"}
        assert "date" in r1.headers and "server" not in r1.headers
    finally:
        await servers.close()


async def test_plain_pairs_are_accepted() -> None:
    servers = await serve_apps([(named("a"), ("127.0.0.1", 0))])
    try:
        assert servers.addresses[0][1] > 0
    finally:
        await servers.close()


async def test_a_taken_port_is_a_bind_error_naming_the_address_and_the_setting() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        config = Config(ingress_bind=("127.0.0.1", 0), admin_bind=("127.0.0.1", port))
        with pytest.raises(BindError) as caught:
            await serve_apps(sites(config, named("i"), named("a")))
        message = str(caught.value)
        assert f"127.0.0.1:{port}" in message and "--admin-bind / PERDURE_ADMIN_BIND" in message
    finally:
        blocker.close()


async def test_an_unresolvable_host_is_a_bind_error() -> None:
    with pytest.raises(BindError, match="does not resolve"):
        await serve_apps(
            [Site("ingress", named("i"), ("no-such-host.invalid", 0), "--ingress-bind")]
        )


async def test_close_stops_listening_and_ends_waiting_requests() -> None:
    started = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.sleep(3600)

    servers = await serve_apps([Site("slow", slow, ("127.0.0.1", 0))])
    url = servers.url("slow")
    async with httpx.AsyncClient() as client:
        pending = asyncio.ensure_future(client.get(url, timeout=10))
        await started.wait()
        await servers.close(grace_s=0.1)
        answer = await pending
        assert answer.status_code == 503
        assert "stopping" in answer.json()["message"]
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


async def test_a_caller_that_hangs_up_over_a_real_socket_only_drops_the_wait() -> None:
    from tests.unit.ingress.ingress_fakes import FakeDriver, FixedIds, make_registry

    from perdure.server.ingress.app import IngressApp
    from perdure.server.partition.events import InvocationRequested

    driver = FakeDriver()
    driver.hold = asyncio.Event()
    registry = make_registry()
    app = IngressApp(driver, lambda: registry, FixedIds(), Config())
    servers = await serve_apps([Site("ingress", app, ("127.0.0.1", 0))])
    try:
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(f"{servers.url('ingress')}/Greeter/greet", json="x", timeout=0.3)
        for _ in range(200):
            if driver.cancelled:
                break
            await asyncio.sleep(0.01)
        assert driver.cancelled == 1
        assert isinstance(driver.last, InvocationRequested)  # submitted, and left running
    finally:
        await servers.close()
