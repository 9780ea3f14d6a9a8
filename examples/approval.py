"""An approval gate: wait for a decision, and remind people, more senior each time, until it comes.

The workflow races the ``decision`` promise against a durable timer. When the timer wins it
sends a reminder to the next person up the chain and waits again, for twice as long. The
promise future is created once and raced again each round: it stays the same journal entry.

Run it with ``perdure dev examples/approval.py``, then::

    curl localhost:8080/Approval/po-42/run/send \\
        --json '{"title": "New laptop", "remind_after_ms": 2000}'
    curl localhost:8080/Approval/po-42/status
    curl localhost:8080/Approval/po-42/decide --json '{"approved": true, "by": "manager"}'
    curl localhost:8080/restate/workflow/Approval/po-42/attach
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import perdure

#: Who is reminded after each unanswered round; the last one keeps being reminded.
ESCALATION = ["requester", "team-lead", "manager", "director"]


@dataclass
class ApprovalRequest:
    title: str
    remind_after_ms: int = 60_000


@dataclass
class Decision:
    approved: bool
    by: str


@dataclass
class Outcome:
    approved: bool
    by: str
    reminded: list[str] = field(default_factory=list)


#: The reminders sent by this process: (request key, person), oldest first.
reminders_sent: list[tuple[str, str]] = []

approval = perdure.Workflow("Approval", description="Waits for a decision, escalating reminders.")


def send_reminder(key: str, person: str, title: str) -> str:
    reminders_sent.append((key, person))
    print(f"[reminder] {person}: please decide on {title!r} ({key})")
    return person


@approval.main()
async def run(ctx: perdure.WorkflowContext, request: ApprovalRequest) -> Outcome:
    decision = ctx.promise("decision", type_hint=Decision).value()
    wait = timedelta(milliseconds=request.remind_after_ms)
    reminded: list[str] = []
    while True:
        ctx.set("status", f"waiting ({len(reminded)} reminders sent)")
        winner, value = await perdure.select(decision=decision, timeout=ctx.sleep(wait))
        if winner == "decision":
            break
        person = ESCALATION[min(len(reminded), len(ESCALATION) - 1)]
        reminded.append(
            await ctx.run(f"remind {person}", send_reminder, ctx.key(), person, request.title)
        )
        ctx.set("reminded", reminded)
        wait *= 2
    ctx.set("status", "approved" if value.approved else "rejected")
    return Outcome(value.approved, value.by, reminded)


@approval.handler()
async def decide(ctx: perdure.WorkflowSharedContext, decision: Decision) -> None:
    await ctx.promise("decision", type_hint=Decision).resolve(decision)


@approval.handler()
async def status(ctx: perdure.WorkflowSharedContext) -> str:
    return await ctx.get("status", type_hint=str) or "not started"


@approval.handler()
async def reminded(ctx: perdure.WorkflowSharedContext) -> list[str]:
    return await ctx.get("reminded", type_hint=list[str]) or []


services = [approval]

if __name__ == "__main__":
    perdure.serve(services, port=9080)
