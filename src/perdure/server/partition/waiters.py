"""Which ingress requests wait for which invocation's output: the partition's only memory.

Requests do not survive a restart, so neither do their waiters; but within the process the
driver may undo a batch that raised and apply it again event by event, and then this memory
must be undone with the storage. Every change is therefore logged, and `restore` takes the
log back to the last `checkpoint`.
"""

from __future__ import annotations

from collections.abc import Iterable

# Past this many logged changes without a checkpoint (the partition used without a driver,
# as unit tests do) the log is dropped, and a restore to the old checkpoint is refused.
MAX_UNDO = 100_000


class IngressWaiters:
    """invocation id -> the ingress request ids waiting for its output, in arrival order.

    >>> w = IngressWaiters()
    >>> w.add("inv_1", 7)
    >>> mark = w.checkpoint()
    >>> w.add("inv_1", 8)
    >>> w.pop("inv_2")
    []
    >>> w.restore(mark)
    >>> w.pop("inv_1")
    [7]
    """

    __slots__ = ("_by_invocation", "_generation", "_undo")

    def __init__(self) -> None:
        self._by_invocation: dict[str, list[int]] = {}
        # (invocation id, the request added) or (invocation id, the list popped).
        self._undo: list[tuple[str, int | list[int]]] = []
        self._generation = 0

    def __len__(self) -> int:
        return len(self._by_invocation)

    def __contains__(self, invocation_id: object) -> bool:
        return invocation_id in self._by_invocation

    def get(self, invocation_id: str) -> list[int]:
        return list(self._by_invocation.get(invocation_id, ()))

    def add(self, invocation_id: str, request_id: int) -> None:
        self._log((invocation_id, request_id))
        self._by_invocation.setdefault(invocation_id, []).append(request_id)

    def pop(self, invocation_id: str) -> list[int]:
        waiting = self._by_invocation.pop(invocation_id, None)
        if waiting is None:
            return []
        self._log((invocation_id, waiting))
        return waiting

    def drop_requests(self, request_ids: Iterable[int | None]) -> None:
        """Forgets these requests (their batch was lost); not undoable, nor needs to be."""
        lost = set(request_ids)
        for invocation_id, waiting in list(self._by_invocation.items()):
            kept = [rid for rid in waiting if rid not in lost]
            if kept:
                self._by_invocation[invocation_id] = kept
            else:
                del self._by_invocation[invocation_id]
        self.checkpoint()

    def checkpoint(self) -> int:
        """Marks the present; only the latest mark can be restored."""
        self._undo.clear()
        self._generation += 1
        return self._generation

    def restore(self, mark: int) -> None:
        """Undoes every change since `checkpoint()` returned `mark`."""
        if mark != self._generation:
            raise RuntimeError("IngressWaiters.restore() to a mark that is not the latest")
        undo = self._undo
        while undo:
            invocation_id, change = undo.pop()
            if isinstance(change, list):
                self._by_invocation[invocation_id] = change
            else:
                waiting = self._by_invocation[invocation_id]
                waiting.pop()
                if not waiting:
                    del self._by_invocation[invocation_id]

    def _log(self, change: tuple[str, int | list[int]]) -> None:
        if len(self._undo) >= MAX_UNDO:
            self.checkpoint()
        self._undo.append(change)
