"""The VM's phases and the one table of transitions between them.

Theory of operation. An attempt starts WAITING_START; the StartMessage says how many journal
entries the server will replay, and the VM stays WAITING_ENTRIES until it has them all. It then
REPLAYS: user code runs from the top and every command it issues is matched against the
journal instead of being sent. When the last replayed command has been matched the VM is
PROCESSING: new commands go to the server. The attempt ends CLOSED, after exactly one of
EndMessage, SuspensionMessage or ErrorMessage.

Everything that changes the phase goes through ``transition``, and the table below is the
whole of it: an event that is not listed for the current phase is illegal, and the VM turns
it into a protocol error (or, when already closed, into a "closed" error that writes nothing).
The error itself is sticky: the VM keeps it and raises it again on every later call (see
``VM._fail``), in the manner of h11's ERROR state and sdk-shared-core's ``do_transition``.
"""

from __future__ import annotations

import enum

__all__ = ["TRANSITIONS", "Event", "IllegalTransition", "Phase", "transition"]


class Phase(enum.Enum):
    WAITING_START = "waiting for the StartMessage"
    WAITING_ENTRIES = "receiving the journal to replay"
    REPLAYING = "replaying"
    PROCESSING = "processing"
    CLOSED = "closed"


class Event(enum.Enum):
    """What happened to the VM; each is named for the fact, in the past tense."""

    START_RECEIVED = "a StartMessage arrived"
    COMMAND_RECEIVED = "a journal command arrived"
    NOTIFICATION_RECEIVED = "a notification arrived"
    RUN_ACK_RECEIVED = "a ctx.run proposal was acknowledged"
    ENTRIES_RECEIVED = "the last journal entry to replay arrived"
    INPUT_CLOSED = "the server closed its side of the stream"
    COMMAND_ISSUED = "user code issued a command"
    HANDLE_CREATED = "user code created an awakeable or signal handle"
    AWAITED = "user code awaited"
    REPLAY_FINISHED = "the last replayed command was matched"
    ENDED = "the invocation ended"
    SUSPENDED = "the invocation suspended"
    FAILED = "the attempt failed"


P = Phase
E = Event

_OPERATIONAL = (P.REPLAYING, P.PROCESSING)

TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (P.WAITING_START, E.START_RECEIVED): P.WAITING_ENTRIES,
    (P.WAITING_ENTRIES, E.COMMAND_RECEIVED): P.WAITING_ENTRIES,
    (P.WAITING_ENTRIES, E.NOTIFICATION_RECEIVED): P.WAITING_ENTRIES,
    (P.WAITING_ENTRIES, E.ENTRIES_RECEIVED): P.REPLAYING,
    (P.REPLAYING, E.REPLAY_FINISHED): P.PROCESSING,
    (P.PROCESSING, E.ENDED): P.CLOSED,
    (P.PROCESSING, E.SUSPENDED): P.CLOSED,
    # Late arrivals after the end are harmless: the server raced our End or Suspension.
    (P.CLOSED, E.NOTIFICATION_RECEIVED): P.CLOSED,
    (P.CLOSED, E.RUN_ACK_RECEIVED): P.CLOSED,
    (P.CLOSED, E.INPUT_CLOSED): P.CLOSED,
    # Ending twice is tolerated, as in sdk-shared-core: the output is already closed.
    (P.CLOSED, E.ENDED): P.CLOSED,
    # An acknowledgement answers a proposal, and proposals are only made while processing.
    (P.PROCESSING, E.RUN_ACK_RECEIVED): P.PROCESSING,
}
for _phase in _OPERATIONAL:
    TRANSITIONS[(_phase, E.NOTIFICATION_RECEIVED)] = _phase
    TRANSITIONS[(_phase, E.INPUT_CLOSED)] = _phase
    TRANSITIONS[(_phase, E.COMMAND_ISSUED)] = _phase
    TRANSITIONS[(_phase, E.HANDLE_CREATED)] = _phase
    TRANSITIONS[(_phase, E.AWAITED)] = _phase
for _phase in Phase:
    if _phase is not P.CLOSED:
        TRANSITIONS[(_phase, E.FAILED)] = P.CLOSED


class IllegalTransition(Exception):
    """``event`` cannot happen in ``phase``."""

    def __init__(self, phase: Phase, event: Event) -> None:
        super().__init__(f"{event.value} while {phase.value}")
        self.phase = phase
        self.event = event


def transition(phase: Phase, event: Event) -> Phase:
    """The phase after ``event``; raises IllegalTransition for a pair the table does not list.

    >>> transition(Phase.REPLAYING, Event.REPLAY_FINISHED)
    <Phase.PROCESSING: 'processing'>
    """
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalTransition(phase, event) from None
