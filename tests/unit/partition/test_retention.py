"""Retention: an idempotency key answers with the same outcome until it expires, then a new
invocation runs; the reply says when the key expires."""

from __future__ import annotations

from tests.unit.partition.harness import (
    DEFAULT_SERVICES,
    Env,
    all_of,
    cmd,
    reply,
    service_row,
    target,
)

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition.effects import ScheduleTimer, StartAttempt
from perdure.server.registry import DAY_MS
from perdure.server.storage.api import ServiceType, Target, TimerKind

END = cmd(pb.EndMessage())
SECOND = 1_000


def out(value: bytes) -> tuple[int, bool, bytes]:
    return cmd(pb.OutputCommandMessage(value=pb.Value(content=value)))


def test_idempotent_reply_says_when_the_key_expires_and_then_it_runs_again() -> None:
    short = service_row("Short", ServiceType.SERVICE, {"go": None}, idempotencyRetention=SECOND)
    env = Env(services=[*DEFAULT_SERVICES, short])
    go = Target("Short", "go")
    _, inv, _ = env.request(go, idempotency_key="k")
    done = env.frames(inv, 1, out(b"1"), END)
    assert reply(done).reply.expires_at == env.now + SECOND
    cleanup = [e for e in done if isinstance(e, ScheduleTimer)]
    assert [t.timer.kind for t in cleanup] == [TimerKind.CLEANUP]
    assert cleanup[0].timer.fire_at == env.now + SECOND
    _, _, again = env.request(go, idempotency_key="k")
    assert not all_of(again, StartAttempt) and reply(again).reply.outcome.value == b"1"
    env.fire_timers(cleanup)
    _, _, fresh = env.request(go, idempotency_key="k")
    assert all_of(fresh, StartAttempt)  # the key expired: the handler runs again


def test_plain_reply_has_no_expiry() -> None:
    env = Env()
    _, inv, _ = env.request(target("Greeter", "greet"))
    assert reply(env.frames(inv, 1, out(b"1"), END)).reply.expires_at is None


def test_workflow_state_and_promises_outlive_the_run_until_the_workflow_retention() -> None:
    env = Env()
    run = target("Signup", "run", "ada")
    _, inv, _ = env.request(run)
    env.frames(
        inv,
        1,
        cmd(pb.SetStateCommandMessage(key=b"status", value=pb.Value(content=b'"done"'))),
        cmd(
            pb.CompletePromiseCommandMessage(
                key="p", completion_value=pb.Value(content=b"1"), result_completion_id=1
            )
        ),
    )
    done = env.frames(inv, 1, out(b"1"), END)
    reader = env.storage.reader()
    assert reader.get_state("Signup", "ada", b"status") == b'"done"'
    assert reader.get_promise("Signup", "ada", "p") is not None
    cleanup = [e for e in done if isinstance(e, ScheduleTimer)]
    assert cleanup[0].timer.fire_at == env.now + DAY_MS  # the workflow retention
    env.fire_timers(cleanup)
    reader = env.storage.reader()
    assert reader.get_state("Signup", "ada", b"status") is None
    assert reader.get_promise("Signup", "ada", "p") is None
    _, _, again = env.request(run)
    assert all_of(again, StartAttempt)  # the key may run again
