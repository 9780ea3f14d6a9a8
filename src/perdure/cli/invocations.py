"""`perdure invocations list|describe|cancel|kill|purge|pause|resume`.

Example::

    perdure invocations list --status backing-off,paused
    perdure invocations describe inv_1gdJBtdVEcM9...
    perdure invocations kill inv_1gdJBtdVEcM9...
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from perdure.cli import render
from perdure.cli.api import Api, command, endpoints_of, segment, usage
from perdure.cli.diagnosis import Context, outstanding
from perdure.cli.render import EXIT_OK, EXIT_USAGE, CliError

Doc = Mapping[str, Any]

# What each operation does, in the words `perdure invocations --help` and the result use.
OPERATIONS = {
    "cancel": "ask it to stop: the handler sees a cancellation and may clean up",
    "kill": "stop it (and the calls it waits for) at once, without running handler code",
    "purge": "forget a completed invocation now (its journal and its idempotency key)",
    "pause": "stop retrying it until `resume`",
    "resume": "retry a paused, suspended or backing-off invocation now",
    "restart": "run a completed invocation again, with the same input, as a new invocation",
}
# The admin path of each operation, where it differs from the command's name.
_PATHS = {"restart": "restart-as-new"}
_DONE = {
    "cancel": "Cancellation requested for {id}: it stops at its next await.",
    "kill": "Killed {id}.",
    "purge": "Purged {id}.",
    "pause": "Pause requested for {id}: it stops at its next await and waits for `resume`.",
    "resume": "Resumed {id}: it tries again now (unless it was running already).",
    "restart": "Restarted {id} as {new}.\nfollow it: perdure explain {new}",
}
MAX_LIMIT = 1000
STATUSES = (
    "active",
    "scheduled",
    "pending",
    "ready",
    "running",
    "suspended",
    "backing-off",
    "paused",
    "completed",
)


def register(commands: Any) -> None:
    invocations = commands.add_parser(
        "invocations",
        help="list, inspect and operate invocations (cancel, kill, purge, pause, resume)",
        description="What the server is running, waiting on or has finished, and the levers.",
    )
    sub = invocations.add_subparsers(dest="invocations_command", metavar="COMMAND")
    invocations.set_defaults(run=lambda _args: usage(invocations))

    listing = command(sub, "list", "list invocations, newest first")
    listing.add_argument(
        "--status",
        metavar="S[,S...]",
        help="only these statuses: " + ", ".join(STATUSES),
    )
    listing.add_argument("--service", metavar="NAME", help="only invocations of this service")
    listing.add_argument("--key", metavar="KEY", help="only this object/workflow key")
    listing.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most N rows (default 50)"
    )
    listing.set_defaults(run=run_list)

    describe = command(sub, "describe", "status, target, attempts, last failure, journal")
    describe.add_argument("id", help="an invocation id (inv_1...)")
    describe.set_defaults(run=run_describe)

    for name, text in OPERATIONS.items():
        op = command(sub, name, text)
        op.add_argument("id", help="an invocation id (inv_1...)")
        op.set_defaults(run=run_operation, operation=name)


# --- pure: arguments and screens -----------------------------------------------------------------


def list_params(
    status: str | None, service: str | None, key: str | None, limit: int
) -> list[tuple[str, str]]:
    """GET /invocations query parameters; a limit out of range is a usage error.

    >>> list_params("paused", "Counter", None, 10)
    [('limit', '10'), ('status', 'paused'), ('service', 'Counter')]
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise CliError(
            f"--limit {limit} is out of range.",
            hint=f"Use a number from 1 to {MAX_LIMIT}.",
            exit_code=EXIT_USAGE,
        )
    params = [("limit", str(limit))]
    if status:
        params.append(("status", status))
    if service:
        params.append(("service", service))
    if key is not None:
        params.append(("key", key))
    return params


def _info(inv: Doc, now_ms: int) -> str:
    """The one column that says what matters for this status."""
    status = inv.get("status")
    failure = inv.get("last_failure") or {}
    if status == "backing-off":
        retry = render.relative(render.parse_timestamp(inv.get("next_retry_at")), now_ms)
        return f"retry {retry}: [{failure.get('code')}] {failure.get('message')}"
    if status == "paused":
        return f"[{failure.get('code')}] {failure.get('message')}"
    if status == "scheduled":
        return "starts " + render.relative(render.parse_timestamp(inv.get("scheduled_at")), now_ms)
    if status == "completed":
        outcome = inv.get("outcome") or {}
        if outcome.get("status") == "failure":
            return f"failed [{outcome.get('code')}] {outcome.get('message')}"
        return "succeeded"
    return ""


def invocations_table(document: Doc, now_ms: int) -> str:
    rows = [
        [
            inv.get("id"),
            inv.get("target"),
            inv.get("status"),
            inv.get("attempts"),
            render.relative(render.parse_timestamp(inv.get("modified_at")), now_ms),
            _info(inv, now_ms),
        ]
        for inv in document.get("invocations") or []
    ]
    if not rows:
        return "No invocations match."
    return render.table(["ID", "TARGET", "STATUS", "ATTEMPTS", "MODIFIED", "INFO"], rows)


def _journal_detail(entry: Doc, now_ms: int) -> str:
    parts = []
    if entry.get("name"):
        parts.append(f"'{entry['name']}'")
    for field_name in ("target", "promise", "state_key", "invocation_id", "awakeable_id"):
        if entry.get(field_name):
            parts.append(f"{field_name.replace('_', ' ')} {entry[field_name]}")
    if entry.get("wake_up_at"):
        parts.append("wakes " + render.when(entry["wake_up_at"], now_ms))
    if entry.get("invoke_at"):
        parts.append("starts " + render.when(entry["invoke_at"], now_ms))
    if entry.get("invocation_id_completion_id") is not None:
        parts.append(f"id as c:{entry['invocation_id_completion_id']}")
    if entry.get("completion_id") is not None:
        parts.append(f"result as c:{entry['completion_id']}")
    if entry.get("notification"):
        parts.insert(0, f"for {entry['notification']}")
    if entry.get("failed"):
        parts.append("FAILED")
    return ", ".join(parts)


def entry_name(entry_type: str) -> str:
    """A journal entry type as the journal table shows it: commands bare, notifications marked.

    >>> entry_name("sleep_command"), entry_name("sleep_completion_notification")
    ('sleep', '↳ sleep')
    """
    for suffix in ("_completion_notification", "_notification"):
        if entry_type.endswith(suffix):
            return "↳ " + entry_type.removesuffix(suffix)
    return entry_type.removesuffix("_command")


def journal_table(entries: Sequence[Doc], now_ms: int) -> str:
    """The journal, one row per entry; `c:N` ties a command to the notification of its result."""
    rows = [
        [e.get("index"), entry_name(str(e.get("type"))), _journal_detail(e, now_ms)]
        for e in entries
    ]
    return render.table(["#", "ENTRY", "DETAIL"], rows) if rows else "(empty journal)"


def invocation_text(inv: Doc, now_ms: int) -> str:
    """What `invocations describe` prints: the facts, what it waits for, its journal."""
    failure = inv.get("last_failure")
    outcome = inv.get("outcome")
    outcome_text = None
    if outcome:
        outcome_text = (
            f"failure [{outcome.get('code')}] {outcome.get('message')}"
            if outcome.get("status") == "failure"
            else f"success ({outcome.get('size')} bytes)"
        )
    lock = inv.get("key_lock") if inv.get("status") != "completed" else None
    waiting = outstanding(inv, Context(now_ms=now_ms)) if inv.get("status") != "completed" else []
    top = render.fields(
        [
            ("id", inv.get("id")),
            ("target", inv.get("target")),
            ("status", inv.get("status")),
            ("created", render.when(inv.get("created_at"), now_ms)),
            ("modified", render.when(inv.get("modified_at"), now_ms)),
            (
                "scheduled for",
                render.when(inv.get("scheduled_at"), now_ms) if inv.get("scheduled_at") else None,
            ),
            ("attempts", inv.get("attempts")),
            ("failed attempts", inv.get("retry_count") or None),
            (
                "next retry",
                render.when(inv.get("next_retry_at"), now_ms) if inv.get("next_retry_at") else None,
            ),
            (
                "last failure",
                f"[{failure.get('code')}] {failure.get('message')}" if failure else None,
            ),
            ("related command", (failure or {}).get("related_command")),
            ("waiting for", "; ".join(waiting) if waiting else None),
            (
                "key lock",
                f"held by {lock.get('holder') or 'nobody'}, {lock.get('queued')} queued"
                if lock
                else None,
            ),
            ("deployment", inv.get("deployment_id")),
            ("protocol", f"v{inv['protocol_version']}" if inv.get("protocol_version") else None),
            ("invoked by", inv.get("invoked_by")),
            ("idempotency key", inv.get("idempotency_key")),
            ("outcome", outcome_text),
            ("completed", render.when(inv.get("completed_at"), now_ms) if outcome else None),
        ]
    )
    journal = inv.get("journal") or []
    count = f"{len(journal)} entr{'y' if len(journal) == 1 else 'ies'}"
    return f"{top}\n\nJournal ({count}):\n{journal_table(journal, now_ms)}"


def operation_text(
    operation: str, invocation_id: str, status: int = 202, answer: Doc | None = None
) -> str:
    """What an operation prints, from the status (and body) the admin API answered.

    >>> operation_text("kill", "inv_1"), operation_text("cancel", "inv_1", 200)
    ('Killed inv_1.', 'Cancelled inv_1 before it started.')
    """
    if operation == "cancel" and status == 200:
        return f"Cancelled {invocation_id} before it started."
    if operation == "pause" and status == 200:
        return f"{invocation_id} was already paused."
    new = (answer or {}).get("new_invocation_id", "?")
    return _DONE[operation].format(id=invocation_id, new=new)


# --- commands ------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    params = list_params(args.status, args.service, args.key, args.limit)
    with Api(endpoints_of(args)) as api:
        document = api.admin("GET", "/invocations", params=params)
    if getattr(args, "json", False):
        render.show_json(document)
    else:
        render.show(invocations_table(document or {}, render.now_ms()))
    return EXIT_OK


def run_describe(args: argparse.Namespace) -> int:
    with Api(endpoints_of(args)) as api:
        document = api.admin("GET", f"/invocations/{segment(args.id)}")
    if getattr(args, "json", False):
        render.show_json(document)
    else:
        render.show(invocation_text(document or {}, render.now_ms()))
    return EXIT_OK


def run_operation(args: argparse.Namespace) -> int:
    with Api(endpoints_of(args)) as api:
        path = _PATHS.get(args.operation, args.operation)
        status, answer = api.admin_with_status("PATCH", f"/invocations/{segment(args.id)}/{path}")
    if getattr(args, "json", False):
        render.show_json(
            {"id": args.id, "operation": args.operation, "status": status, **(answer or {})}
        )
    else:
        render.show(operation_text(args.operation, args.id, status, answer))
    return EXIT_OK
