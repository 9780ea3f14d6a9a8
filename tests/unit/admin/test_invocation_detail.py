"""GET /invocations/{id} read model: journal entries say what they are about; keyed lock info."""

from __future__ import annotations

from perdure.protocol.messages import MessageType
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.admin.queries import invocation_detail, journal_entry_json
from perdure.server.storage.api import (
    HandlerType,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    ServiceType,
    Target,
)
from perdure.server.storage.memory import MemoryStorage


def _entry(index: int, message_type: MessageType, msg: object) -> JournalEntry:
    return JournalEntry(index, message_type, msg.SerializeToString())  # type: ignore[attr-defined]


def test_sleep_command_shows_its_wake_up_time_and_completion_id() -> None:
    sleep = pb.SleepCommandMessage(wake_up_time=1_700_000_000_123, result_completion_id=3)
    doc = journal_entry_json(_entry(2, MessageType.SLEEP_COMMAND, sleep))
    assert doc == {
        "index": 2,
        "type": "sleep_command",
        "completion_id": 3,
        "wake_up_at": "2023-11-14T22:13:20.123Z",
    }


def test_call_command_shows_its_target_and_both_completion_ids() -> None:
    call = pb.CallCommandMessage(
        service_name="Counter",
        handler_name="add",
        key="k1",
        invocation_id_notification_idx=1,
        result_completion_id=2,
        name="bump",
    )
    doc = journal_entry_json(_entry(1, MessageType.CALL_COMMAND, call))
    assert doc["target"] == "Counter/k1/add"
    assert doc["completion_id"] == 2
    assert doc["invocation_id_completion_id"] == 1
    assert doc["name"] == "bump"


def test_promise_and_state_commands_name_their_subject() -> None:
    promise = pb.GetPromiseCommandMessage(key="approval", result_completion_id=1)
    state = pb.GetLazyStateCommandMessage(key=b"count", result_completion_id=2)
    promise_doc = journal_entry_json(_entry(1, MessageType.GET_PROMISE_COMMAND, promise))
    state_doc = journal_entry_json(_entry(2, MessageType.GET_LAZY_STATE_COMMAND, state))
    assert promise_doc["promise"] == "approval"
    assert state_doc["state_key"] == "count"


def test_notifications_carry_their_key_and_failure_flag() -> None:
    entry = JournalEntry(3, MessageType.RUN_COMPLETION_NOTIFICATION, b"", "c:4", is_failure=True)
    assert journal_entry_json(entry) == {
        "index": 3,
        "type": "run_completion_notification",
        "notification": "c:4",
        "failed": True,
    }


def test_call_invocation_id_notification_names_the_callee() -> None:
    msg = pb.CallInvocationIdCompletionNotificationMessage(completion_id=1, invocation_id="inv_x")
    entry = JournalEntry(
        2, MessageType.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION, msg.SerializeToString(), "c:1"
    )
    assert journal_entry_json(entry)["invocation_id"] == "inv_x"


def test_unknown_and_malformed_entries_keep_their_type_only() -> None:
    assert journal_entry_json(JournalEntry(0, 0xFC01, b"\x01")) == {
        "index": 0,
        "type": "custom_0xfc01",
    }
    garbage = JournalEntry(1, MessageType.SLEEP_COMMAND, b"\xff\xff\xff")
    assert journal_entry_json(garbage) == {"index": 1, "type": "sleep_command"}


def test_exclusive_object_invocation_shows_the_key_lock_holder_and_inbox_size() -> None:
    storage = MemoryStorage()
    target = Target("Counter", "add", "k1", ServiceType.VIRTUAL_OBJECT, HandlerType.EXCLUSIVE)
    tx = storage.begin()
    for invocation_id, status in (("inv_a", InvocationStatus.RUNNING), ("inv_b", "pending")):
        tx.put_invocation(InvocationRow(invocation_id, target, InvocationStatus(status), 1, 1))
    tx.set_lock("Counter", "k1", "inv_a")
    tx.push_inbox("Counter", "k1", "inv_b")
    tx.commit()
    detail = invocation_detail(storage.reader(), "inv_b")
    assert detail is not None
    assert detail["key_lock"] == {"holder": "inv_a", "queued": 1}
    shared = Target("Counter", "get", "k1", ServiceType.VIRTUAL_OBJECT, HandlerType.SHARED)
    tx = storage.begin()
    tx.put_invocation(InvocationRow("inv_c", shared, InvocationStatus.RUNNING, 1, 1))
    tx.commit()
    shared_detail = invocation_detail(storage.reader(), "inv_c")
    assert shared_detail is not None and shared_detail["key_lock"] is None
