"""The example apps of `examples/`, driven through a real server's ingress and admin API.

Each scenario takes a :class:`perdure.client.Client` bound to a server (Restate or Perdure)
on which the examples are registered, exercises one example the way a user would, and checks
what a user would see. The same functions run on both engines, so the results must match.

The services run in the test process (`perdure.testing.ServiceEndpoint`), so a scenario can
also read the side effects an example records (e-mails sent, reminders, the saga's ledger).
Keys are unique per call, so both engines can share one process.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from tests.helpers.processes import ROOT, wait_until

from perdure.client import Client, ClientError, InvocationFailedError
from perdure.testing import ServiceEndpoint

EXAMPLES = ROOT / "examples"
#: Examples served in the default mode (BIDI_STREAM over HTTP/2).
BIDI_EXAMPLES = ("counter", "signup", "dag", "approval", "saga")
#: Examples served in REQUEST_RESPONSE mode over HTTP/1.1.
REQUEST_RESPONSE_EXAMPLES = ("suspend",)
WAIT_SECONDS = 30.0

_load_lock = threading.Lock()


def example(name: str) -> ModuleType:
    """The module of ``examples/<name>.py``, imported once per process."""
    module_name = f"perdure_example_{name}"
    with _load_lock:
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    return module


def services_of(names: tuple[str, ...]) -> list[Any]:
    return [definition for name in names for definition in example(name).services]


class RestartableEndpoint:
    """A :class:`ServiceEndpoint` that can be stopped and started again on the same port,
    as a redeployed service would be."""

    def __init__(self, names: tuple[str, ...], **options: Any) -> None:
        self._services = services_of(names)
        self._options = options
        self._current = ServiceEndpoint(self._services, **options).__enter__()
        self.port = self._current.port

    @property
    def uri(self) -> str:
        return self._current.uri

    def restart(self) -> None:
        self._current.__exit__(None, None, None)
        self._current = ServiceEndpoint(self._services, port=self.port, **self._options)
        self._current.__enter__()

    def close(self) -> None:
        self._current.__exit__(None, None, None)


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- the scenarios ------------------------------------------------------------------------


def counter_adds_one_at_a_time(client: Client) -> None:
    counter = example("counter").counter
    key = _key("clicks")
    target = client.object(counter, key)
    assert target.add(5) == 5
    assert target.add(-2) == 3
    # Twenty sends at once: exclusive handlers run one at a time per key, so none is lost.
    for _ in range(20):
        target.add.send(1)
    wait_until(lambda: target.get() == 23, timeout=WAIT_SECONDS, what="the 20 adds")
    # The same idempotency key twice: one add, the same answer both times.
    assert target.add(10, idempotency_key="once") == 33
    assert target.add(10, idempotency_key="once") == 33
    assert target.get() == 33
    # A delayed send through the typed proxy; its result is there to attach to.
    scheduled = target.addLater(example("counter").Later(delta=7, delay_ms=100))
    assert client.attach(scheduled) == 40
    assert target.get() == 40
    target.reset()
    assert target.get() == 0


def counter_refuses_bad_input_with_400(client: Client) -> None:
    counter = example("counter").counter
    with pytest.raises(InvocationFailedError) as failed:
        client.call(counter.name, "add", "not a number", key=_key("bad"))
    assert failed.value.code == 400
    assert "cannot read the input" in failed.value.message


def signup_waits_for_the_click(client: Client) -> None:
    signup = example("signup")
    email = f"{_key('ada')}@example.com"
    flow = client.workflow(signup.signup, email)
    receipt = flow.submit(signup.NewUser("Ada", email))
    assert receipt.is_new
    # A second submit for the same key starts nothing new.
    assert not flow.submit(signup.NewUser("Ada", email)).is_new
    wait_until(
        lambda: flow.getStatus() == "waiting for click",
        timeout=WAIT_SECONDS,
        what="the sign-up to wait for the click",
    )
    sent = [mail for mail in signup.outbox if mail.to == email]
    assert len(sent) == 1, "the e-mail is a durable step: sent exactly once"
    flow.click(sent[0].link_secret)
    assert flow.attach() is True
    assert flow.getStatus() == "verified"
    # The promise is resolved once; a second click is refused.
    with pytest.raises(ClientError):
        flow.click("again")
    assert flow.attach() is True


def signup_survives_an_endpoint_restart(client: Client, restart: Callable[[], None]) -> None:
    """The endpoint goes away while the workflow waits; the new one replays, re-runs nothing."""
    signup = example("signup")
    email = f"{_key('restart')}@example.com"
    flow = client.workflow(signup.signup, email)
    flow.submit(signup.NewUser("Bo", email))
    wait_until(
        lambda: flow.getStatus() == "waiting for click",
        timeout=WAIT_SECONDS,
        what="the sign-up to wait for the click",
    )
    restart()
    flow.click(next(mail.link_secret for mail in signup.outbox if mail.to == email))
    assert flow.attach() is True
    # Replayed from the journal: the same secret (ctx.uuid), and no second e-mail.
    assert [mail.to for mail in signup.outbox].count(email) == 1
    assert signup.users[email].startswith("user-")


def dag_gathers_each_wave(client: Client) -> None:
    dag = example("dag")
    result = client.service(dag.dag).run(4)
    assert result == dag.DagResult(squares=[1, 4, 9, 16], pair_sums=[5, 13, 25, 17], total=60)
    with pytest.raises(InvocationFailedError) as failed:
        client.service(dag.dag).run(0)
    assert failed.value.code == 400


def approval_escalates_until_decided(client: Client) -> None:
    approval = example("approval")
    key = _key("po")
    flow = client.workflow(approval.approval, key)
    flow.submit(approval.ApprovalRequest("New laptop", remind_after_ms=100))
    wait_until(lambda: len(flow.reminded()) >= 2, timeout=WAIT_SECONDS, what="two reminders")
    flow.decide(approval.Decision(approved=True, by="manager"))
    outcome = flow.attach()
    assert outcome.approved is True
    assert outcome.by == "manager"
    assert len(outcome.reminded) >= 2
    assert outcome.reminded[:2] == approval.ESCALATION[:2]
    sent = [person for k, person in approval.reminders_sent if k == key]
    assert sent == outcome.reminded, "each reminder is a durable step: sent exactly once"
    assert flow.status() == "approved"


def saga_compensates_when_cancelled(client: Client) -> None:
    saga = example("saga")
    trip_id = _key("trip")
    receipt = client.service(saga.trip).book.send(
        saga.TripRequest(trip_id, hold_payment_ms=600_000)
    )
    wait_until(
        lambda: ("book hotel", trip_id) in saga.ledger,
        timeout=WAIT_SECONDS,
        what="the hotel booking",
    )
    client.cancel_invocation(receipt.invocation_id)
    with pytest.raises(InvocationFailedError) as failed:
        client.attach(receipt.invocation_id)
    assert failed.value.code == 409
    done = [action for action, tid in saga.ledger if tid == trip_id]
    assert done == ["book flight", "book hotel", "cancel hotel", "cancel flight"], done


def saga_compensates_a_failed_step(client: Client) -> None:
    saga = example("saga")
    trip_id = _key("trip")
    with pytest.raises(InvocationFailedError) as failed:
        client.service(saga.trip).book(saga.TripRequest(trip_id, car_unavailable=True))
    assert failed.value.code == 409
    assert failed.value.message == "no car available"
    done = [action for action, tid in saga.ledger if tid == trip_id]
    assert done == ["book flight", "book hotel", "cancel hotel", "cancel flight"], done


def request_response_suspends_on_a_timer(client: Client) -> None:
    suspend = example("suspend")
    nap = client.service(suspend.pauser).nap(300)
    assert nap.slept_ms >= 300
    # The sleep cannot be answered within the first request: at least one resumption.
    assert nap.attempts >= 2


def request_response_suspends_on_an_awakeable(client: Client) -> None:
    suspend = example("suspend")
    seen = len(suspend.awakeables)
    receipt = client.service(suspend.pauser).waitForApproval.send()
    awakeable_id = wait_until(
        lambda: len(suspend.awakeables) > seen and suspend.awakeables[seen],
        timeout=WAIT_SECONDS,
        what="the awakeable id",
    )
    client.resolve_awakeable(awakeable_id, "approved")
    answer = client.attach(receipt.invocation_id)
    assert answer.startswith("approved after ")
    assert int(answer.split()[2]) >= 2


Scenario = Callable[[Client], None]

SCENARIOS: dict[str, Scenario] = {
    "counter": counter_adds_one_at_a_time,
    "bad-input": counter_refuses_bad_input_with_400,
    "signup": signup_waits_for_the_click,
    "dag": dag_gathers_each_wave,
    "approval": approval_escalates_until_decided,
    "saga-cancel": saga_compensates_when_cancelled,
    "saga-failure": saga_compensates_a_failed_step,
    "rr-timer": request_response_suspends_on_a_timer,
    "rr-awakeable": request_response_suspends_on_an_awakeable,
}
