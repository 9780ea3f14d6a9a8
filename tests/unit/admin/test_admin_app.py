"""The admin ASGI app in process: Restate's shapes, operations through a fake driver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from tests.unit.ingress.ingress_fakes import FakeDriver, make_registry

from perdure.server.admin.app import AdminApp
from perdure.server.config import Config
from perdure.server.invoker.discovery import Discovered, read_answer
from perdure.server.invoker.transport import Response
from perdure.server.partition.effects import Reply, ReplyKind
from perdure.server.partition.events import (
    DeploymentRegistered,
    DeploymentRemoved,
    Operation,
    OperatorRequested,
)
from perdure.server.registry import Registry
from perdure.server.storage.api import (
    DeploymentRow,
    Failure,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    ServiceType,
    Target,
)
from perdure.server.storage.memory import MemoryStorage

INV = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"
DP = "dp_11nGQpCRmau6ypL82KH2TnP"
V4 = "application/vnd.restate.endpointmanifest.v4+json"


def manifest(*services: dict[str, object]) -> dict[str, object]:
    return {
        "protocolMode": "BIDI_STREAM",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 7,
        "services": list(services),
    }


GREETER = {"name": "Greeter", "ty": "SERVICE", "handlers": [{"name": "greet"}]}


class FakeDiscovery:
    def __init__(self, document: dict[str, object]) -> None:
        self.document = document
        self.calls: list[tuple[str, Sequence[tuple[str, str]], bool]] = []

    async def __call__(
        self, uri: str, headers: Sequence[tuple[str, str]], use_http_11: bool
    ) -> Discovered:
        self.calls.append((uri, headers, use_http_11))
        response = Response(200, [("content-type", V4)], json.dumps(self.document).encode())
        return read_answer(uri.rstrip("/"), uri + "/discover", response, use_http_11)


def registry_with_deployment() -> Registry:
    """The ingress fakes' services, plus the deployment row they name."""
    registry = make_registry()
    row = DeploymentRow(
        DP,
        "http://svc:9080",
        "BIDI_STREAM",
        5,
        7,
        1_700_000_000_000,
        manifest=json.dumps(manifest(GREETER)),
    )
    registry.deployments[row.id] = row
    return registry


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver(lambda e: Reply(ReplyKind.DONE, status=202))


@pytest.fixture
def storage() -> MemoryStorage:
    store = MemoryStorage()
    tx = store.begin()
    tx.put_invocation(
        InvocationRow(
            id=INV,
            target=Target("Counter", "add", "alice", ServiceType.VIRTUAL_OBJECT),
            status=InvocationStatus.BACKING_OFF,
            created_at=1_700_000_000_000,
            modified_at=1_700_000_001_500,
            attempt=3,
            retry_count=3,
            journal_length=2,
            last_failure=Failure(500, "database down"),
            deployment_id=DP,
        )
    )
    tx.append_journal(INV, [JournalEntry(0, 0x0400, b""), JournalEntry(1, 0x0411, b"")])
    tx.commit()
    return store


@pytest.fixture
async def client(driver: FakeDriver, storage: MemoryStorage) -> AsyncIterator[httpx.AsyncClient]:
    registry = registry_with_deployment()
    app = AdminApp(
        driver, lambda: registry, storage, Config(), discover=FakeDiscovery(manifest(GREETER))
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://admin"
    ) as c:
        yield c


async def test_health_and_version(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200 and health.content == b""
    version = (await client.get("/version")).json()
    assert version["min_admin_api_version"] == 2 and version["max_admin_api_version"] == 4
    assert version["ingress_endpoint"] == "http://127.0.0.1:8080/"
    assert isinstance(version["version"], str)
    assert (await client.get("/v4/version")).status_code == 200


async def test_errors_have_restates_admin_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/health")
    assert r.status_code == 400
    body = r.json()
    assert set(body) >= {"message", "restate_code", "code", "perdure_code"}
    assert body["restate_code"] is None and "x-restate-error-source" not in r.headers


async def test_services_and_handlers_in_restates_shape(client: httpx.AsyncClient) -> None:
    services = (await client.get("/services")).json()["services"]
    assert [s["name"] for s in services] == ["Counter", "Greeter", "Signup"]
    counter = (await client.get("/services/Counter")).json()
    assert (
        counter["ty"] == "VirtualObject" and counter["revision"] == 1 and counter["public"] is True
    )
    assert counter["idempotency_retention"] == "1d" and counter["inactivity_timeout"] == "1m"
    assert counter["abort_timeout"] == "10m" and counter["workflow_completion_retention"] is None
    assert counter["retry_policy"] == {
        "initial_interval": "500ms",
        "exponentiation_factor": 2.0,
        "max_attempts": 70,
        "max_interval": "1m",
        "on_max_attempts": "Pause",
    }
    signup = (await client.get("/services/Signup")).json()
    assert signup["ty"] == "Workflow" and signup["workflow_completion_retention"] == "1d"
    handlers = (await client.get("/services/Greeter/handlers")).json()["handlers"]
    greet = next(h for h in handlers if h["name"] == "greet")
    assert greet["ty"] is None and greet["input_description"] == "JSON string"
    assert greet["output_description"] == "application/json" and greet["public"] is True
    secret = (await client.get("/services/Greeter/handlers/secret")).json()
    assert secret["public"] is False
    add = (await client.get("/v3/services/Counter/handlers/add")).json()
    assert add["ty"] == "Exclusive"


async def test_unknown_service_and_handler(client: httpx.AsyncClient) -> None:
    r = await client.get("/services/Nope")
    assert r.status_code == 404 and "Counter, Greeter, Signup" in r.json()["message"]
    h = await client.get("/services/Greeter/handlers/nope")
    assert h.status_code == 404 and "greet" in h.json()["message"]


async def test_deployments_list_and_detail(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/deployments")).json()["deployments"]
    assert len(listed) == 1
    d = listed[0]
    assert d["id"] == DP and d["uri"] == "http://svc:9080" and d["protocol_type"] == "BidiStream"
    assert d["created_at"] == "2023-11-14T22:13:20.000Z"
    assert d["services"] == [{"name": "Greeter", "revision": 1}]
    assert (await client.get(f"/deployments/{DP}")).json()["services"][0]["name"] == "Greeter"
    missing = await client.get("/deployments/dp_11nGQpCRmau6ypL82KH2TnQ")
    assert missing.status_code == 404 and missing.json()["perdure_code"] == "PD-2001"


async def test_delete_deployment_needs_force(client: httpx.AsyncClient, driver: FakeDriver) -> None:
    no_force = await client.delete(f"/deployments/{DP}")
    assert no_force.status_code == 501 and "?force=true" in no_force.json()["message"]
    assert driver.events == []
    forced = await client.delete(f"/deployments/{DP}", params={"force": "true"})
    assert forced.status_code == 202
    assert driver.last == DeploymentRemoved(1, DP)


@pytest.mark.parametrize(
    ("path", "operation", "status"),
    [
        ("cancel", Operation.CANCEL, 202),
        ("kill", Operation.KILL, 200),
        ("purge", Operation.PURGE, 200),
        ("pause", Operation.PAUSE, 202),
        ("resume", Operation.RESUME, 200),
    ],
)
async def test_invocation_operations(
    client: httpx.AsyncClient, driver: FakeDriver, path: str, operation: Operation, status: int
) -> None:
    # The partition decides the status (200 done / 202 appended); the app passes it on.
    driver.responder = lambda e: Reply(ReplyKind.DONE, INV, status=status)
    r = await client.patch(f"/invocations/{INV}/{path}")
    assert r.status_code == status
    assert driver.last == OperatorRequested(1, INV, operation)


async def test_restart_as_new_answers_the_new_id(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: Reply(ReplyKind.DONE, "inv_new", status=200)
    r = await client.patch(f"/invocations/{INV}/restart-as-new")
    assert r.status_code == 200 and r.json() == {"new_invocation_id": "inv_new"}
    assert driver.last == OperatorRequested(1, INV, Operation.RESTART_AS_NEW)


async def test_deprecated_delete_invocation(client: httpx.AsyncClient, driver: FakeDriver) -> None:
    r = await client.delete(f"/invocations/{INV}", params={"mode": "kill"})
    assert r.status_code == 202 and driver.last == OperatorRequested(1, INV, Operation.KILL)


async def test_operation_refusals_come_from_the_engine(
    client: httpx.AsyncClient, driver: FakeDriver
) -> None:
    driver.responder = lambda e: Reply(ReplyKind.ERROR, status=404, message="not found")
    r = await client.patch(f"/invocations/{INV}/kill")
    assert r.status_code == 404 and f"'{INV}' does not exist" in r.json()["message"]
    driver.responder = lambda e: Reply(
        ReplyKind.ERROR,
        status=409,
        message=f"invocation {INV} has already completed; nothing to kill",
    )
    c = await client.patch(f"/invocations/{INV}/kill")
    assert c.status_code == 409 and "already completed" in c.json()["message"]


async def test_invocation_views(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/invocations", params={"status": "backing-off"})).json()
    assert [i["id"] for i in listed["invocations"]] == [INV]
    row = listed["invocations"][0]
    assert row["target"] == "Counter/alice/add" and row["status"] == "backing-off"
    assert row["attempts"] == 3 and row["journal_length"] == 2
    assert row["last_failure"] == {"code": 500, "message": "database down", "related_command": None}
    assert row["created_at"] == "2023-11-14T22:13:20.000Z"
    none = (await client.get("/invocations", params={"status": "completed"})).json()
    assert none["invocations"] == []
    detail = (await client.get(f"/invocations/{INV}")).json()
    assert [e["type"] for e in detail["journal"]] == ["input_command", "run_command"]
    missing = await client.get("/invocations/inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbx")
    assert missing.status_code == 404


async def test_register_request_validation(client: httpx.AsyncClient) -> None:
    assert (await client.post("/deployments", content=b"{")).status_code == 400
    assert (await client.post("/deployments", json={})).json()["perdure_code"] == "PD-2002"
    lam = await client.post("/deployments", json={"arn": "arn:aws:lambda:x"})
    assert lam.status_code == 400 and "Lambda" in lam.json()["message"]
    headers = await client.post(
        "/deployments", json={"uri": "http://x", "additional_headers": {"a": 1}}
    )
    assert headers.status_code == 400 and "additional_headers" in headers.json()["message"]
    flag = await client.post("/deployments", json={"uri": "http://x", "force": "yes"})
    assert flag.status_code == 400 and "'force'" in flag.json()["message"]


async def test_register_emits_one_event_with_new_ids_and_revisions(
    driver: FakeDriver, storage: MemoryStorage
) -> None:
    registry = make_registry()  # Greeter at revision 1 on another deployment
    discovery = FakeDiscovery(manifest(GREETER))
    app = AdminApp(
        driver,
        lambda: registry,
        storage,
        Config(),
        discover=discovery,
        clock=lambda: 1_700_000_000.0,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        r = await c.post(
            "/deployments",
            json={
                "uri": "http://svc:9080/",
                "additional_headers": {"x-token": "t"},
                "breaking": True,
            },
        )
    assert r.status_code == 201, r.text
    assert discovery.calls == [("http://svc:9080/", (("x-token", "t"),), False)]
    event = driver.last
    assert isinstance(event, DeploymentRegistered)
    assert event.deployment.id == r.json()["id"] and event.deployment.uri == "http://svc:9080"
    assert event.deployment.additional_headers == (("x-token", "t"),)
    assert event.deployment.created_at == 1_700_000_000_000
    assert [(s.name, s.revision) for s in event.services] == [("Greeter", 2)]
