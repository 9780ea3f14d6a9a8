"""Registering real deployments of the official restate-sdk, served by hypercorn on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from tests.unit.admin.admin_engine import admin_client
from tests.unit.admin.sdk_deployments import (
    GREETER_IS_AN_OBJECT,
    GREETER_LOST_A_HANDLER,
    ONLY_COUNTER,
    V1,
    V1_PLUS_NOTHING,
    serving,
    serving_at,
)

pytestmark = pytest.mark.interop


async def register(client: httpx.AsyncClient, uri: str, **options: object) -> httpx.Response:
    return await client.post("/deployments", json={"uri": uri, **options})


async def test_register_over_h2c_stores_the_deployment_and_its_services() -> None:
    async with serving(V1) as uri, admin_client() as (client, engine):
        r = await register(client, uri)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["id"].startswith("dp_1")
        assert r.headers["location"] == f"deployments/{body['id']}"
        assert body["min_protocol_version"] == 5 and body["max_protocol_version"] >= 5
        assert body["sdk_version"].startswith("restate-sdk-python/")
        services = {s["name"]: s for s in body["services"]}
        assert services["Greeter"]["ty"] == "Service"
        assert services["Counter"]["ty"] == "VirtualObject"
        assert services["Signup"]["ty"] == "Workflow"
        assert all(
            s["revision"] == 1 and s["deployment_id"] == body["id"] for s in services.values()
        )
        handlers = {h["name"]: h for h in services["Counter"]["handlers"]}
        assert handlers["add"]["ty"] == "Exclusive" and handlers["get"]["ty"] == "Shared"
        # Stored through the partition; the registry was reloaded.
        assert engine.registry.service_names() == ["Counter", "Greeter", "Signup"]
        deployment = engine.registry.deployment(body["id"])
        assert deployment is not None and deployment.protocol_mode == "BIDI_STREAM"
        assert not deployment.use_http_11 and deployment.uri == uri

        listed = (await client.get("/deployments")).json()["deployments"]
        assert [d["id"] for d in listed] == [body["id"]]
        assert (
            listed[0]["protocol_type"] == "BidiStream" and listed[0]["http_version"] == "HTTP/2.0"
        )
        assert {s["name"]: s["revision"] for s in listed[0]["services"]} == {
            "Greeter": 1,
            "Counter": 1,
            "Signup": 1,
        }
        detail = (await client.get(f"/deployments/{body['id']}")).json()
        assert {s["name"] for s in detail["services"]} == {"Greeter", "Counter", "Signup"}
        greeter = (await client.get("/services/Greeter")).json()
        assert greeter["deployment_id"] == body["id"] and greeter["revision"] == 1


async def test_register_over_http_1_1_is_request_response() -> None:
    async with serving(V1) as uri, admin_client() as (client, engine):
        r = await register(client, uri, use_http_11=True)
        assert r.status_code == 201, r.text
        deployment = engine.registry.deployment(r.json()["id"])
        assert deployment is not None
        assert deployment.use_http_11 and deployment.protocol_mode == "REQUEST_RESPONSE"
        listed = (await client.get("/deployments")).json()["deployments"][0]
        assert listed["http_version"] == "HTTP/1.1" and listed["protocol_type"] == "RequestResponse"


async def test_registering_the_same_uri_again_is_idempotent() -> None:
    async with serving(V1) as uri, admin_client() as (client, engine):
        first = await register(client, uri)
        again = await register(client, uri)
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert len(engine.registry.deployments) == 1
        # Admin API v2 answered a repeated registration (force defaults to true there) by
        # replacing it; with force=false it is a conflict.
        v2 = await client.post("/v2/deployments", json={"uri": uri, "force": False})
        assert v2.status_code == 409


async def test_a_new_version_at_a_new_uri_bumps_the_revisions() -> None:
    async with (
        serving(V1) as uri1,
        serving(V1_PLUS_NOTHING) as uri2,
        admin_client() as (client, engine),
    ):
        first = (await register(client, uri1)).json()
        second = await register(client, uri2)
        assert second.status_code == 201
        body = second.json()
        assert body["id"] != first["id"]
        assert {s["name"]: s["revision"] for s in body["services"]} == {
            "Greeter": 2,
            "Counter": 2,
            "Signup": 2,
        }
        greeter = engine.registry.service("Greeter")
        assert greeter is not None and greeter.deployment_id == body["id"] and greeter.revision == 2
        old = (await client.get(f"/deployments/{first['id']}")).json()
        assert {s["name"]: s["revision"] for s in old["services"]} == {
            "Greeter": 1,
            "Counter": 1,
            "Signup": 1,
        }


async def test_a_changed_service_type_is_refused_without_breaking() -> None:
    async with (
        serving(V1) as uri1,
        serving(GREETER_IS_AN_OBJECT) as uri2,
        admin_client() as (client, engine),
    ):
        await register(client, uri1)
        r = await register(client, uri2)
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["perdure_code"] == "PD-2004" and body["restate_code"] == "META0006"
        assert "'Greeter' is registered as a service" in body["message"]
        assert "declares it a virtual object" in body["message"]
        assert '"breaking": true' in body["message"]
        assert len(engine.registry.deployments) == 1  # nothing stored
        forced = await register(client, uri2, breaking=True)
        assert forced.status_code == 201
        greeter = engine.registry.service("Greeter")
        assert greeter is not None and greeter.revision == 2
        assert greeter.service_type.value == "VIRTUAL_OBJECT"


async def test_a_removed_handler_is_refused_without_force() -> None:
    async with (
        serving(V1) as uri1,
        serving(GREETER_LOST_A_HANDLER) as uri2,
        admin_client() as (client, engine),
    ):
        await register(client, uri1)
        r = await register(client, uri2)
        assert r.status_code == 409
        body = r.json()
        assert body["perdure_code"] == "PD-2005"
        assert "'Greeter'" in body["message"] and "handler hello" in body["message"]
        assert (await register(client, uri2, force=True)).status_code == 201
        greeter = engine.registry.service("Greeter")
        assert greeter is not None and set(greeter.handlers) == {"greet"}


async def test_dry_run_discovers_and_checks_but_stores_nothing() -> None:
    async with (
        serving(V1) as uri1,
        serving(GREETER_IS_AN_OBJECT) as uri2,
        admin_client() as (client, engine),
    ):
        dry = await register(client, uri1, dry_run=True)
        assert dry.status_code == 201 and dry.json()["dry_run"] is True
        assert {s["name"] for s in dry.json()["services"]} == {"Greeter", "Counter", "Signup"}
        assert engine.registry.deployments == {}
        await register(client, uri1)
        refused = await register(client, uri2, dry_run=True)
        assert refused.status_code == 409  # a dry run reports what a real one would refuse
        assert len(engine.registry.deployments) == 1


async def test_a_different_manifest_at_a_registered_uri_is_refused_unless_forced() -> None:
    async with admin_client() as (client, engine):
        async with serving(V1) as uri:
            first = (await register(client, uri)).json()
        # The same address now serves a different manifest (a redeploy in place).
        port = int(uri.rsplit(":", 1)[1])
        async with serving_at(port, ONLY_COUNTER) as same_uri:
            assert same_uri == uri
            drifted = await register(client, same_uri)
            assert drifted.status_code == 409, drifted.text
            body = drifted.json()
            assert body["perdure_code"] == "PD-2006"
            assert "services removed: Greeter, Signup" in body["message"]
            forced = await register(client, same_uri, force=True)
            assert forced.status_code == 200, forced.text
            assert forced.json()["id"] == first["id"]
            assert engine.registry.service_names() == ["Counter"]
            counter = engine.registry.service("Counter")
            assert counter is not None and counter.revision == 2


async def test_unreachable_and_wrong_endpoints_say_what_to_do() -> None:
    async with admin_client() as (client, _):
        closed = await register(client, "http://127.0.0.1:1")
        assert closed.status_code == 502
        assert closed.json()["restate_code"] == "META0003"
        assert "127.0.0.1:1" in closed.json()["message"]
        bad = await register(client, "not a uri")
        assert bad.status_code == 400 and bad.json()["perdure_code"] == "PD-3006"
        tls = await register(client, "https://example.com")
        assert tls.status_code == 400 and "https://" in tls.json()["message"]


async def test_an_http_1_1_only_server_over_h2c_suggests_use_http_11() -> None:
    """uvicorn speaks HTTP/1.1 only: discovery over h2c breaks, and the hint says what to do."""
    from perdure.server.asgi import Receive, Scope, Send, respond
    from perdure.server.http import Site, serve_apps

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 404)

    servers = await serve_apps([Site("h1", app, ("127.0.0.1", 0))])
    try:
        async with admin_client() as (client, _):
            r = await register(client, servers.url("h1"))
            assert r.status_code in (502,), r.text
            assert "use_http_11" in r.json()["message"]
            over_h1 = await register(client, servers.url("h1"), use_http_11=True)
            assert over_h1.status_code == 502
            assert "answered 404" in over_h1.json()["message"]
            assert "/discover" in over_h1.json()["message"]
    finally:
        await servers.close()
