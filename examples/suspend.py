"""Suspension in REQUEST_RESPONSE mode: every await the server cannot answer at once ends the
HTTP request; the server calls again, with the journal, when there is progress to make.

``Pauser.nap(ms)`` sleeps between two steps; ``Pauser.wait_for_approval()`` waits on an
awakeable that someone resolves through the ingress. Each counts the attempts it took: with
REQUEST_RESPONSE, a nap is at least two HTTP requests to this endpoint.

Run it (REQUEST_RESPONSE over HTTP/1.1) with ``python examples/suspend.py``, register it with
``curl localhost:9070/deployments --json '{"uri": "http://127.0.0.1:9080", "use_http_11": true}'``,
then::

    curl localhost:8080/Pauser/nap --json 500
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import perdure

#: Attempts started in this process, by invocation id.
attempts: dict[str, int] = {}
#: Awakeable ids handed out, newest last (in a real app: sent to whoever must answer).
awakeables: list[str] = []

pauser = perdure.Service("Pauser", description="Suspends and resumes.")


@dataclass
class Nap:
    slept_ms: int
    attempts: int


def _count_attempt(ctx: perdure.Context) -> int:
    invocation_id = ctx.request().id
    attempts[invocation_id] = attempts.get(invocation_id, 0) + 1
    return attempts[invocation_id]


def publish(awakeable_id: str) -> None:
    awakeables.append(awakeable_id)
    print(f"[pauser] resolve with: curl localhost:8080/restate/awakeables/{awakeable_id}/resolve")


@pauser.handler()
async def nap(ctx: perdure.Context, ms: int) -> Nap:
    _count_attempt(ctx)
    started = await ctx.time()
    await ctx.sleep(timedelta(milliseconds=ms))
    woke = await ctx.time()
    slept = round((woke - started) * 1000)
    return Nap(slept_ms=slept, attempts=attempts[ctx.request().id])


@pauser.handler(name="waitForApproval")
async def wait_for_approval(ctx: perdure.Context) -> str:
    _count_attempt(ctx)
    awakeable_id, answer = ctx.awakeable(type_hint=str)
    await ctx.run("publish", publish, awakeable_id)
    return f"{await answer} after {attempts[ctx.request().id]} attempts"


services = [pauser]

if __name__ == "__main__":
    perdure.serve(services, port=9080, protocol_mode="request_response")
