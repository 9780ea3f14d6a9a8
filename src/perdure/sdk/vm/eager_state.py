"""The state the server sent along with the StartMessage, kept current by the handler's writes."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["EagerState"]


class EagerState:
    """Known state values; ``partial`` means a key missing here may still exist on the server.

    >>> state = EagerState([("a", b"1")], partial=False)
    >>> state.get("a"), state.get("b")
    ((True, b'1'), (True, None))
    >>> state.set("b", b"2"); state.keys()
    ('a', 'b')
    """

    __slots__ = ("_partial", "_values")

    def __init__(self, entries: Iterable[tuple[str, bytes]] = (), *, partial: bool = True) -> None:
        self._values: dict[str, bytes | None] = dict(entries)
        self._partial = partial

    def get(self, key: str) -> tuple[bool, bytes | None]:
        """(known, value): known is False when only the server can answer."""
        if key in self._values:
            return True, self._values[key]
        return (not self._partial), None

    def keys(self) -> tuple[str, ...] | None:
        """All keys that hold a value, sorted; None when the map is partial."""
        if self._partial:
            return None
        return tuple(sorted(k for k, v in self._values.items() if v is not None))

    def set(self, key: str, value: bytes) -> None:
        self._values[key] = value

    def clear(self, key: str) -> None:
        # Remembered as "known empty", so a later read needs no round trip even when partial.
        self._values[key] = None

    def clear_all(self) -> None:
        self._values.clear()
        self._partial = False
