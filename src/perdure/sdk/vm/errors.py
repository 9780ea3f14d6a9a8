"""Errors the replay VM reports: a protocol code, a sentence naming the fix, the command."""

from __future__ import annotations

from dataclasses import dataclass

from perdure.protocol.errors import (
    CLOSED,
    INTERNAL,
    JOURNAL_MISMATCH,
    PROTOCOL_VIOLATION,
    UNSUPPORTED_FEATURE,
    describe_code,
)
from perdure.protocol.messages import type_name
from perdure.protocol.pb import protocol_pb2 as pb

__all__ = [
    "CLOSED",
    "INTERNAL",
    "JOURNAL_MISMATCH",
    "PROTOCOL_VIOLATION",
    "UNSUPPORTED_FEATURE",
    "RelatedCommand",
    "VMError",
]


@dataclass(frozen=True, slots=True)
class RelatedCommand:
    """The journal command an error is about: its index, its name (may be empty), its type."""

    index: int
    message_type: int
    name: str = ""

    def describe(self) -> str:
        named = f" {self.name!r}" if self.name else ""
        return f"{type_name(self.message_type)}{named} (command #{self.index})"


class VMError(Exception):
    """A failure of the invocation attempt, as the VM reports it in its ErrorMessage.

    ``code`` is a protocol code (570 journal mismatch, 571 protocol violation, 573 unsupported
    feature, 598 closed) or an HTTP-like status for user errors. Once the VM has raised a
    VMError it is failed for good: every later call raises the same error again.

    >>> err = VMError(570, "the journal says otherwise")
    >>> str(err)
    '570 journal mismatch: the journal says otherwise'
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        related: RelatedCommand | None = None,
        stacktrace: str = "",
        next_retry_delay_ms: int | None = None,
        behavior: int = pb.RETRY,
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.related = related
        self.stacktrace = stacktrace
        self.next_retry_delay_ms = next_retry_delay_ms
        self.behavior = behavior

    def __str__(self) -> str:
        where = f" [at {self.related.describe()}]" if self.related is not None else ""
        return f"{describe_code(self.code)}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"VMError({self.code}, {self.message!r}, related={self.related!r})"

    def with_related(self, related: RelatedCommand | None) -> VMError:
        """The same error about ``related``, unless it already names a command."""
        if self.related is not None or related is None:
            return self
        return self._copy(related=related)

    def with_behavior(self, behavior: int) -> VMError:
        """The same error asking the server to retry, pause or fail (ErrorBehavior)."""
        return self if behavior == self.behavior else self._copy(behavior=behavior)

    def _copy(
        self,
        *,
        related: RelatedCommand | None = None,
        next_retry_delay_ms: int | None = None,
        behavior: int | None = None,
    ) -> VMError:
        return VMError(
            self.code,
            self.message,
            related=related if related is not None else self.related,
            stacktrace=self.stacktrace,
            next_retry_delay_ms=(
                next_retry_delay_ms if next_retry_delay_ms is not None else self.next_retry_delay_ms
            ),
            behavior=behavior if behavior is not None else self.behavior,
        )

    def to_message(self) -> pb.ErrorMessage:
        """The ErrorMessage frame that ends the attempt with this error."""
        msg = pb.ErrorMessage(code=self.code, message=self.message, stacktrace=self.stacktrace)
        if self.related is not None:
            msg.related_command_index = self.related.index
            msg.related_command_type = self.related.message_type
            if self.related.name:
                msg.related_command_name = self.related.name
        if self.next_retry_delay_ms is not None:
            msg.next_retry_delay = self.next_retry_delay_ms
        if self.behavior != pb.RETRY:
            msg.behavior = self.behavior  # type: ignore[assignment]
        return msg


# --- The catalogue --------------------------------------------------------------------------
# One function per error the VM raises, so that every message is written once, says what went
# wrong in the user's terms, and says what to do.

_NONDETERMINISM_FIX = (
    "The handler is not deterministic, or its code changed while this invocation was in "
    "flight. Keep handlers deterministic (side effects in ctx.run; ctx.random(), ctx.uuid() "
    "and ctx.time() instead of random, uuid and time), and register changed code as a new "
    "deployment so that running invocations finish on the code that started them."
)


def command_mismatch(index: int, journaled: str, issued: str) -> VMError:
    return VMError(
        JOURNAL_MISMATCH,
        f"replaying the journal, command #{index} does not match: the journal recorded "
        f"{journaled}, but the handler now issues {issued}. {_NONDETERMINISM_FIX}",
    )


def journal_too_long(index: int, journaled: str) -> VMError:
    return VMError(
        JOURNAL_MISMATCH,
        f"the handler returned while replaying, but the journal holds more commands (next: "
        f"{journaled}, command #{index}). {_NONDETERMINISM_FIX}",
    )


def await_not_replayable(awaiting: str) -> VMError:
    return VMError(
        JOURNAL_MISMATCH,
        f"replaying the journal, the handler awaits {awaiting}, which the journal never saw "
        f"complete although it records later commands: an await was added or moved. "
        f"{_NONDETERMINISM_FIX}",
    )


def unexpected_message(message_type: int, phase: str) -> VMError:
    return VMError(
        PROTOCOL_VIOLATION,
        f"the server sent a {type_name(message_type)} message while the invocation was "
        f"{phase}, where the service protocol does not allow one; the server and this SDK "
        "disagree about the stream (a server bug, or a proxy that mixed up two streams)",
    )


def unexpected_operation(operation: str, phase: str) -> VMError:
    return VMError(
        PROTOCOL_VIOLATION,
        f"{operation} is not possible while the invocation is {phase}; this is a bug in the "
        "SDK's driving loop (the VM must be fed the whole replayed journal first)",
    )


def closed(operation: str) -> VMError:
    return VMError(
        CLOSED,
        f"{operation} after the invocation attempt ended (it completed, suspended or failed); "
        "handler code kept running after the SDK stopped it, e.g. in a task it started, or "
        "after catching BaseException",
    )


def input_closed_too_early(received: int, expected: int) -> VMError:
    return VMError(
        PROTOCOL_VIOLATION,
        f"the server closed the stream after {received} of the {expected} journal entries it "
        "announced in its StartMessage; the attempt cannot replay a partial journal",
    )


def no_known_entries() -> VMError:
    return VMError(
        PROTOCOL_VIOLATION,
        "the StartMessage announces 0 known entries, but every journal starts with its input "
        "command; the server is not speaking the service protocol V5+",
    )


def bad_state_key() -> VMError:
    return VMError(
        PROTOCOL_VIOLATION,
        "the StartMessage's state map has a key that is not UTF-8; state keys are strings "
        "in every Restate SDK, so the server's state for this key is damaged",
    )


def bad_run_ack(completion_id: int) -> VMError:
    return VMError(
        PROTOCOL_VIOLATION,
        f"the server acknowledged a ctx.run proposal for completion {completion_id}, which "
        "this attempt never proposed (or already saw acknowledged)",
    )


def unsupported_feature(feature: str, version: int, needed: int) -> VMError:
    return VMError(
        UNSUPPORTED_FEATURE,
        f"{feature} needs service protocol v{needed} or newer, but this invocation speaks "
        f"v{version}; upgrade the server (or re-register the deployment so that a newer "
        f"protocol is negotiated), or stop using {feature}",
    )


def invalid_argument(what: str) -> VMError:
    return VMError(INTERNAL, f"invalid argument: {what}")


def malformed_entry(index: int, detail: str) -> VMError:
    return VMError(
        PROTOCOL_VIOLATION,
        f"journal command #{index} cannot be read ({detail}); the journal is damaged or was "
        "written by an incompatible SDK",
    )
