"""Waiting on several durable futures at once, deterministically: gather, race, select, ...

Use these rather than ``asyncio.gather``/``asyncio.wait`` on durable futures: they wait in
one await point, which the server sees (an invocation suspended on ``race(timer, approval)``
resumes on whichever comes first), and which replays identically, because the journal records
the order in which results arrived.

======================  =============================================  ==================
function                returns / raises                               like
======================  =============================================  ==================
``gather(*fs)``         every value in order; the first failure        ``Promise.all``
``all_settled(*fs)``    every value or exception, never raises         ``Promise.allSettled``
``race(*fs)``           the first to complete (value or failure)       ``Promise.race``
``select(**fs)``        ``(name, value)`` of the first to complete
``first_succeeded``     the first success; fails when all fail         ``Promise.any``
``wait_completed``      ``(done, pending)`` once at least one is done
``as_completed``        the futures, in the order they complete
======================  =============================================  ==================

``gather`` is JavaScript's ``Promise.all`` and ``first_succeeded`` its ``Promise.any``; they
are not named ``all`` and ``any`` here, where those names would shadow the builtins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from perdure.sdk import vm
from perdure.sdk.context import DurableFuture
from perdure.sdk.errors import TerminalError
from perdure.sdk.future_impl import HandleFuture
from perdure.sdk.invocation import Attempt
from perdure.sdk.vm import FutureTree, single

__all__ = [
    "all_settled",
    "as_completed",
    "first_succeeded",
    "gather",
    "race",
    "select",
    "wait_completed",
]


def _handles(
    futures: Sequence[DurableFuture[Any]],
) -> tuple[Attempt | None, list[HandleFuture[Any]]]:
    attempt: Attempt | None = None
    checked: list[HandleFuture[Any]] = []
    for future in futures:
        if not isinstance(future, HandleFuture):
            raise TypeError(
                f"{type(future).__name__} is not a durable future of this SDK; combinators "
                "take what ctx methods return (ctx.run, ctx.sleep, calls, awakeables, ...)"
            )
        if attempt is None:
            attempt = future.attempt
        elif future.attempt is not attempt:
            raise ValueError("the futures come from different invocations")
        checked.append(future)
    return attempt, checked


async def _wait(
    futures: Sequence[DurableFuture[Any]],
    combine: Callable[..., FutureTree],
    done: Callable[[list[HandleFuture[Any]]], bool],
) -> list[HandleFuture[Any]]:
    """Wait, in one await point, until ``done`` holds for the settled futures."""
    attempt, checked = _handles(futures)
    while True:
        for future in checked:
            if future.attempt.vm.is_completed(future.handle):
                future.settle()
        settled = [f for f in checked if f.is_completed() and f.settle()]
        if done(settled) or attempt is None:
            return settled
        pending = [f.handle for f in checked if not f.is_completed()]
        await attempt.wait_for(combine(*[single(h) for h in pending]))


async def gather(*futures: DurableFuture[Any]) -> list[Any]:
    """Every result, in argument order; raises the first failure as soon as it is known.

    Example::

        a, b = await perdure.gather(ctx.run("a", step_a), ctx.run("b", step_b))
    """
    n = len(futures)
    settled = await _wait(
        futures, vm.all_succeeded, lambda s: len(s) == n or any(f.failed for f in s)
    )
    for future in futures:
        if future in settled and getattr(future, "failed", False):
            return [_outcome(future)]  # raises
    return [_outcome(f) for f in futures]


async def all_settled(*futures: DurableFuture[Any]) -> list[Any]:
    """Every result or exception, in argument order; never raises a handler's failure."""
    n = len(futures)
    await _wait(futures, vm.all_completed, lambda s: len(s) == n)
    results: list[Any] = []
    for future in futures:
        try:
            results.append(_outcome(future))
        except TerminalError as exc:
            results.append(exc)
    return results


async def race(*futures: DurableFuture[Any]) -> Any:
    """The result of the first future to complete (or its failure, raised)."""
    if not futures:
        raise ValueError("race() needs at least one future")
    settled = await _wait(futures, vm.first_completed, lambda s: bool(s))
    return _outcome(_first_in_order(futures, settled))


async def select(**futures: DurableFuture[Any]) -> tuple[str, Any]:
    """``(name, result)`` of the first future to complete; a failure is raised.

    Example::

        match await perdure.select(approved=promise.value(), timeout=ctx.sleep(timedelta(days=1))):
            case ("approved", answer): ...
            case ("timeout", _): ...
    """
    if not futures:
        raise ValueError("select() needs at least one future")
    names = {id(f): name for name, f in futures.items()}
    values = list(futures.values())
    settled = await _wait(values, vm.first_completed, lambda s: bool(s))
    first = _first_in_order(values, settled)
    return names[id(first)], _outcome(first)


async def first_succeeded(*futures: DurableFuture[Any]) -> Any:
    """The first successful result; if every future fails, a TerminalError listing them."""
    if not futures:
        raise ValueError("first_succeeded() needs at least one future")
    n = len(futures)
    settled = await _wait(
        futures,
        vm.first_succeeded,
        lambda s: any(not f.failed for f in s) or len(s) == n,
    )
    for future in futures:
        if future in settled and not getattr(future, "failed", True):
            return _outcome(future)
    failures: list[TerminalError] = []
    for future in futures:
        try:
            _outcome(future)
        except TerminalError as exc:
            failures.append(exc)
    summary = "; ".join(f.message for f in failures)
    code = failures[0].status_code if failures else 500
    raise TerminalError(f"all {n} futures failed: {summary}", status_code=code)


async def wait_completed(
    *futures: DurableFuture[Any],
) -> tuple[list[DurableFuture[Any]], list[DurableFuture[Any]]]:
    """``(completed, pending)`` as soon as at least one future is completed."""
    if not futures:
        return [], []
    await _wait(futures, vm.first_completed, lambda s: bool(s))
    done = [f for f in futures if f.is_completed()]
    return done, [f for f in futures if not f.is_completed()]


async def as_completed(*futures: DurableFuture[Any]) -> AsyncIterator[DurableFuture[Any]]:
    """The futures in the order they complete (ties in argument order).

    Example::

        async for future in perdure.as_completed(*calls):
            print(await future)
    """
    remaining = list(futures)
    while remaining:
        done, remaining = await wait_completed(*remaining)
        for future in done:
            yield future


def _first_in_order(
    futures: Sequence[DurableFuture[Any]], settled: list[HandleFuture[Any]]
) -> DurableFuture[Any]:
    for future in futures:
        if future in settled:
            return future
    raise AssertionError("a combinator returned with nothing settled")


def _outcome(future: DurableFuture[Any]) -> Any:
    assert isinstance(future, HandleFuture)
    return future.outcome()
