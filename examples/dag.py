"""A DAG, fan-out/fan-in: each wave of calls runs in parallel and is gathered before the next.

``Dag.run(n)`` squares 1..n in parallel (wave 1), then adds neighbours pairwise in parallel
(wave 2, gathered in completion order with ``as_completed``), then sums the lot (wave 3).
Every call is journaled: after a crash, finished calls are not made again.

Run it with ``perdure dev examples/dag.py``, then::

    curl localhost:8080/Dag/run --json 4
"""

from __future__ import annotations

from dataclasses import dataclass

import perdure

worker = perdure.Service("DagWorker", description="The nodes of the DAG.")
dag = perdure.Service("Dag", description="Runs the DAG in waves.")


@worker.handler()
async def square(ctx: perdure.Context, x: int) -> int:
    return x * x


@worker.handler()
async def add(ctx: perdure.Context, pair: list[int]) -> int:
    return sum(pair)


@dataclass
class DagResult:
    squares: list[int]
    pair_sums: list[int]
    total: int


@dag.handler()
async def run(ctx: perdure.Context, n: int) -> DagResult:
    if n < 1:
        raise perdure.TerminalError("n must be at least 1", status_code=400)
    nodes = worker.proxy(ctx)

    # Wave 1: fan out, then gather in argument order.
    squares: list[int] = await perdure.gather(*(nodes.square(i) for i in range(1, n + 1)))

    # Wave 2: fan out again; collect as they complete, then put back in order.
    pairs = [[squares[i], squares[(i + 1) % n]] for i in range(n)]
    calls = [nodes.add(pair) for pair in pairs]
    sums: dict[int, int] = {}
    async for done in perdure.as_completed(*calls):
        sums[calls.index(done)] = await done
    pair_sums = [sums[i] for i in range(n)]

    # Wave 3: fan in.
    total = await nodes.add(pair_sums)
    return DagResult(squares, pair_sums, total)


services = [dag, worker]

if __name__ == "__main__":
    perdure.serve(services, port=9080)
