"""Suspension: the await point as a combinator tree (V7) or flat lists (V5/V6); hints."""

from __future__ import annotations

import pytest
from tests.unit.vm.harness import Output, VMCase

from perdure.protocol.framing import encode_message
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import (
    ANY_COMPLETED,
    SUSPENDED,
    VM,
    FutureTree,
    VMOptions,
    WaitExternalProgress,
    all_completed,
    all_succeeded,
    first_completed,
    first_succeeded,
    single,
    unknown,
)
from perdure.sdk.vm.futures import Outcome, try_resolve

COMBINATORS = [
    (first_completed, pb.FIRST_COMPLETED),
    (all_completed, pb.ALL_COMPLETED),
    (first_succeeded, pb.FIRST_SUCCEEDED_OR_ALL_FAILED),
    (all_succeeded, pb.ALL_SUCCEEDED_OR_FIRST_FAILED),
    (unknown, pb.COMBINATOR_TYPE_UNKNOWN),
]


def three_sleeps(version: int = 7, options: VMOptions | None = None) -> tuple[VM, list[int]]:
    case = VMCase(version, options).start().input()
    vm = case.vm()
    vm.sys_input()
    return vm, [vm.sys_sleep(0) for _ in range(3)]


@pytest.mark.parametrize(("combine", "wire"), COMBINATORS)
def test_each_combinator_suspends_with_its_own_node_under_the_cancel_race(
    combine: object, wire: int
) -> None:
    vm, (a, b, c) = three_sleeps()
    tree = combine(a, combine(b, c))  # type: ignore[operator]
    assert vm.do_progress(tree) == SUSPENDED
    awaiting = Output.of(vm).frames[-1].decode().awaiting_on
    # Implicit cancellation: FIRST_COMPLETED(user tree, cancel signal).
    assert awaiting.combinator_type == pb.FIRST_COMPLETED
    assert list(awaiting.waiting_signals) == [1]
    (user,) = awaiting.nested_futures
    assert user.combinator_type == wire
    assert list(user.waiting_completions) == [1]
    (inner,) = user.nested_futures
    assert (inner.combinator_type, sorted(inner.waiting_completions)) == (wire, [2, 3])


@pytest.mark.parametrize("version", [5, 6])
def test_before_v7_the_tree_is_flattened_into_lists(version: int) -> None:
    vm, (a, b, c) = three_sleeps(version)
    vm.sys_signal("named")
    named = vm.sys_signal("named")
    assert vm.do_progress(all_completed(a, first_completed(b, c, named))) == SUSPENDED
    suspension = Output.of(vm).frames[-1].decode()
    assert not suspension.HasField("awaiting_on")
    assert sorted(suspension.waiting_completions) == [1, 2, 3]
    assert list(suspension.waiting_signals) == [1]
    assert list(suspension.waiting_named_signals) == ["named"]


def test_without_implicit_cancellation_the_tree_is_the_users_alone() -> None:
    vm, (a, b, _) = three_sleeps(options=VMOptions(implicit_cancellation=False))
    assert vm.do_progress(all_completed(a, b)) == SUSPENDED
    awaiting = Output.of(vm).frames[-1].decode().awaiting_on
    assert awaiting.combinator_type == pb.ALL_COMPLETED
    assert sorted(awaiting.waiting_completions) == [1, 2]


def test_completed_children_are_left_out_of_the_suspension() -> None:
    case = (
        VMCase()
        .start()
        .input()
        .later(pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()))
    )
    vm = case.vm()
    vm.sys_input()
    a, b = vm.sys_sleep(0), vm.sys_sleep(0)
    assert vm.do_progress(all_completed(a, b)) == SUSPENDED
    user = Output.of(vm).frames[-1].decode().awaiting_on.nested_futures[0]
    assert list(user.waiting_completions) == [2]


def test_with_input_open_the_vm_waits_and_hints_once_per_await_point() -> None:
    vm = VMCase(7).start().input().vm(close_input=False)
    vm.sys_input()
    a = vm.sys_sleep(0)
    assert vm.do_progress(single(a)) == WaitExternalProgress(True, False)
    assert vm.do_progress(single(a)) == WaitExternalProgress(True, False)
    assert Output.of(vm).types == ["SLEEP_COMMAND", "AWAITING_ON"]
    vm.notify_input(
        encode_message(pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()))
    )
    assert vm.do_progress(single(a)) == ANY_COMPLETED


@pytest.mark.parametrize("version", [5, 6])
def test_before_v7_no_hints_are_sent(version: int) -> None:
    vm = VMCase(version).start().input().vm(close_input=False)
    vm.sys_input()
    vm.do_progress(single(vm.sys_sleep(0)))
    assert Output.of(vm).types == ["SLEEP_COMMAND"]


# --- resolution, in isolation -------------------------------------------------------------


S, F, P = Outcome.SUCCEEDED, Outcome.FAILED, Outcome.PENDING


def resolve(tree: FutureTree, **states: Outcome) -> FutureTree | None:
    return try_resolve(tree, lambda h: states.get(f"h{h}", P))


@pytest.mark.parametrize(
    ("tree", "states", "resolved"),
    [
        (first_completed(1, 2), {"h2": F}, True),
        (all_completed(1, 2), {"h1": F}, False),
        (all_completed(1, 2), {"h1": F, "h2": S}, True),
        (first_succeeded(1, 2), {"h1": F}, False),
        (first_succeeded(1, 2), {"h1": F, "h2": F}, True),
        (first_succeeded(1, 2), {"h2": S}, True),
        (all_succeeded(1, 2), {"h1": S}, False),
        (all_succeeded(1, 2), {"h2": F}, True),
        (all_succeeded(1, 2), {"h1": S, "h2": S}, True),
        (unknown(1, 2), {"h1": S}, True),
        # A nested race short-circuits its parent: user code must look at it first.
        (all_completed(first_completed(1, 2), 3), {"h1": S}, True),
        (all_succeeded(first_succeeded(1, 2), 3), {"h1": F}, False),
        (all_completed(1, 1), {"h1": S}, True),
    ],
)
def test_resolution_of_combinators(
    tree: FutureTree, states: dict[str, Outcome], resolved: bool
) -> None:
    assert (resolve(tree, **states) is None) is resolved


def test_the_rest_of_a_tree_keeps_only_pending_children() -> None:
    rest = resolve(all_completed(1, first_succeeded(2, 3), 4), h1=S, h2=F)
    assert rest == all_completed(first_succeeded(3), 4)
