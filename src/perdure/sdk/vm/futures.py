"""Await points as trees of combinators over notification handles, and how they resolve.

Theory of operation. User code awaits one handle (``Single``) or a combination of them
(``Combined``: race, all, any, all-settled, or ``UNKNOWN`` for shapes the SDK resolves itself).
The VM resolves a tree against the notifications that are *ready*, moving queued notifications
to ready one at a time, in arrival order, and re-checking after each. That order is what makes
races deterministic: on replay the journal delivers the notifications in the order they first
arrived, so the same child wins again.

Resolution returns either "resolved" (control goes back to user code, which takes the
notifications it needs) or the *rest* of the tree, with completed children shaved off. A
nested race, or a nested all-succeeded whose child failed, short-circuits the whole walk: user
code must observe that sub-result before anything else is decided, exactly as sdk-shared-core
does (``AsyncResultsState::try_resolve_future``). The rest is what a SuspensionMessage (V7: the
tree itself; V5/V6: its flattened leaves) or an AwaitingOnMessage tells the server.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm.notifications import (
    CompletionId,
    NotificationId,
    Outcome,
    SignalId,
    SignalName,
)

__all__ = [
    "Combinator",
    "Combined",
    "FutureTree",
    "Outcome",
    "Single",
    "all_completed",
    "all_succeeded",
    "first_completed",
    "first_succeeded",
    "handles",
    "single",
    "to_pb",
    "try_resolve",
    "unknown",
]


class Combinator(enum.Enum):
    """How a node combines its children; the values are the wire's CombinatorType."""

    FIRST_COMPLETED = pb.FIRST_COMPLETED
    """The first child to complete, success or failure (Promise.race)."""
    ALL_COMPLETED = pb.ALL_COMPLETED
    """Every child, whatever its outcome (Promise.allSettled)."""
    FIRST_SUCCEEDED_OR_ALL_FAILED = pb.FIRST_SUCCEEDED_OR_ALL_FAILED
    """The first success; fails when all fail (Promise.any)."""
    ALL_SUCCEEDED_OR_FIRST_FAILED = pb.ALL_SUCCEEDED_OR_FIRST_FAILED
    """Every child succeeding; the first failure short-circuits (Promise.all)."""
    UNKNOWN = pb.COMBINATOR_TYPE_UNKNOWN
    """A shape only the SDK can decide; woken by any child, like FIRST_COMPLETED."""


@dataclass(frozen=True, slots=True)
class Single:
    """A leaf: one notification handle."""

    handle: int


@dataclass(frozen=True, slots=True)
class Combined:
    """An inner node: children combined by ``combinator``."""

    combinator: Combinator
    children: tuple[FutureTree, ...]


FutureTree = Single | Combined


def single(handle: int) -> Single:
    return Single(handle)


def _node(combinator: Combinator, children: tuple[FutureTree | int, ...]) -> Combined:
    return Combined(combinator, tuple(Single(c) if isinstance(c, int) else c for c in children))


def first_completed(*children: FutureTree | int) -> Combined:
    """Race: ``first_completed(1, 2)`` resolves when handle 1 or handle 2 completes."""
    return _node(Combinator.FIRST_COMPLETED, children)


def all_completed(*children: FutureTree | int) -> Combined:
    return _node(Combinator.ALL_COMPLETED, children)


def first_succeeded(*children: FutureTree | int) -> Combined:
    return _node(Combinator.FIRST_SUCCEEDED_OR_ALL_FAILED, children)


def all_succeeded(*children: FutureTree | int) -> Combined:
    return _node(Combinator.ALL_SUCCEEDED_OR_FIRST_FAILED, children)


def unknown(*children: FutureTree | int) -> Combined:
    return _node(Combinator.UNKNOWN, children)


def handles(tree: FutureTree) -> Iterator[int]:
    """Every leaf handle of the tree, depth first."""
    if isinstance(tree, Single):
        yield tree.handle
        return
    for child in tree.children:
        yield from handles(child)


# --- Resolution ---------------------------------------------------------------------------


class _Woken(Exception):
    """A nested node resolved in a way that hands control back to user code at once."""


# Which settled child decides its node at once (and so wakes user code).
_WAKES_ON: dict[Combinator, frozenset[Outcome]] = {
    Combinator.FIRST_COMPLETED: frozenset({Outcome.SUCCEEDED, Outcome.FAILED}),
    Combinator.UNKNOWN: frozenset({Outcome.SUCCEEDED, Outcome.FAILED}),
    Combinator.FIRST_SUCCEEDED_OR_ALL_FAILED: frozenset({Outcome.SUCCEEDED}),
    Combinator.ALL_SUCCEEDED_OR_FIRST_FAILED: frozenset({Outcome.FAILED}),
    Combinator.ALL_COMPLETED: frozenset(),
}


def try_resolve(tree: FutureTree, outcome_of: Callable[[int], Outcome]) -> FutureTree | None:
    """None when user code can make progress on ``tree``; otherwise the still-pending rest.

    >>> ready = {1: Outcome.SUCCEEDED}
    >>> look = lambda h: ready.get(h, Outcome.PENDING)
    >>> try_resolve(first_completed(1, 2), look) is None
    True
    >>> try_resolve(all_completed(1, 2), look)
    Combined(combinator=<Combinator.ALL_COMPLETED: 2>, children=(Single(handle=2),))
    """
    try:
        outcome, rest = _reduce(tree, outcome_of)
    except _Woken:
        return None
    return rest if outcome is Outcome.PENDING else None


def _reduce(
    tree: FutureTree, outcome_of: Callable[[int], Outcome]
) -> tuple[Outcome, FutureTree | None]:
    if isinstance(tree, Single):
        outcome = outcome_of(tree.handle)
        return outcome, (tree if outcome is Outcome.PENDING else None)
    kind = tree.combinator
    pending: list[FutureTree] = []
    for child in tree.children:
        outcome, rest = _reduce(child, outcome_of)
        if outcome is Outcome.PENDING:
            assert rest is not None
            pending.append(rest)
        elif outcome in _WAKES_ON[kind]:
            raise _Woken
        # Otherwise the child is settled and simply drops out of the node.
    if pending:
        return Outcome.PENDING, Combined(kind, tuple(pending))
    # Every child settled without short-circuiting: only "all failed" is a failure. (A race
    # gets here only when it has no children at all, and then there is nothing to wait for.)
    if kind is Combinator.FIRST_SUCCEEDED_OR_ALL_FAILED:
        return Outcome.FAILED, None
    return Outcome.SUCCEEDED, None


# --- Wire form ----------------------------------------------------------------------------


def to_pb(tree: FutureTree, leaf_of: Callable[[int], NotificationId | None]) -> pb.Future:
    """The protocol's Future for a tree; leaves inline into their parent's waiting lists.

    A lone handle becomes a FIRST_COMPLETED node with one leaf, as in sdk-shared-core.
    ``leaf_of`` returning None drops the leaf (a handle the server has nothing to send for).
    """
    future = pb.Future()
    if isinstance(tree, Single):
        future.combinator_type = pb.FIRST_COMPLETED
        _push_leaf(future, leaf_of(tree.handle))
        return future
    future.combinator_type = tree.combinator.value
    for child in tree.children:
        if isinstance(child, Single):
            _push_leaf(future, leaf_of(child.handle))
        else:
            future.nested_futures.append(to_pb(child, leaf_of))
    return future


def _push_leaf(future: pb.Future, leaf: NotificationId | None) -> None:
    if isinstance(leaf, CompletionId):
        future.waiting_completions.append(leaf.id)
    elif isinstance(leaf, SignalId):
        future.waiting_signals.append(leaf.index)
    elif isinstance(leaf, SignalName):
        future.waiting_named_signals.append(leaf.name)
