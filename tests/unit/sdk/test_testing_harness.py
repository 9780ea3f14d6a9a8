"""perdure.testing: an embedded Perdure server and the services under test, from plain pytest.

These run a real server (in memory or on SQLite) and a real endpoint on loopback sockets, in
the test process.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tests.helpers.processes import wait_until
from tests.interop.example_scenarios import example

import perdure
from perdure.client import InvocationFailedError
from perdure.testing import AsyncHarness, Harness

tally = perdure.VirtualObject("Tally")
relay = perdure.Service("Relay")


@tally.handler()
async def bump(ctx: perdure.ObjectContext, by: int) -> int:
    value = (await ctx.get("value", type_hint=int) or 0) + by
    ctx.set("value", value)
    return value


@tally.shared()
async def value(ctx: perdure.ObjectSharedContext) -> int:
    return await ctx.get("value", type_hint=int) or 0


@relay.handler()
async def bump_later(ctx: perdure.Context, key: str) -> str:
    """A typed proxy send with a delay: the bump happens after this handler has returned."""
    handle = tally.proxy(ctx, key).bump.send(10, delay=timedelta(milliseconds=50))
    return await handle.invocation_id()


def test_a_blocking_test_calls_its_services_through_the_harness() -> None:
    with Harness([tally, relay]) as env:
        counter = env.client.object(tally, "a")
        assert counter.bump(2) == 2
        assert counter.bump(3) == 5
        invocation_id = env.client.service(relay).bump_later("a")
        assert invocation_id.startswith("inv_")
        wait_until(lambda: counter.value() == 15, what="the delayed bump")


def test_a_workflow_waits_for_its_promise_under_the_harness() -> None:
    signup = example("signup")
    with Harness(signup.services) as env:
        flow = env.client.workflow(signup.signup, "grace@example.com")
        flow.submit(signup.NewUser("Grace", "grace@example.com"))
        wait_until(lambda: flow.getStatus() == "waiting for click", what="the click wait")
        secret = next(m.link_secret for m in signup.outbox if m.to == "grace@example.com")
        flow.click(secret)
        assert flow.attach() is True


def test_state_outlives_the_harness_with_a_data_dir(tmp_path: Path) -> None:
    with Harness([tally], data_dir=tmp_path) as env:
        assert env.client.object(tally, "kept").bump(4) == 4
    with Harness([tally], data_dir=tmp_path) as env:
        assert env.client.object(tally, "kept").bump(1) == 5


def test_request_response_mode_suspends_and_resumes() -> None:
    suspend = example("suspend")
    with Harness(suspend.services, protocol_mode="request_response") as env:
        nap = env.client.service(suspend.pauser).nap(100)
        assert nap.attempts >= 2


async def test_an_async_test_uses_the_async_harness() -> None:
    dag = example("dag")
    async with AsyncHarness(dag.services) as env:
        result = await env.client.service(dag.dag).run(3)
        assert result.pair_sums == [5, 13, 10]
        assert result.total == 28
        with pytest.raises(InvocationFailedError, match="n must be at least 1"):
            await env.client.service(dag.dag).run(0)


def test_the_harness_needs_services() -> None:
    with pytest.raises(ValueError, match="at least one service"):
        Harness([])
    with pytest.raises(ValueError, match="has no handlers"):
        Harness([perdure.Service("Empty")])


def test_perdure_testing_exports_exactly_the_harness() -> None:
    import perdure.testing

    assert perdure.testing.__all__ == ["AsyncHarness", "Harness", "ServiceEndpoint"]
    for name in perdure.testing.__all__:
        assert getattr(perdure.testing, name) is not None
