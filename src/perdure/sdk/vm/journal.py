"""The journal as the VM sees it: replay cursor, command indexes, id allocation, matching.

Replaying, each command user code issues is compared with the next command of the recorded
journal. Two commands match when their type is the same and the fields that carry meaning are
equal. What "meaning" excludes follows sdk-shared-core (``CommandMessageHeaderEq``): a sleep is
matched on its name only (its wake-up time was computed from the clock of the first run), a
one-way call ignores its invoke time for the same reason, an eager state read takes its value
from the journal, and the input command always matches (it *is* the journal's input). Anything
else must be identical, payloads included: a call with different parameters is a different
call. A mismatch is error 570 showing both commands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from google.protobuf import text_format
from google.protobuf.message import Message

from perdure.protocol.errors import ProtocolError
from perdure.protocol.messages import Frame, MessageType, is_custom, message_type_of, type_name
from perdure.sdk.vm import errors
from perdure.sdk.vm.errors import RelatedCommand
from perdure.sdk.vm.notifications import FIRST_AWAKEABLE_SIGNAL_INDEX

__all__ = ["Journal", "describe", "matches", "related_run"]

T = MessageType

# Longest rendering of one command in an error message; payloads can be megabytes.
_MAX_DESCRIPTION = 400


def describe(msg: Message) -> str:
    """A one-line rendering of a command for error messages: its type and its set fields."""
    body = text_format.MessageToString(msg, as_one_line=True)
    if len(body) > _MAX_DESCRIPTION:
        body = body[:_MAX_DESCRIPTION] + " ..."
    name = type_name(message_type_of(msg))
    return f"{name} {{{body}}}" if body else name


def _describe_frame(frame: Frame) -> str:
    if is_custom(frame.message_type):
        return f"{frame.name} (a custom command this SDK never writes)"
    try:
        return describe(frame.decode())
    except ProtocolError:
        return f"{frame.name} (unreadable)"


def _always(_a: Message, _b: Message) -> bool:
    return True


def _same_name(a: Message, b: Message) -> bool:
    return bool(getattr(a, "name", None) == getattr(b, "name", None))


def _equal_without(*fields: str) -> Callable[[Message, Message], bool]:
    def compare(a: Message, b: Message) -> bool:
        a2, b2 = type(a)(), type(b)()
        a2.CopyFrom(a)
        b2.CopyFrom(b)
        for name in fields:
            a2.ClearField(name)
            b2.ClearField(name)
        return bool(a2 == b2)

    return compare


def _equal(a: Message, b: Message) -> bool:
    return bool(a == b)


_MATCHERS: dict[MessageType, Callable[[Message, Message], bool]] = {
    T.INPUT_COMMAND: _always,
    T.SLEEP_COMMAND: _same_name,
    T.ONE_WAY_CALL_COMMAND: _equal_without("invoke_time"),
    # The value comes from the journal: the key (and name) is what the handler chose.
    T.GET_EAGER_STATE_COMMAND: _equal_without("void", "value"),
    T.GET_EAGER_STATE_KEYS_COMMAND: _equal_without("value"),
}


def matches(journaled: Message, issued: Message) -> bool:
    """Whether a command the handler issues is the one the journal recorded."""
    if type(journaled) is not type(issued):
        return False
    return _MATCHERS.get(message_type_of(issued), _equal)(journaled, issued)


class Journal:
    """Commands written or replayed so far, and the commands still to replay."""

    __slots__ = ("_next_completion", "_next_signal", "_replay", "command_index", "last")

    def __init__(self) -> None:
        self._replay: deque[Frame] = deque()
        #: Index of the last command issued (the input command is 0); -1 before any.
        self.command_index = -1
        #: The last command issued, for errors that do not name a better one.
        self.last: RelatedCommand | None = None
        # Completion ids start at 1 so that a proto3 zero never looks like a real id.
        self._next_completion = 1
        self._next_signal = FIRST_AWAKEABLE_SIGNAL_INDEX

    # -- replay cursor ---------------------------------------------------------------------

    def add_replayed(self, frame: Frame) -> None:
        self._replay.append(frame)

    @property
    def replay_remaining(self) -> int:
        return len(self._replay)

    def describe_next_replayed(self) -> str:
        return _describe_frame(self._replay[0]) if self._replay else "nothing"

    # -- ids ---------------------------------------------------------------------------------

    def next_completion_id(self) -> int:
        completion_id = self._next_completion
        self._next_completion += 1
        return completion_id

    def next_signal_index(self) -> int:
        index = self._next_signal
        self._next_signal += 1
        return index

    # -- commands ----------------------------------------------------------------------------

    def record(self, message_type: int, name: str = "") -> RelatedCommand:
        """Counts a command the handler issues (written or replayed) and remembers it."""
        self.command_index += 1
        self.last = RelatedCommand(self.command_index, message_type, name)
        return self.last

    def pop_replayed(self, issued: Message) -> Message:
        """The journal's next command, checked against the one the handler issues."""
        actual = self.pop_replayed_any(issued, (message_type_of(issued),))
        if not matches(actual, issued):
            raise errors.command_mismatch(self.command_index, describe(actual), describe(issued))
        return actual

    def pop_replayed_any(self, issued: Message, accepted: tuple[MessageType, ...]) -> Message:
        """The journal's next command, which must be of one of the ``accepted`` types.

        Used where one operation has several journal forms (an eager or a lazy state read).
        """
        frame = self._replay.popleft()
        if frame.message_type not in accepted:
            raise errors.command_mismatch(
                self.command_index, _describe_frame(frame), describe(issued)
            )
        try:
            return frame.decode()
        except ProtocolError as exc:
            raise errors.malformed_entry(self.command_index, str(exc)) from exc


def related_run(index: int, name: str) -> RelatedCommand:
    return RelatedCommand(index, T.RUN_COMMAND, name)
