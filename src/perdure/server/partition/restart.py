"""Restart-as-new: run a completed invocation again under a new id, optionally reusing the
start of its journal.

`from_index` 0 (the default) restarts from the beginning: the new invocation gets the same
input and headers, a new random seed, and the latest deployment. A larger index copies the
journal up to that entry (included) plus the completions of the commands in it, keeps the
random seed (the copied steps may depend on it) and, on request, the pinned deployment; the
handler then replays the copied steps and carries on from there. Restate's rules and codes
(crates/worker rpc/restart_as_new_invocation.rs, lifecycle/restart_as_new.rs).
"""

from __future__ import annotations

from perdure.protocol.messages import MessageType as T
from perdure.protocol.messages import message_class
from perdure.server.partition import lifecycle
from perdure.server.partition.context import Ctx
from perdure.server.storage.api import (
    HandlerType,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
)

S = InvocationStatus

# Fields of a command that name the completions its results arrive under.
COMPLETION_FIELDS = ("result_completion_id", "invocation_id_notification_idx")
# Reusing a journal prefix needs the random seed in the Start message (protocol V6).
MIN_PREFIX_PROTOCOL = 6
CUSTOM_COMMAND_START = 0xFC00


class RestartRefused(Exception):
    """Restart-as-new is not possible; `status` and the message say why (Restate's codes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def restart_as_new(
    ctx: Ctx, row: InvocationRow, from_index: int = 0, keep_deployment: bool = False
) -> str:
    """Starts the new invocation and returns its id, or raises `RestartRefused`."""
    _check(row, from_index)
    journal = ctx.tx.read_journal(row.id, 0)
    if not journal or journal[0].message_type != T.INPUT_COMMAND:
        raise RestartRefused(
            410,
            f"the input of invocation {row.id} is no longer stored (its journal was purged), "
            "so it cannot be run again",
        )
    entries = _copy_prefix(journal, from_index)
    reuse = from_index > 0
    new = InvocationRow(
        id=ctx.ids.invocation_id(row.target, None),
        target=row.target,
        status=S.READY,
        created_at=ctx.now,
        modified_at=ctx.now,
        headers=row.headers,
        random_seed=row.random_seed if reuse else ctx.ids.random_seed(),
        deployment_id=row.deployment_id if reuse and keep_deployment else None,
        protocol_version=row.protocol_version if reuse and keep_deployment else None,
        journal_length=len(entries),
        command_count=sum(1 for e in entries if e.notification_key is None),
    )
    ctx.add(new)
    ctx.append(new, entries)
    lifecycle.enqueue_or_start(ctx, new)
    return new.id


def _check(row: InvocationRow, from_index: int) -> None:
    if row.status in (S.PENDING, S.SCHEDULED, S.READY):
        raise RestartRefused(425, f"invocation {row.id} has not started yet ({row.status.value})")
    if row.status is not S.COMPLETED:
        raise RestartRefused(
            409,
            f"invocation {row.id} is still {row.status.value}; only a completed invocation can "
            "be restarted (cancel or kill it first)",
        )
    if row.target.handler_type is HandlerType.WORKFLOW:
        raise RestartRefused(
            422,
            f"invocation {row.id} is a workflow run, and a workflow runs once per key; start "
            "the workflow under a new key instead",
        )
    if from_index >= max(row.journal_length, 1):
        raise RestartRefused(
            400,
            f"?from={from_index} is out of range: the journal of {row.id} has "
            f"{row.journal_length} entries (0 to {row.journal_length - 1})",
        )
    if from_index > 0 and (row.protocol_version or 0) < MIN_PREFIX_PROTOCOL:
        raise RestartRefused(
            422,
            f"invocation {row.id} ran with protocol V{row.protocol_version}; reusing a journal "
            f"prefix needs V{MIN_PREFIX_PROTOCOL} or later (restart it from the beginning)",
        )


def _copy_prefix(journal: list[JournalEntry], from_index: int) -> list[JournalEntry]:
    """Entries 0..from_index, then the later completions of the commands among them."""
    prefix = journal[: from_index + 1]
    awaited: set[str] = set()
    for e in prefix:
        if e.notification_key is None:
            awaited |= _completion_keys(e)
        else:
            awaited.discard(e.notification_key)
    later = [e for e in journal[from_index + 1 :] if e.notification_key in awaited]
    awaited -= {e.notification_key for e in later}
    if awaited:
        raise RestartRefused(
            400,
            f"the journal up to entry {from_index} has commands whose results never arrived "
            f"({', '.join(sorted(awaited))}); restart from an earlier entry",
        )
    copied = prefix + later
    return [
        JournalEntry(i, e.message_type, e.payload, e.notification_key, e.is_failure)
        for i, e in enumerate(copied)
    ]


def _completion_keys(entry: JournalEntry) -> set[str]:
    if entry.message_type >= CUSTOM_COMMAND_START or entry.message_type == T.INPUT_COMMAND:
        return set()
    try:
        msg = message_class(entry.message_type)()
        msg.ParseFromString(entry.payload)
    except Exception:  # an entry this server does not know: it awaits nothing we can tell
        return set()
    return {
        f"c:{getattr(msg, name)}"
        for name in COMPLETION_FIELDS
        if name in msg.DESCRIPTOR.fields_by_name and getattr(msg, name)
    }
