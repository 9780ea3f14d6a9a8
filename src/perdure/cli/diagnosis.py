"""Why is an invocation where it is? The rules of `perdure explain`, pure over admin documents.

Input is what the admin API answers (an invocation's detail, the deployments, the other
invocations on the same key); output is a `Diagnosis`: a stable reason word for scripts, one
sentence, the facts behind it, and the commands to run next. No I/O, no clock: `now_ms` is
passed in, so every rule is a unit test.

>>> d = explain_invocation({"id": "inv_1", "status": "scheduled", "target": "Greeter/greet",
...     "scheduled_at": "1970-01-01T00:01:00.000Z"}, Context(now_ms=0))
>>> d.reason, d.summary
('scheduled', 'Greeter/greet is a delayed send: it starts at 00:01:00 UTC (in 1m).')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perdure.cli.render import duration, parse_timestamp, when
from perdure.protocol.ids import (
    CANCEL_SIGNAL_INDEX,
    FIRST_AWAKEABLE_SIGNAL_INDEX,
    AwakeableId,
    InvalidId,
    InvocationId,
)

Doc = Mapping[str, Any]

# Suspension combinators as the protocol numbers them (CombinatorType).
_COMBINATOR_WORDS = {1: "any of", 2: "all of", 3: "the first success of", 4: "all of"}
# The invoker's answer when it cannot open a stream to the deployment (server/invoker).
UNREACHABLE_CODES = frozenset({502, 503, 504})
JOURNAL_MISMATCH = 570
PROTOCOL_VIOLATION = 571


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What `perdure explain` prints: reason (stable word), summary, facts, next commands."""

    reason: str
    summary: str
    details: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "summary": self.summary,
            "details": list(self.details),
            "next_steps": list(self.next_steps),
        }


@dataclass(frozen=True, slots=True)
class Context:
    """What else the server knows that bears on one invocation.

    deployments: registered deployments by id (None when not fetched).
    queue: the invocations waiting in the inbox of the invocation's key, oldest first.
    holder: the invocation holding the key's lock, when it is not the one explained.
    callee: what the explained invocation awaits from another invocation, explained one level.
    """

    now_ms: int
    deployments: Mapping[str, Doc] | None = None
    queue: Sequence[Doc] = ()
    holder: Doc | None = None
    callee: Diagnosis | None = None
    ingress_url: str = "http://127.0.0.1:8080"


def explain_invocation(inv: Doc, ctx: Context) -> Diagnosis:
    """The diagnosis for one invocation detail (GET /invocations/{id})."""
    status = str(inv.get("status", ""))
    rule = _RULES.get(status, _unknown_status)
    return rule(inv, ctx)


def not_found(invocation_id: str) -> Diagnosis:
    return Diagnosis(
        "not-found",
        f"The server has no invocation {invocation_id}.",
        (
            "Either it was never accepted (the ingress refused the request: unknown service or "
            "handler, bad input) or it completed and was purged when its retention ended.",
        ),
        (
            "perdure invocations list --status active   # what is in flight now",
            "perdure services list                      # what the ingress accepts",
        ),
    )


# --- one rule per status ------------------------------------------------------------------------


def _scheduled(inv: Doc, ctx: Context) -> Diagnosis:
    return Diagnosis(
        "scheduled",
        f"{inv.get('target')} is a delayed send: it starts at "
        f"{when(inv.get('scheduled_at'), ctx.now_ms)}.",
        (),
        (f"perdure invocations cancel {inv.get('id')}   # to drop it before it starts",),
    )


def _pending(inv: Doc, ctx: Context) -> Diagnosis:
    invocation_id = str(inv.get("id"))
    key = _key_name(inv)
    lock = inv.get("key_lock") or {}
    holder_id = lock.get("holder") or (ctx.holder or {}).get("id")
    position = next((i for i, q in enumerate(ctx.queue) if q.get("id") == invocation_id), None)
    details = []
    steps = []
    if holder_id:
        holder_state = ""
        if ctx.holder is not None:
            holder_state = f" ({ctx.holder.get('status')}, {ctx.holder.get('target')})"
        summary = (
            f"{inv.get('target')} waits in the inbox of {key}: invocation {holder_id}"
            f"{holder_state} holds the key, and exclusive handlers of a key run one at a time."
        )
        steps.append(f"perdure explain {holder_id}   # why the holder has not finished")
    else:
        summary = f"{inv.get('target')} waits in the inbox of {key} for the key's lock."
    if position == 0:
        details.append("It is next in line: it starts as soon as the key is released.")
    elif position is not None:
        ahead = ctx.queue[:position]
        details.append(
            f"{position} invocation(s) are queued ahead of it: "
            + ", ".join(str(q.get("id")) for q in ahead[:5])
            + (" …" if position > 5 else "")
        )
    elif lock.get("queued"):
        details.append(f"{lock['queued']} invocation(s) wait in this key's inbox.")
    if ctx.holder is not None and ctx.holder.get("status") in ("paused", "backing-off"):
        details.append(
            f"The holder is {ctx.holder.get('status')}: nothing behind it runs until it "
            "completes, is resumed and succeeds, or is killed."
        )
        steps.append(f"perdure invocations kill {holder_id}   # frees the key (the holder fails)")
    steps.append(f"perdure invocations cancel {invocation_id}   # to drop this one instead")
    return Diagnosis("waiting-for-lock", summary, tuple(details), tuple(steps))


def _ready(inv: Doc, ctx: Context) -> Diagnosis:
    return Diagnosis(
        "starting",
        f"{inv.get('target')} was accepted; its attempt is being started.",
        _deployment_facts(inv, ctx),
        (f"perdure explain {inv.get('id')}   # again in a moment",),
    )


def _running(inv: Doc, ctx: Context) -> Diagnosis:
    attempts = int(inv.get("attempts") or 0)
    details = list(_deployment_facts(inv, ctx))
    awaited = outstanding(inv, ctx)
    summary = f"{inv.get('target')} is running: attempt {attempts} is open on its deployment."
    if awaited:
        summary = (
            f"{inv.get('target')} is running (attempt {attempts} is open) and waits for "
            + _join(awaited)
            + "."
        )
    if inv.get("retry_count") and inv.get("last_failure"):
        details.append(
            f"It is a retry: {inv.get('retry_count')} attempt(s) failed since its last progress; "
            + _failure_text(inv)
        )
    steps = [
        f"perdure invocations describe {inv.get('id')}   # its journal so far",
        f"perdure invocations cancel {inv.get('id')}     # to stop it cleanly",
    ]
    if ctx.callee is not None:
        details.append(f"The callee: {ctx.callee.summary}")
    callee_id = awaited_callee(inv)
    if callee_id:
        steps.insert(0, f"perdure explain {callee_id}   # the invocation it waits for")
    return Diagnosis("running", summary, tuple(details), tuple(steps))


def _suspended(inv: Doc, ctx: Context) -> Diagnosis:
    invocation_id = str(inv.get("id"))
    awaited = outstanding(inv, ctx)
    tree = inv.get("waiting_for") or {}
    combinator = _COMBINATOR_WORDS.get(int(tree.get("t", 1) or 1), "any of")
    what = awaited[0] if len(awaited) == 1 else f"{combinator} " + _join(awaited)
    summary = f"{inv.get('target')} is suspended, waiting for {what or 'a notification'}."
    details = [
        "No attempt is open and nothing is held in memory: it resumes by itself when that "
        "arrives (or when it is cancelled)."
    ]
    steps = []
    for awakeable in _awakeables(inv):
        steps.append(
            f"curl -X POST {ctx.ingress_url}/restate/awakeables/{awakeable}/resolve "
            "-H 'content-type: application/json' -d '<value>'   # resolve the awakeable"
        )
    if ctx.callee is not None:
        details.append(f"The callee: {ctx.callee.summary}")
    callee_id = awaited_callee(inv)
    if callee_id:
        steps.append(f"perdure explain {callee_id}   # the invocation it waits for")
    if any(word.startswith("the durable promise") for word in awaited):
        details.append(
            f"A promise is completed by another handler of {_key_name(inv)} "
            "(ctx.promise(name).resolve or .reject)."
        )
    steps.append(f"perdure invocations cancel {invocation_id}   # to stop waiting")
    return Diagnosis("suspended", summary, tuple(details), tuple(steps))


def _backing_off(inv: Doc, ctx: Context) -> Diagnosis:
    invocation_id = str(inv.get("id"))
    retries = int(inv.get("retry_count") or 0)
    details = [f"Last error: {_failure_text(inv)}"]
    next_retry = inv.get("next_retry_at")
    if next_retry:
        details.append(f"Next retry at {when(next_retry, ctx.now_ms)}.")
    details.extend(_deployment_facts(inv, ctx))
    reason, cause, steps = _failure_cause(inv, ctx)
    summary = f"{inv.get('target')} is backing off after {retries} failed attempt(s){cause}."
    steps.append(f"perdure invocations kill {invocation_id}   # give up: fail it now")
    return Diagnosis(reason, summary, tuple(details), tuple(steps))


def _paused(inv: Doc, ctx: Context) -> Diagnosis:
    invocation_id = str(inv.get("id"))
    attempts = int(inv.get("attempts") or 0)
    details = [f"Last error: {_failure_text(inv)}"]
    details.extend(_deployment_facts(inv, ctx))
    _, cause, steps = _failure_cause(inv, ctx)
    if inv.get("key_lock"):
        details.append(
            f"It still holds {_key_name(inv)}: other exclusive calls on that key wait behind it."
        )
    summary = (
        f"{inv.get('target')} is paused after {attempts} attempt(s){cause}; retries stopped "
        "and it waits for an operator."
    )
    steps = [
        *steps,
        f"perdure invocations resume {invocation_id}   # retry now (after fixing the cause)",
        f"perdure invocations kill {invocation_id}     # give up: fail it",
    ]
    return Diagnosis("paused", summary, tuple(details), tuple(steps))


def _completed(inv: Doc, ctx: Context) -> Diagnosis:
    outcome = inv.get("outcome") or {}
    at = when(inv.get("completed_at"), ctx.now_ms)
    steps = [f"perdure invocations purge {inv.get('id')}   # forget it now (else at retention)"]
    if outcome.get("status") == "failure":
        code, message = outcome.get("code"), outcome.get("message")
        reason = "failed"
        journal = [e for e in inv.get("journal") or [] if isinstance(e, Mapping)]
        # A kill ends the invocation from outside: no output in its journal. A handler that
        # wrote the failure itself (say, passing on a killed callee's) was not killed.
        wrote_output = any(e.get("type") == "output_command" for e in journal)
        lowered = str(message).lower()
        if code == 409 and "kill" in lowered and not wrote_output:
            reason = "killed"
        elif code == 409 and "cancel" in lowered:
            reason = "cancelled"
        details = []
        failed_call = next(
            (e for e in journal if e.get("type") == "call_command" and _call_failed(e, journal)),
            None,
        )
        if inv.get("target_service_ty") != "Workflow":
            steps.insert(
                0, f"perdure invocations restart {inv.get('id')}   # run it again, same input"
            )
        if wrote_output and failed_call is not None:
            details.append(
                f"The failure came from its call to {failed_call.get('target')}"
                + (f" ({callee})" if (callee := _callee_id(failed_call, journal)) else "")
                + "."
            )
        return Diagnosis(
            reason,
            f"{inv.get('target')} completed at {at} with a failure: [{code}] {message}.",
            tuple(details),
            tuple(steps),
        )
    return Diagnosis(
        "succeeded",
        f"{inv.get('target')} completed successfully at {at}.",
        (),
        tuple(steps),
    )


def _unknown_status(inv: Doc, ctx: Context) -> Diagnosis:
    return Diagnosis(
        "unknown",
        f"{inv.get('target')} has status '{inv.get('status')}', which this CLI does not know.",
        (),
        (f"perdure invocations describe {inv.get('id')}",),
    )


_RULES = {
    "scheduled": _scheduled,
    "pending": _pending,
    "ready": _ready,
    "running": _running,
    "suspended": _suspended,
    "backing-off": _backing_off,
    "paused": _paused,
    "completed": _completed,
}


# --- shared facts --------------------------------------------------------------------------------


def _key_name(inv: Doc) -> str:
    return f"{inv.get('target_service_name')}/{inv.get('target_service_key')}"


def _join(items: Sequence[str]) -> str:
    return "; ".join(items)


def _failure_text(inv: Doc) -> str:
    failure = inv.get("last_failure")
    if not failure:
        return "none recorded"
    text = f"[{failure.get('code')}] {failure.get('message')}"
    if failure.get("related_command"):
        text += f" (at {failure['related_command']})"
    return text


def _failure_cause(inv: Doc, ctx: Context) -> tuple[str, str, list[str]]:
    """(reason, ': <cause>' for the summary, next steps) from the last failure."""
    failure = inv.get("last_failure") or {}
    code = failure.get("code")
    message = str(failure.get("message") or "")
    deployment_id = inv.get("deployment_id")
    if deployment_id and ctx.deployments is not None and deployment_id not in ctx.deployments:
        return (
            "deployment-removed",
            f": its deployment {deployment_id} was removed",
            [
                "perdure deployments register <uri>   # its service must be served again",
            ],
        )
    if code in UNREACHABLE_CODES or "cannot connect" in message:
        uri = _deployment_uri(inv, ctx) or "its deployment"
        return (
            "deployment-unreachable",
            f": the server cannot reach {uri}",
            [f"# start the service at {uri} (or register where it now runs)"],
        )
    if code == JOURNAL_MISMATCH:
        return (
            "journal-mismatch",
            ": the handler's code no longer replays its journal (non-determinism, code 570)",
            ["# deploy code that takes the recorded path, or kill it"],
        )
    if code == PROTOCOL_VIOLATION:
        return ("protocol-violation", ": the SDK broke the protocol (code 571)", [])
    return (
        "retrying",
        ": the handler keeps failing",
        ["# fix the handler, deploy it, then `perdure deployments register <uri> --force`"],
    )


def _deployment_uri(inv: Doc, ctx: Context) -> str | None:
    deployment_id = inv.get("deployment_id")
    if not deployment_id or ctx.deployments is None:
        return None
    deployment = ctx.deployments.get(str(deployment_id))
    return str(deployment.get("uri")) if deployment else None


def _deployment_facts(inv: Doc, ctx: Context) -> tuple[str, ...]:
    deployment_id = inv.get("deployment_id")
    if not deployment_id or ctx.deployments is None:
        return ()
    deployment = ctx.deployments.get(str(deployment_id))
    if deployment is None:
        return (f"Its deployment {deployment_id} is no longer registered.",)
    return (f"Deployment: {deployment_id} at {deployment.get('uri')}.",)


# --- what a journal waits for --------------------------------------------------------------------


def outstanding(inv: Doc, ctx: Context) -> list[str]:
    """What the invocation awaits, in words.

    Suspended: the leaves of its suspension tree. Otherwise: every command of the journal
    whose result has not arrived yet (a running handler may await any of them).
    """
    journal = [e for e in inv.get("journal") or [] if isinstance(e, Mapping)]
    by_completion = {e["completion_id"]: e for e in journal if "completion_id" in e}
    arrived = {str(e["notification"]) for e in journal if "notification" in e}
    tree = inv.get("waiting_for")
    keys = _tree_leaves(tree) if isinstance(tree, Mapping) else []
    # SDKs always await the cancel signal besides what the handler awaits: it says nothing.
    keys = [k for k in keys if k != f"s:{CANCEL_SIGNAL_INDEX}"] or keys
    if not keys:
        keys = [f"c:{c}" for c in by_completion if f"c:{c}" not in arrived]
    words = []
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "c" and value.isdigit() and int(value) in by_completion:
            words.append(_describe_command(by_completion[int(value)], journal, ctx))
        elif kind == "s" and value.isdigit():
            words.append(_describe_signal(str(inv.get("id")), int(value)))
        elif kind == "n":
            words.append(f"the signal '{value}'")
        else:
            words.append(f"notification {key}")
    return words


def _tree_leaves(tree: Mapping[str, Any]) -> list[str]:
    leaves = [str(x) for x in tree.get("l", [])]
    for child in tree.get("n", []) or []:
        if isinstance(child, Mapping):
            leaves.extend(_tree_leaves(child))
    return leaves


def _describe_command(command: Doc, journal: Sequence[Doc], ctx: Context) -> str:
    kind = str(command.get("type", ""))
    named = f" '{command['name']}'" if command.get("name") else ""
    if kind == "sleep_command":
        return f"a timer{named} due at {when(command.get('wake_up_at'), ctx.now_ms)}"
    if kind == "call_command":
        callee = _callee_id(command, journal)
        who = f" ({callee})" if callee else ""
        return f"the result of a call to {command.get('target')}{who}"
    if kind in ("get_promise_command", "peek_promise_command"):
        return f"the durable promise '{command.get('promise')}'"
    if kind == "run_command":
        return f"the result of ctx.run{named}"
    if kind in ("attach_invocation_command", "get_invocation_output_command"):
        return f"the output of invocation {command.get('invocation_id', '(by key)')}"
    if kind == "get_lazy_state_command":
        return f"the state value '{command.get('state_key')}'"
    return f"the result of {kind.removesuffix('_command').replace('_', ' ')}{named}"


def _callee_id(command: Doc, journal: Sequence[Doc]) -> str | None:
    idx = command.get("invocation_id_completion_id")
    if idx is None:
        return None
    for entry in journal:
        if entry.get("notification") == f"c:{idx}" and entry.get("invocation_id"):
            return str(entry["invocation_id"])
    return None


def _call_failed(command: Doc, journal: Sequence[Doc]) -> bool:
    key = f"c:{command.get('completion_id')}"
    return any(e.get("notification") == key and e.get("failed") for e in journal)


def awaited_callee(inv: Doc) -> str | None:
    """The invocation id of a call this invocation awaits, if any (to explain it too)."""
    journal = [e for e in inv.get("journal") or [] if isinstance(e, Mapping)]
    arrived = {str(e["notification"]) for e in journal if "notification" in e}
    for entry in journal:
        if entry.get("type") == "call_command" and f"c:{entry.get('completion_id')}" not in arrived:
            callee = _callee_id(entry, journal)
            if callee:
                return callee
    return None


def _describe_signal(invocation_id: str, index: int) -> str:
    if index == CANCEL_SIGNAL_INDEX:
        return "the cancel signal"
    if index >= FIRST_AWAKEABLE_SIGNAL_INDEX:
        awakeable = _awakeable_id(invocation_id, index)
        return f"the awakeable {awakeable}" if awakeable else f"awakeable signal {index}"
    return f"signal {index}"


def _awakeable_id(invocation_id: str, index: int) -> str | None:
    try:
        return AwakeableId(InvocationId.parse(invocation_id), index).to_str()
    except InvalidId:
        return None


def _awakeables(inv: Doc) -> list[str]:
    tree = inv.get("waiting_for")
    keys = _tree_leaves(tree) if isinstance(tree, Mapping) else []
    out = []
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "s" and value.isdigit() and int(value) >= FIRST_AWAKEABLE_SIGNAL_INDEX:
            awakeable = _awakeable_id(str(inv.get("id")), int(value))
            if awakeable:
                out.append(awakeable)
    return out


# --- a service or a key --------------------------------------------------------------------------


def explain_target(
    service: str,
    key: str | None,
    info: Doc | None,
    registered: Sequence[str],
    active: Sequence[Doc],
    now_ms: int,
    lock: Doc | None = None,
) -> Diagnosis:
    """A service (or one key of an object/workflow): registered where, and what is in flight.

    `info` is GET /services/{name} (None when unknown); `active` the active invocations on the
    service (and key), newest first as the admin API lists them; `lock` the key's lock as an
    invocation detail shows it (`{"holder": id, "queued": n}`).
    """
    name = f"{service}/{key}" if key is not None else service
    if info is None:
        known = ", ".join(registered) or "none yet"
        return Diagnosis(
            "service-not-registered",
            f"No service '{service}' is registered, so the ingress refuses its invocations.",
            (f"Registered services: {known}.",),
            ("perdure deployments register <uri>   # the endpoint that serves it",),
        )
    details = [
        f"{service} is a {info.get('ty')} served by deployment {info.get('deployment_id')} "
        f"(revision {info.get('revision')})."
    ]
    if key is not None and info.get("ty") == "Service":
        details.append(f"{service} is a plain service: keys mean nothing to it.")
    oldest_first = list(reversed(active))
    if not oldest_first:
        return Diagnosis(
            "idle",
            f"Nothing is in flight on {name}.",
            tuple(details),
            (f"perdure invocations list --service {service}   # recent invocations",),
        )
    counts: dict[str, int] = {}
    for inv in oldest_first:
        counts[str(inv.get("status"))] = counts.get(str(inv.get("status")), 0) + 1
    summary = f"{len(oldest_first)} invocation(s) in flight on {name}: " + ", ".join(
        f"{n} {s}" for s, n in counts.items()
    )
    steps = []
    holder_id = (lock or {}).get("holder")
    if key is not None and holder_id:
        holder = next((i for i in oldest_first if i.get("id") == holder_id), None)
        if holder is not None:
            since = now_ms - (parse_timestamp(holder.get("created_at")) or now_ms)
            details.append(
                f"{holder_id} holds the key: {holder.get('target_handler_name')}, "
                f"{holder.get('status')}, created {duration(since)} ago."
            )
        else:
            details.append(f"{holder_id} holds the key.")
        steps.append(f"perdure explain {holder_id}   # why the holder has not finished")
    queued = [i for i in oldest_first if i.get("status") == "pending"]
    if queued:
        details.append(
            f"{len(queued)} queued in the inbox, oldest first: "
            + ", ".join(str(q.get("id")) for q in queued[:5])
            + (" …" if len(queued) > 5 else "")
        )
    if not steps:
        steps.append(f"perdure explain {oldest_first[0].get('id')}")
    return Diagnosis("in-flight", summary + ".", tuple(details), tuple(steps))
