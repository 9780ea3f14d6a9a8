"""Suspension future trees: when has an invocation got enough notifications to resume?

An SDK that suspends tells the server what it awaits: in V7 a tree of combinators over
completion ids, signal indexes and signal names; in V5/V6 three flat sets meaning "any of
these". The partition keeps the tree as JSON on the invocation row and evaluates it against the
notifications in the journal, so that an invocation waiting for ALL of three calls is resumed
once, not three times.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Combinator codes as the protocol numbers them (CombinatorType).
FIRST_COMPLETED = 1
ALL_COMPLETED = 2
FIRST_SUCCEEDED_OR_ALL_FAILED = 3
ALL_SUCCEEDED_OR_FIRST_FAILED = 4

CANCEL_SIGNAL_KEY = "s:1"


@dataclass(frozen=True, slots=True)
class AwaitTree:
    combinator: int = FIRST_COMPLETED
    leaves: tuple[str, ...] = ()  # notification keys: "c:<id>", "s:<idx>", "n:<name>"
    nested: tuple[AwaitTree, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(self._to_obj(), separators=(",", ":"))

    def _to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"t": self.combinator, "l": list(self.leaves)}
        if self.nested:
            obj["n"] = [child._to_obj() for child in self.nested]
        return obj

    @classmethod
    def from_json(cls, text: str) -> AwaitTree:
        return cls._from_obj(json.loads(text))

    @classmethod
    def _from_obj(cls, obj: Mapping[str, Any]) -> AwaitTree:
        return cls(
            combinator=int(obj.get("t", FIRST_COMPLETED)),
            leaves=tuple(str(x) for x in obj.get("l", [])),
            nested=tuple(cls._from_obj(child) for child in obj.get("n", [])),
        )

    def keys(self) -> set[str]:
        out = set(self.leaves)
        for child in self.nested:
            out |= child.keys()
        return out


def tree_from_lists(
    completions: list[int], signals: list[int], names: list[str], combinator: int = FIRST_COMPLETED
) -> AwaitTree:
    leaves = (
        [f"c:{c}" for c in completions] + [f"s:{s}" for s in signals] + [f"n:{n}" for n in names]
    )
    return AwaitTree(combinator=combinator or FIRST_COMPLETED, leaves=tuple(leaves))


def evaluate(tree: AwaitTree, outcomes: Mapping[str, bool]) -> bool | None:
    """Tri-state result of `tree`: True succeeded, False failed, None still waiting.

    `outcomes` maps each notification key present in the journal to whether it succeeded.
    """
    results: list[bool | None] = [outcomes.get(leaf) for leaf in tree.leaves]
    results.extend(evaluate(child, outcomes) for child in tree.nested)
    if not results:
        return None
    done = [r for r in results if r is not None]
    t = tree.combinator
    if t == ALL_COMPLETED:
        return True if len(done) == len(results) else None
    if t == FIRST_SUCCEEDED_OR_ALL_FAILED:
        if any(done):
            return True
        return False if len(done) == len(results) else None
    if t == ALL_SUCCEEDED_OR_FIRST_FAILED:
        if not all(done):
            return False
        return True if len(done) == len(results) else None
    # FIRST_COMPLETED, and unknown combinators (the protocol says: treat as FIRST_COMPLETED).
    return done[0] if done else None
