"""The invoker's scheduler (`invoker/slots.py`): limit, lanes, and the one-way share."""

from __future__ import annotations

import pytest

from perdure.server.invoker.slots import AttemptSlots


def drain(slots: AttemptSlots[str], *, busy: bool) -> list[str]:
    out = []
    while (ready := slots.pop_ready(busy=busy)) is not None:
        out.append(ready[0])
    return out


def test_no_limit_admits_everything_at_once() -> None:
    slots: AttemptSlots[str] = AttemptSlots(None)
    assert all(slots.admit(one_way=False, busy=False) for _ in range(1000))
    assert slots.open == 1000


def test_calls_wait_first_in_first_out_and_go_before_one_way_sends() -> None:
    slots: AttemptSlots[str] = AttemptSlots(1, one_way_share=1, one_way_limit=1)
    assert slots.admit(one_way=False, busy=False)
    slots.push("send-1", "s1", one_way=True)
    slots.push("call-1", "c1", one_way=False)
    slots.push("call-2", "c2", one_way=False)
    assert len(slots) == 3 and "send-1" in slots
    order: list[str] = []
    for _ in range(3):
        slots.finished(one_way=bool(order) and order[-1].startswith("send"))
        order += drain(slots, busy=False)
    assert order == ["call-1", "call-2", "send-1"]


def test_a_new_attempt_does_not_overtake_waiting_ones_of_its_lane() -> None:
    slots: AttemptSlots[str] = AttemptSlots(2)
    assert slots.admit(one_way=False, busy=False)
    slots.push("waiting-call", "w", one_way=False)  # as if the limit had been reached before
    assert not slots.admit(one_way=False, busy=False)
    assert not slots.admit(one_way=True, busy=False)  # calls wait: one-way sends wait too


def test_one_way_attempts_keep_to_the_share_while_busy_and_the_limit_when_quiet() -> None:
    slots: AttemptSlots[str] = AttemptSlots(None, one_way_share=2, one_way_limit=5)
    for i in range(10):
        slots.push(f"s{i}", str(i), one_way=True)
    assert drain(slots, busy=True) == ["s0", "s1"]
    assert slots.held_back(busy=True)
    assert drain(slots, busy=False) == ["s2", "s3", "s4"]
    assert slots.open_one_way == 5 and not slots.held_back(busy=True)  # the limit holds them
    # Calls are not held by the one-way share.
    slots.push("call", "c", one_way=False)
    assert drain(slots, busy=True) == ["call"]
    assert slots.open == 6 and slots.open_one_way == 5


def test_push_replaces_and_remove_and_clear_forget() -> None:
    slots: AttemptSlots[str] = AttemptSlots(1)
    assert slots.admit(one_way=False, busy=False)
    slots.push("a", "first", one_way=True)
    slots.push("a", "second", one_way=False)  # a newer attempt of the same invocation
    assert len(slots) == 1 and slots.get("a") == "second"
    assert slots.remove("a") == "second" and slots.remove("a") is None
    slots.push("b", "b", one_way=True)
    slots.clear()
    assert len(slots) == 0


@pytest.mark.parametrize(("limit", "share", "cap"), [(0, 8, 128), (None, 0, 128), (None, 8, 4)])
def test_nonsense_settings_are_refused(limit: int | None, share: int, cap: int) -> None:
    with pytest.raises(ValueError):
        AttemptSlots(limit, one_way_share=share, one_way_limit=cap)


def test_the_ingress_is_busy_only_while_many_sends_wait() -> None:
    import asyncio
    from typing import Any

    from perdure.server.invoker.service import BUSY_SENDS, QUIET_S, Invoker

    async def scenario() -> None:
        none: Any = None
        invoker = Invoker(lambda _event: None, lambda: none, none, none)
        invoker.send_accepting("a")
        invoker.send_answered("a")
        assert not invoker._busy()  # one client sending now and then
        ids = [f"s{i}" for i in range(BUSY_SENDS)]
        for name in ids:
            invoker.send_accepting(name)
        assert invoker._busy()
        for name in ids:
            invoker.send_answered(name)
        assert invoker._busy()  # for QUIET_S after the burst
        await asyncio.sleep(QUIET_S * 2)
        assert not invoker._busy()

    asyncio.run(scenario())


def test_one_way_attempts_that_wait_long_leave_the_lane_and_do_not_hold_later_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """128 workflow runs waiting on their promises must not hold every later send back."""
    import asyncio
    from typing import Any

    from perdure.server.invoker import service
    from perdure.server.partition.effects import StartAttempt

    monkeypatch.setattr(service, "LANE_HOLD_S", 0.05)

    class Waiting(service.Invoker):
        async def _attempt(self, effect: StartAttempt, outbox: Any) -> None:
            await asyncio.Event().wait()  # a handler waiting on something that never comes

    async def scenario() -> None:
        none: Any = None
        invoker = Waiting(lambda _e: None, lambda: none, none, none, one_way_share=2,
                          one_way_limit=4)  # fmt: skip
        for i in range(10):
            invoker.send_accepting(f"w{i}")
            invoker.start(StartAttempt(f"w{i}", 1, "dp", "Wf", "run", 5, b""))
            invoker.send_answered(f"w{i}")
        assert len(invoker) == 4 and invoker.waiting == 6  # the lane's limit
        await asyncio.sleep(0.5)  # each lane slot is released after LANE_HOLD_S
        assert len(invoker) == 10 and invoker.waiting == 0
        await invoker.close()

    asyncio.run(scenario())
