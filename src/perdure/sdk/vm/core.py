"""The VM's core: phases, the input stream, the output buffer, and the sticky error state."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from google.protobuf.message import Message

from perdure.protocol.errors import JOURNAL_MISMATCH, ProtocolError
from perdure.protocol.framing import FrameDecoder, encode_message
from perdure.protocol.messages import Frame, MessageKind, MessageType, message_type_of, type_name
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import errors
from perdure.sdk.vm.eager_state import EagerState
from perdure.sdk.vm.errors import RelatedCommand, VMError
from perdure.sdk.vm.journal import Journal
from perdure.sdk.vm.machine import Event, IllegalTransition, Phase, transition
from perdure.sdk.vm.notifications import Results, notification_from_frame
from perdure.sdk.vm.runs import RunRegistry
from perdure.sdk.vm.types import VMOptions

__all__ = ["TrackedCall", "VMCore"]

T = MessageType


@dataclass(slots=True)
class TrackedCall:
    """A call made by this invocation: its invocation-id handle, and the id once known."""

    handle: int
    invocation_id: str | None = None


class VMCore:
    """The state every part of the VM shares, and the only code that changes its phase."""

    def __init__(self, version: int, options: VMOptions | None = None) -> None:
        self.version = version
        self.options = options or VMOptions()
        self._decoder = FrameDecoder()
        self._phase = Phase.WAITING_START
        self._error: VMError | None = None
        self._output: list[bytes] = []
        self._output_closed = False
        self._start: pb.StartMessage | None = None
        self._entries_received = 0
        self._input_closed = False
        self._journal = Journal()
        self._results = Results()
        self._runs = RunRegistry()
        self._eager = EagerState()
        # True from the switch to processing until the first new command: only then does a
        # failing ctx.run count the retries the server reported in the StartMessage.
        self._processing_first_entry = False
        # Calls to cancel if this invocation is cancelled (implicit cancellation).
        self._tracked_calls: list[TrackedCall] = []
        self._cancel_consumed = False
        self._last_awaiting_on: pb.Future | None = None

    # -- introspection -------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def is_replaying(self) -> bool:
        return self._phase is Phase.REPLAYING

    @property
    def is_processing(self) -> bool:
        return self._phase is Phase.PROCESSING

    @property
    def is_closed(self) -> bool:
        return self._phase is Phase.CLOSED

    @property
    def error(self) -> VMError | None:
        """The error that failed the attempt, if it failed."""
        return self._error

    @property
    def last_command(self) -> RelatedCommand | None:
        """The last command user code issued (written or replayed)."""
        return self._journal.last

    def is_ready_to_execute(self) -> bool:
        """True once the StartMessage and the whole journal to replay have arrived."""
        if self._error is not None:
            raise self._error
        return self._phase in (Phase.REPLAYING, Phase.PROCESSING)

    # -- bytes in, bytes out ---------------------------------------------------------------

    def notify_input(self, data: bytes) -> None:
        """Feed bytes of the server's stream (cut anywhere)."""
        if self._error is not None or self._phase is Phase.CLOSED:
            return  # the server raced our end; nothing it says can matter now
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._fail_quietly(VMError(exc.code, str(exc)))
            return
        for frame in frames:
            try:
                self._on_frame(frame)
            except ProtocolError as exc:  # a payload that does not parse as its type says
                self._fail_quietly(VMError(exc.code, str(exc)))
                return
            except VMError:
                return

    def notify_input_closed(self) -> None:
        """The server closed its side: nothing more will arrive; awaits may now suspend."""
        self._input_closed = True
        if self._error is not None:
            return
        try:
            self._decoder.eof()
            if self._phase in (Phase.WAITING_START, Phase.WAITING_ENTRIES):
                known = self._start.known_entries if self._start is not None else 0
                self._fail(errors.input_closed_too_early(self._entries_received, known))
            self._advance(Event.INPUT_CLOSED)
        except ProtocolError as exc:
            self._fail_quietly(VMError(exc.code, str(exc)))
        except VMError:
            pass

    def take_output(self) -> bytes:
        """The frames written since the last call (b"" when none)."""
        data = b"".join(self._output)
        self._output.clear()
        return data

    @property
    def is_output_closed(self) -> bool:
        """True once End, Suspension or Error was written: the response can be finished."""
        return self._output_closed

    def _on_frame(self, frame: Frame) -> None:
        t = frame.message_type
        kind = frame.kind
        if t == T.START:
            self._advance_on_input(Event.START_RECEIVED, t)
            self._on_start(frame.decode_as(pb.StartMessage))
        elif kind in (MessageKind.COMMAND, MessageKind.CUSTOM):
            self._advance_on_input(Event.COMMAND_RECEIVED, t)
            self._journal.add_replayed(frame)
            self._count_entry()
        elif kind is MessageKind.NOTIFICATION:
            self._advance_on_input(Event.NOTIFICATION_RECEIVED, t)
            try:
                nid, result = notification_from_frame(frame)
            except ProtocolError as exc:
                self._fail(VMError(exc.code, str(exc)))
            self._results.enqueue(nid, result)
            self._last_awaiting_on = None  # the server drops its hint on any notification
            self._count_entry()
        elif t == T.PROPOSE_RUN_COMPLETION_ACK:
            self._advance_on_input(Event.RUN_ACK_RECEIVED, t)
            ack = frame.decode_as(pb.ProposeRunCompletionAckMessage)
            if not self._results.enqueue_run_ack(ack.completion_id):
                self._fail(errors.bad_run_ack(ack.completion_id))
        else:
            self._fail(errors.unexpected_message(t, self._phase.value))

    def _advance_on_input(self, event: Event, message_type: int) -> None:
        self._advance(
            event, on_illegal=lambda: errors.unexpected_message(message_type, self._phase.value)
        )

    def _on_start(self, msg: pb.StartMessage) -> None:
        self._start = msg
        try:
            entries = [(e.key.decode("utf-8"), e.value) for e in msg.state_map]
        except UnicodeDecodeError:
            self._fail(errors.bad_state_key())
        self._eager = EagerState(entries, partial=msg.partial_state)
        if msg.known_entries == 0:
            self._fail(errors.no_known_entries())

    def _count_entry(self) -> None:
        if self._phase is not Phase.WAITING_ENTRIES:
            return
        self._entries_received += 1
        assert self._start is not None
        if self._entries_received == self._start.known_entries:
            self._advance(Event.ENTRIES_RECEIVED)

    # -- transitions, output, failure --------------------------------------------------------

    def _advance(
        self,
        event: Event,
        operation: str | None = None,
        *,
        on_illegal: Callable[[], VMError] | None = None,
    ) -> None:
        if self._error is not None:
            raise self._error
        try:
            self._phase = transition(self._phase, event)
        except IllegalTransition:
            if self._phase is Phase.CLOSED:
                raise errors.closed(operation or event.value) from None
            if on_illegal is not None:
                self._fail(on_illegal())
            self._fail(errors.unexpected_operation(operation or event.value, self._phase.value))

    def _write(self, msg: Message, *, requested_ack: bool = False) -> None:
        if not self._output_closed:
            self._output.append(encode_message(msg, requested_ack=requested_ack))

    def _close_output(self) -> None:
        self._output_closed = True

    def _fail(self, error: VMError) -> NoReturn:
        """Enter the sticky error state: write one ErrorMessage (unless closed), then raise."""
        if self._error is not None:
            raise self._error
        if error.code == JOURNAL_MISMATCH and self.version >= 7:
            error = error.with_behavior(self.options.on_journal_mismatch)
        if self._phase is not Phase.CLOSED:
            self._write(error.to_message())
            self._close_output()
            self._phase = transition(self._phase, Event.FAILED)
        self._error = error
        raise error

    def _fail_quietly(self, error: VMError) -> None:
        with contextlib.suppress(VMError):
            self._fail(error)

    def notify_error(
        self,
        message: str,
        *,
        code: int = 500,
        stacktrace: str = "",
        next_retry_delay_ms: int | None = None,
        behavior: int = pb.RETRY,
        related: RelatedCommand | None = None,
    ) -> None:
        """End the attempt with an ErrorMessage: the server retries (or pauses, or fails) it.

        Does nothing once the attempt already ended. Never raises.
        """
        if self._error is not None or self._phase is Phase.CLOSED:
            return
        if behavior != pb.RETRY and self.version < 7:
            feature = "pausing or failing an invocation from the SDK"
            self._fail_quietly(errors.unsupported_feature(feature, self.version, 7))
            return
        self._fail_quietly(
            VMError(
                code,
                message,
                related=related if related is not None else self._journal.last,
                stacktrace=stacktrace,
                next_retry_delay_ms=next_retry_delay_ms,
                behavior=behavior,
            )
        )

    # -- issuing commands ------------------------------------------------------------------

    def _issue(self, msg: Message, operation: str | None = None) -> Message:
        """Write ``msg`` (processing) or match it against the journal (replaying).

        Returns the journal's own copy when replaying, ``msg`` itself otherwise.
        """
        message_type = message_type_of(msg)
        self._advance(Event.COMMAND_ISSUED, operation or type_name(message_type))
        related = self._journal.record(message_type, _entry_name(msg))
        if self._phase is Phase.PROCESSING:
            self._processing_first_entry = False
            self._write(msg)
            return msg
        try:
            actual = self._journal.pop_replayed(msg)
        except VMError as exc:
            self._fail(exc.with_related(related))
        self._after_replayed_command()
        return actual

    def _after_replayed_command(self) -> None:
        if self._journal.replay_remaining == 0:
            self._advance(Event.REPLAY_FINISHED)
            self._processing_first_entry = True

    def _require_version(self, feature: str, needed: int) -> None:
        if self.version < needed:
            self._fail(errors.unsupported_feature(feature, self.version, needed))


def _entry_name(msg: Message) -> str:
    # SendSignal's entry name lives in `entry_name`, because `name` names the signal there.
    if isinstance(msg, pb.SendSignalCommandMessage):
        return msg.entry_name
    return str(getattr(msg, "name", "") or "")
