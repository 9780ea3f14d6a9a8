"""A saga: book a trip step by step; if anything fails *or the booking is cancelled*, undo it.

Each step pushes its compensation *before* it runs: the step may take effect and still be
interrupted before its result is journaled (a cancellation can land at that very await), so
its undo must be on the list already — and undoing a step that never happened must be
harmless. A terminal failure — including :class:`perdure.InvocationCancelledError`, which
cancelling the invocation raises at the handler's current await — runs the compensations in
reverse order, each as a durable step, then ends the invocation with the original error.

Run it with ``perdure dev examples/saga.py``, then::

    curl localhost:8080/Trip/book/send --json '{"trip_id": "t1", "hold_payment_ms": 600000}'
    curl -X PATCH localhost:9070/invocations/INVOCATION_ID/cancel   # compensates
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import perdure


@dataclass
class TripRequest:
    trip_id: str
    #: How long the payment hold lasts before the booking is confirmed.
    hold_payment_ms: int = 0
    #: Make the car rental fail for good (to see compensation on failure).
    car_unavailable: bool = False


#: What this process did, in order: ("book flight", trip_id), ("cancel flight", trip_id), ...
ledger: list[tuple[str, str]] = []

trip = perdure.Service("Trip", description="Books flight, hotel and car, or none of them.")


def record(action: str, trip_id: str) -> str:
    ledger.append((action, trip_id))
    return f"{action}:{trip_id}"


def rent_car(trip_id: str, unavailable: bool) -> str:
    if unavailable:
        raise perdure.TerminalError("no car available", status_code=409)
    return record("book car", trip_id)


@trip.handler()
async def book(ctx: perdure.Context, request: TripRequest) -> list[str]:
    compensations: list[Callable[[], Any]] = []
    booked: list[str] = []
    tid = request.trip_id
    try:
        compensations.append(lambda: ctx.run("cancel flight", record, "cancel flight", tid))
        booked.append(await ctx.run("book flight", record, "book flight", tid))

        compensations.append(lambda: ctx.run("cancel hotel", record, "cancel hotel", tid))
        booked.append(await ctx.run("book hotel", record, "book hotel", tid))

        # Hold the payment for a while; a cancellation now lands here (or at the await above).
        await ctx.sleep(timedelta(milliseconds=request.hold_payment_ms))

        # A car that could not be rented needs no return: its step failed for good, so its
        # compensation is pushed only once it succeeded.
        booked.append(await ctx.run("book car", rent_car, tid, request.car_unavailable))
        compensations.append(lambda: ctx.run("return car", record, "return car", tid))
        return booked
    except perdure.TerminalError:
        for undo in reversed(compensations):
            await undo()
        raise


services = [trip]

if __name__ == "__main__":
    perdure.serve(services, port=9080)
