"""The official Python SDK's /discover answer parses with our models and writes back the same."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import restate
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate.retry_policy import InvocationRetryPolicy

from perdure.protocol.discovery import (
    DISCOVER_PATH,
    HandlerType,
    ManifestVersion,
    OnMaxAttempts,
    ProtocolMode,
    ServiceType,
    accept_header,
    parse_manifest,
    version_from_content_type,
)

pytestmark = pytest.mark.interop

greeter = restate.Service(
    "Greeter",
    description="Greets people.",
    metadata={"team": "growth"},
    inactivity_timeout=timedelta(seconds=30),
    ingress_private=False,
)


@greeter.handler(metadata={"kind": "hello"}, idempotency_retention=timedelta(hours=1))
async def greet(ctx: Context, name: str) -> str:
    """Says hello."""
    return f"Hello {name}!"


counter = restate.VirtualObject("Counter", enable_lazy_state=True)


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    return delta


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return 0


@counter.handler()
async def reset(ctx: ObjectContext) -> None:
    return None


signup = restate.Workflow("Signup", abort_timeout=timedelta(minutes=5))


@signup.main(workflow_retention=timedelta(days=2), journal_retention=timedelta(days=1))
async def run(ctx: WorkflowContext, email: str) -> bool:
    return True


@signup.handler()
async def status(ctx: WorkflowSharedContext) -> str:
    return "pending"


retrying = restate.Service(
    "Retrying",
    invocation_retry_policy=InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        exponentiation_factor=1.5,
        max_interval=timedelta(seconds=10),
        max_attempts=5,
        on_max_attempts="kill",
    ),
)


@retrying.handler()
async def attempt(ctx: Context) -> None:
    return None


async def discover(services: list[Any], accept: str) -> httpx.Response:
    app = restate.app(services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sdk.local") as client:
        return await client.get(DISCOVER_PATH, headers={"accept": accept})


async def test_the_official_sdk_manifest_parses_and_writes_back_the_same() -> None:
    response = await discover([greeter, counter, signup, retrying], accept_header())
    assert response.status_code == 200, response.text
    version = version_from_content_type(response.headers["content-type"])
    assert version is ManifestVersion.V4

    endpoint = parse_manifest(response.content, reject_newer_than=version)
    assert endpoint.to_dict(version) == response.json()

    # httpx's ASGI transport speaks HTTP/1.1, so the SDK offers request/response mode.
    assert endpoint.protocol_mode is ProtocolMode.REQUEST_RESPONSE
    assert (endpoint.min_protocol_version, endpoint.max_protocol_version) == (5, 7)
    assert [s.name for s in endpoint.services] == ["Greeter", "Counter", "Signup", "Retrying"]

    greeter_service = endpoint.services[0]
    assert greeter_service.ty is ServiceType.SERVICE
    assert greeter_service.documentation == "Greets people."
    assert greeter_service.metadata == {"team": "growth"}
    assert greeter_service.options.inactivity_timeout_ms == 30_000
    assert greeter_service.options.ingress_private is False
    greet_handler = greeter_service.handlers[0]
    assert greet_handler.ty is None and greet_handler.documentation == "Says hello."
    assert greet_handler.options.idempotency_retention_ms == 3_600_000
    assert greet_handler.input is not None and greet_handler.input.json_schema == {"type": "string"}

    counter_service = endpoint.services[1]
    assert counter_service.options.enable_lazy_state is True
    assert [h.ty for h in counter_service.handlers] == [
        HandlerType.EXCLUSIVE,
        HandlerType.SHARED,
        HandlerType.EXCLUSIVE,
    ]
    reset_handler = counter_service.handlers[2]
    assert reset_handler.output is not None and reset_handler.output.content_type is None

    signup_service = endpoint.services[2]
    run_handler, status_handler = signup_service.handlers
    assert run_handler.ty is HandlerType.WORKFLOW and status_handler.ty is HandlerType.SHARED
    assert run_handler.options.workflow_completion_retention_ms == 2 * 86_400_000
    assert run_handler.options.journal_retention_ms == 86_400_000
    assert signup_service.options.abort_timeout_ms == 300_000

    policy = endpoint.services[3].options.retry_policy
    assert policy.initial_interval_ms == 100 and policy.max_interval_ms == 10_000
    assert policy.max_attempts == 5 and policy.exponentiation_factor == 1.5
    assert policy.on_max_attempts is OnMaxAttempts.KILL


async def test_the_official_sdk_answers_an_older_version_we_can_read_strictly() -> None:
    response = await discover([greeter, counter, signup], ManifestVersion.V3.content_type)
    assert response.status_code == 200, response.text
    version = version_from_content_type(response.headers["content-type"])
    assert version is ManifestVersion.V3
    endpoint = parse_manifest(response.content, reject_newer_than=version)
    assert endpoint.to_dict(version) == response.json()


async def test_the_official_sdk_refuses_a_v1_only_accept_header() -> None:
    # Worth knowing for the server: restate-sdk-python answers v2..v4 only, so Perdure's
    # discovery must offer more than v1 (accept_header() offers v1..v4, as Restate does).
    response = await discover([greeter], ManifestVersion.V1.content_type)
    assert response.status_code == 415
