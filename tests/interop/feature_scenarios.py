"""SDK features beyond the examples (services/sdk_features_app.py), on either engine.

Like example_scenarios.py: each scenario takes a client of a server on which the features app
is registered (served in REQUEST_RESPONSE mode, so every await the server cannot answer at
once suspends, and every resumption replays the journal), and checks what a user would see.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from tests.helpers.processes import wait_until
from tests.interop.services import sdk_features_app as app

from perdure.client import Client, InvocationFailedError

WAIT_SECONDS = 30.0


def _tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run_steps_retry_then_give_up(client: Client) -> None:
    tag = _tag("retry")
    answer = client.service(app.features).runRetries(tag)
    assert answer == "ok after 3; gave up: ConnectionError: try 2 failed"
    assert app.events_of(tag) == ["try", "try", "try"], "a journaled step never runs again"
    assert app.events_of(f"{tag}-hopeless") == ["try", "try"]


def handler_retries_on_retryable_error(client: Client) -> None:
    tag = _tag("retryable")
    assert client.service(app.features).retryableTwice(tag) == 3
    assert app.events_of(tag) == ["attempt 1", "attempt 2", "attempt 3"]


def state_keys_clear_and_clear_all(client: Client) -> None:
    keeper = client.object(app.keeper, _tag("keeper"))
    assert keeper.keep(["a", "b", "c"]) == ["b", "c"]
    assert keeper.forget() == []


def cancelling_a_caller_cancels_its_callee(client: Client) -> None:
    tag = _tag("cancel")
    receipt = client.service(app.features).callAndWait.send(tag)
    wait_until(lambda: tag in app.awakeables, timeout=WAIT_SECONDS, what="the callee to wait")
    client.cancel_invocation(receipt.invocation_id)
    with pytest.raises(InvocationFailedError) as failed:
        client.attach(receipt.invocation_id)
    assert failed.value.code == 409
    wait_until(
        lambda: sorted(app.events_of(tag)) == ["caller cancelled", "waiter cancelled"],
        timeout=WAIT_SECONDS,
        what="both sides to see the cancellation",
    )


def send_then_attach_to_the_callee(client: Client) -> None:
    tag = _tag("attach")
    receipt = client.service(app.features).sendThenAttach.send(tag)
    wait_until(lambda: tag in app.awakeables, timeout=WAIT_SECONDS, what="the callee to wait")
    client.resolve_awakeable(app.awakeables[tag], "resolved from outside")
    assert client.attach(receipt.invocation_id) == "resolved from outside"
    assert app.events_of(tag)[0].startswith("inv_")


def generic_calls_carry_raw_bytes(client: Client) -> None:
    assert client.service(app.features).rawCall("Ada") == b"<Ada>!"


def a_signal_reaches_another_invocation(client: Client) -> None:
    tag = _tag("signal")
    receipt = client.service(app.features).awaitSignal.send(tag)
    target = wait_until(
        lambda: app.events_of(tag) and app.events_of(tag)[0],
        timeout=WAIT_SECONDS,
        what="the signal's target to start",
    )
    assert target == receipt.invocation_id
    client.service(app.features).sendSignal(target)
    assert client.attach(receipt.invocation_id) == "signalled"


def random_and_uuid_are_the_same_on_replay(client: Client) -> None:
    tag = _tag("draws")
    draws = client.service(app.features).sameDraws(tag)
    recorded = app.events_of(tag)
    assert recorded == [" ".join(draws), "after sleep"], "drawn in the first attempt"


def typed_values_survive_replay(client: Client) -> None:
    assert client.service(app.features).typedReplay("box") == "box: 3.5"


Scenario = Callable[[Client], None]

FEATURE_SCENARIOS: dict[str, Scenario] = {
    "run-retries": run_steps_retry_then_give_up,
    "retryable-error": handler_retries_on_retryable_error,
    "state-keys": state_keys_clear_and_clear_all,
    "cancel-cascade": cancelling_a_caller_cancels_its_callee,
    "attach": send_then_attach_to_the_callee,
    "raw-bytes": generic_calls_carry_raw_bytes,
    "signal": a_signal_reaches_another_invocation,
    "typed-replay": typed_values_survive_replay,
    "determinism": random_and_uuid_are_the_same_on_replay,
}
