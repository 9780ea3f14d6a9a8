"""ctx.run bookkeeping: which closures wait to execute, and when a failing one is retried.

A retryable failure of a ctx.run closure is not retried inside the attempt. As in
sdk-shared-core, the SDK ends the attempt with an ErrorMessage that names the run and carries
the delay before the next try; the server retries the invocation, replays the journal up to
that run, and the closure runs again. The server tells the next attempt how many times this
happened (StartMessage.retry_count_since_last_stored_entry), which is what ``max_attempts``
counts. Once the policy gives up, the failure is journaled as the run's terminal result, so
user code sees a TerminalError and can compensate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["GiveUp", "NextRetry", "RetryPolicy", "RunRegistry", "RunState"]

# What sdk-python's core uses when a policy sets some fields but not these.
DEFAULT_INITIAL_INTERVAL_MS = 50
DEFAULT_FACTOR = 2.0
DEFAULT_MAX_INTERVAL_MS = 10_000


class GiveUp(enum.Enum):
    FAIL = "fail"  # journal the failure as the run's terminal result
    PAUSE = "pause"  # pause the invocation for an operator (V7+)


@dataclass(frozen=True, slots=True)
class NextRetry:
    """Retry after ``delay_ms`` (None: the server's own retry policy decides), or give up."""

    delay_ms: int | None = None
    give_up: GiveUp | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the failures of one ctx.run closure are retried.

    With no field set, retries never stop and the server's invocation retry policy paces them.
    Setting any field switches to exponential backoff from ``initial_interval_ms`` (50 ms by
    default), multiplied by ``factor`` (2) per attempt, capped at ``max_interval_ms`` (10 s);
    ``max_attempts`` counts the first execution too.

    >>> policy = RetryPolicy(max_attempts=3)
    >>> policy.next_retry(attempts=1, elapsed_ms=0), policy.next_retry(attempts=2, elapsed_ms=0)
    (NextRetry(delay_ms=50, give_up=None), NextRetry(delay_ms=100, give_up=None))
    >>> policy.next_retry(attempts=3, elapsed_ms=0).give_up
    <GiveUp.FAIL: 'fail'>
    """

    initial_interval_ms: int | None = None
    factor: float | None = None
    max_interval_ms: int | None = None
    max_attempts: int | None = None
    max_duration_ms: int | None = None
    on_max_attempts: GiveUp = GiveUp.FAIL

    @property
    def is_unbounded(self) -> bool:
        return all(
            v is None
            for v in (
                self.initial_interval_ms,
                self.factor,
                self.max_interval_ms,
                self.max_attempts,
                self.max_duration_ms,
            )
        )

    def next_retry(self, *, attempts: int, elapsed_ms: int) -> NextRetry:
        """What to do after the ``attempts``-th failed execution, ``elapsed_ms`` into retrying."""
        if self.is_unbounded:
            return NextRetry()
        if (self.max_attempts is not None and attempts >= self.max_attempts) or (
            self.max_duration_ms is not None and elapsed_ms >= self.max_duration_ms
        ):
            return NextRetry(give_up=self.on_max_attempts)
        initial = self.initial_interval_ms or DEFAULT_INITIAL_INTERVAL_MS
        factor = self.factor if self.factor is not None else DEFAULT_FACTOR
        ceiling = self.max_interval_ms or DEFAULT_MAX_INTERVAL_MS
        delay = initial * factor ** max(attempts - 1, 0)
        return NextRetry(delay_ms=int(min(delay, ceiling)))


class RunState(enum.Enum):
    TO_EXECUTE = "to execute"
    EXECUTING = "executing"


@dataclass(slots=True)
class _Run:
    command_index: int
    name: str
    state: RunState


class RunRegistry:
    """The ctx.run closures of this attempt that have no journaled result yet."""

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        self._runs: dict[int, _Run] = {}

    def add(self, handle: int, command_index: int, name: str) -> None:
        self._runs[handle] = _Run(command_index, name, RunState.TO_EXECUTE)

    def start_one(self, among: list[int]) -> int | None:
        """Marks the first waiting run among ``among`` as executing and returns its handle."""
        for handle in among:
            run = self._runs.get(handle)
            if run is not None and run.state is RunState.TO_EXECUTE:
                run.state = RunState.EXECUTING
                return handle
        return None

    def any_executing(self, among: list[int] | None = None) -> bool:
        if among is None:
            return any(r.state is RunState.EXECUTING for r in self._runs.values())
        return any(
            (run := self._runs.get(h)) is not None and run.state is RunState.EXECUTING
            for h in among
        )

    def info(self, handle: int) -> tuple[int, str] | None:
        run = self._runs.get(handle)
        return None if run is None else (run.command_index, run.name)

    def finish(self, handle: int) -> tuple[int, str] | None:
        """Forgets an executed run; returns its command index and name (None if unknown)."""
        run = self._runs.pop(handle, None)
        return None if run is None else (run.command_index, run.name)
