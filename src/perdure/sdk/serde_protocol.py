"""The Serde protocol: how one value becomes bytes on the wire and comes back."""

from __future__ import annotations

from typing import Protocol, TypeVar

T = TypeVar("T")


class Serde(Protocol[T]):
    """Turns values of type ``T`` into bytes and back.

    Any object with these two methods is a Serde; no base class is needed.

    Example::

        class Utf8:
            def serialize(self, obj: str) -> bytes:
                return obj.encode()

            def deserialize(self, data: bytes) -> str:
                return data.decode()
    """

    def serialize(self, obj: T) -> bytes:
        """Return the bytes that represent ``obj``."""
        ...

    def deserialize(self, data: bytes) -> T:
        """Return the value that ``data`` represents; raise if it represents none."""
        ...
