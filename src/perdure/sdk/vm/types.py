"""The values the VM hands out and takes in: input, handles, targets, progress, options."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "ANY_COMPLETED",
    "CANCEL_SIGNAL_RECEIVED",
    "SUSPENDED",
    "AnyCompleted",
    "AwaitingOnPolicy",
    "CallHandles",
    "CancelSignalReceived",
    "ExecuteRun",
    "IdempotentRequestTarget",
    "Input",
    "InvocationTarget",
    "Progress",
    "RunHandle",
    "Suspended",
    "VMOptions",
    "WaitExternalProgress",
    "WorkflowTarget",
]


@dataclass(frozen=True, slots=True)
class Input:
    """What the invocation was started with: its identity, its key, and the request."""

    invocation_id: str
    """The printable invocation id (``inv_1...``), StartMessage.debug_id."""
    raw_id: bytes
    """StartMessage.id: the id bytes awakeable ids are built from."""
    key: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    random_seed: int
    scope: str | None = None
    limit_key: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class CallHandles:
    """A call's two notifications: the callee's invocation id, then its result."""

    invocation_id_handle: int
    result_handle: int


@dataclass(frozen=True, slots=True)
class RunHandle:
    """A ctx.run: its handle, and whether its result is already journaled (do not execute)."""

    handle: int
    replayed: bool


@dataclass(frozen=True, slots=True)
class WorkflowTarget:
    """A workflow run, addressed by workflow name and key."""

    workflow_name: str
    workflow_key: str
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class IdempotentRequestTarget:
    """An invocation made with an idempotency key, addressed by that key."""

    service_name: str
    handler_name: str
    idempotency_key: str
    service_key: str | None = None
    scope: str | None = None


InvocationTarget = str | WorkflowTarget | IdempotentRequestTarget
"""What attach and get-output address: an invocation id, a workflow, or an idempotent request."""


# --- What do_progress answers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnyCompleted:
    """Enough is ready to make progress on the await point: take the notifications."""


@dataclass(frozen=True, slots=True)
class ExecuteRun:
    """Run the ctx.run closure of ``handle`` now, then propose its result."""

    handle: int


@dataclass(frozen=True, slots=True)
class WaitExternalProgress:
    """Nothing to do until more input arrives and/or a running closure proposes its result."""

    waiting_input: bool
    waiting_run: bool


@dataclass(frozen=True, slots=True)
class CancelSignalReceived:
    """The invocation was cancelled; child calls were cancelled too. Raise into user code."""


@dataclass(frozen=True, slots=True)
class Suspended:
    """The VM wrote a SuspensionMessage and closed: stop user code, flush, and end."""


ANY_COMPLETED = AnyCompleted()
CANCEL_SIGNAL_RECEIVED = CancelSignalReceived()
SUSPENDED = Suspended()

Progress = AnyCompleted | ExecuteRun | WaitExternalProgress | CancelSignalReceived | Suspended


class AwaitingOnPolicy(enum.Enum):
    """When the VM tells a V7 server what it waits on (AwaitingOnMessage, a hint only)."""

    ALWAYS = "always"
    UNLESS_RUNNING = "unless a ctx.run closure is executing"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class VMOptions:
    """Knobs of the VM; the defaults are sdk-shared-core's.

    ``implicit_cancellation`` makes every await also wait for the cancellation signal, and on
    cancellation cancels the calls this invocation made (``cancel_child_calls``) and, if asked,
    the one-way calls too (``cancel_child_sends``). ``on_journal_mismatch`` says what the
    server should do with an invocation whose code no longer matches its journal.
    """

    implicit_cancellation: bool = True
    cancel_child_calls: bool = True
    cancel_child_sends: bool = False
    awaiting_on: AwaitingOnPolicy = AwaitingOnPolicy.UNLESS_RUNNING
    on_journal_mismatch: int = 0
    """The ErrorBehavior of a 570 at V7+: RETRY (0, the server's retry policy), PAUSE (1, keep
    the invocation for an operator to fix the code and resume) or FAIL (2)."""
