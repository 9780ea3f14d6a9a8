"""Suspension on future trees: an invocation resumes exactly when its combinator is satisfied."""

from __future__ import annotations

import pytest
from tests.unit.partition.harness import Env, all_of, cmd, target

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition.effects import StartAttempt
from perdure.server.partition.events import AwakeableCompleted, Operation, OperatorRequested
from perdure.server.storage.api import Failure, Outcome
from perdure.server.storage.api import InvocationStatus as S

OK = Outcome(value=b'"ok"')
BAD = Outcome(failure=Failure(500, "rejected"))


def suspended_on(future: pb.Future) -> tuple[Env, str]:
    env = Env(version=7)
    _, inv, _ = env.request(target("Greeter", "greet"))
    env.frames(inv, 1, cmd(pb.SuspensionMessage(awaiting_on=future)))
    assert env.row(inv).status is S.SUSPENDED
    return env, inv


def signal(env: Env, inv: str, index: int, outcome: Outcome) -> bool:
    """Completes awakeable `index`; answers whether the invocation was resumed."""
    effects = env.apply(AwakeableCompleted(index, inv, index, outcome))
    return bool(all_of(effects, StartAttempt))


def over(combinator: int, *signals: int) -> pb.Future:
    return pb.Future(combinator_type=combinator, waiting_signals=list(signals))


@pytest.mark.parametrize(
    ("combinator", "steps"),
    [
        # (signal, outcome, resumed?) in order
        (pb.FIRST_COMPLETED, [(17, BAD, True)]),
        (pb.ALL_COMPLETED, [(17, OK, False), (18, BAD, True)]),
        (pb.FIRST_SUCCEEDED_OR_ALL_FAILED, [(17, BAD, False), (18, OK, True)]),
        (pb.FIRST_SUCCEEDED_OR_ALL_FAILED, [(17, BAD, False), (18, BAD, True)]),
        (pb.ALL_SUCCEEDED_OR_FIRST_FAILED, [(17, OK, False), (18, OK, True)]),
        (pb.ALL_SUCCEEDED_OR_FIRST_FAILED, [(17, OK, False), (18, BAD, True)]),
        (pb.ALL_SUCCEEDED_OR_FIRST_FAILED, [(18, BAD, True)]),
    ],
)
def test_combinator_resumes_when_satisfied(
    combinator: int, steps: list[tuple[int, Outcome, bool]]
) -> None:
    env, inv = suspended_on(over(combinator, 17, 18))
    for index, outcome, resumed in steps:
        assert signal(env, inv, index, outcome) is resumed, (index, outcome)


def test_nested_tree_waits_for_all_of_the_inner_group() -> None:
    inner = over(pb.ALL_COMPLETED, 17, 18)
    env, inv = suspended_on(
        pb.Future(combinator_type=pb.FIRST_COMPLETED, waiting_signals=[19], nested_futures=[inner])
    )
    assert not signal(env, inv, 17, OK)
    assert signal(env, inv, 18, OK)


def test_cancel_resumes_whatever_the_tree_waits_for() -> None:
    env, inv = suspended_on(over(pb.ALL_COMPLETED, 17, 18))
    effects = env.apply(OperatorRequested(1, inv, Operation.CANCEL))
    assert all_of(effects, StartAttempt)


def test_an_already_satisfied_tree_resumes_at_once() -> None:
    env = Env(version=7)
    _, inv, _ = env.request(target("Greeter", "greet"))
    env.apply(AwakeableCompleted(1, inv, 17, OK))  # arrives while running
    effects = env.frames(inv, 1, cmd(pb.SuspensionMessage(awaiting_on=over(pb.ALL_COMPLETED, 17))))
    assert all_of(effects, StartAttempt)
