"""The `retained` and `active` tables of `bench/scale.py`: a server start on a big store.

`retained`: N stored timers.
Every completed invocation keeps a cleanup timer for its retention (journal, idempotency or
workflow retention: a day by default), so a server that completed 10^6 invocations in the last
day holds 10^6 timer rows. The table writes N such timers into a fresh store through Perdure's
storage API (no invocation rows: only the timers matter here), starts the server, and records
the startup time, the time until a first call answers, and the server's RSS; with
`--patched-src DIR` the same for a second source tree, in the same run, alternating.

`active`: the same with N stored suspended invocations instead (invocation rows only, no
journals: a start reads the rows, not the journals).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from bench.processes import Perdure
from bench.scale_tools import disk_mib, rss_mib
from bench.workloads import wait_quiet

DAY_MS = 86_400_000


def populate_timers(data: Path, n: int) -> float:
    """N cleanup timers a day from now, as N completed invocations would leave them."""
    from perdure.server.storage import open_storage
    from perdure.server.storage.api import TimerKind, TimerRow

    start = time.monotonic()
    now = int(time.time() * 1000)
    store = open_storage(data)
    try:
        tx = store.begin()
        for i in range(n):
            inv = f"inc_scale{i:012d}"
            tx.put_timer(TimerRow(f"cleanup:{inv}", now + DAY_MS + i, inv, TimerKind.CLEANUP))
        tx.commit()
    finally:
        store.close()
    return time.monotonic() - start


def populate_suspended(data: Path, n: int) -> float:
    """N suspended workflow runs (their invocation rows), as a big `suspended` table leaves."""
    from perdure.server.storage import open_storage
    from perdure.server.storage.api import (
        HandlerType,
        InvocationRow,
        InvocationStatus,
        ServiceType,
        Target,
    )

    start = time.monotonic()
    now = int(time.time() * 1000)
    store = open_storage(data)
    try:
        tx = store.begin()
        for i in range(n):
            target = Target("Waiter", "run", f"s{i}", ServiceType.WORKFLOW, HandlerType.WORKFLOW)
            tx.put_invocation(
                InvocationRow(
                    id=f"inc_scale{i:012d}",
                    target=target,
                    status=InvocationStatus.SUSPENDED,
                    created_at=now + i,
                    modified_at=now + i,
                    protocol_version=5,
                    journal_length=3,
                    command_count=2,
                    attempt=1,
                    awaiting='{"c":1}',
                )
            )
        tx.commit()
    finally:
        store.close()
    return time.monotonic() - start


def _first_call_s(server: Perdure) -> float:
    start = time.monotonic()
    while time.monotonic() - start < 300:
        try:
            if httpx.post(f"{server.ingress}/Greeter/greet", json="Ada", timeout=300).is_success:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    return time.monotonic() - start


def active_table(run: Any, sizes: list[int]) -> list[dict[str, Any]]:
    return retained_table(run, sizes, populate=populate_suspended, what="active")


def retained_table(
    run: Any, sizes: list[int], populate: Any = populate_timers, what: str = "retained"
) -> list[dict[str, Any]]:
    trees = [("perdure", run.args.perdure_src)]
    if run.args.patched_src is not None:
        trees.append(("perdure-patched", run.args.patched_src))
    rows = []
    for index, n in enumerate(sizes):
        for name, src in trees if index % 2 == 0 else list(reversed(trees)):
            server = Perdure(run.work / f"{what}-{name}-{n}", src=Path(src).resolve())
            populate_s = populate(server.work_dir / "data", n)
            start = time.monotonic()
            server.start()
            try:
                health_s = time.monotonic() - start
                rss_ready = rss_mib(server.pid)
                server.register(run.service.uri)
                first_call_s = _first_call_s(server)
                wait_quiet([server.pid], timeout=120)
                row = {
                    "stored": what,
                    "timers": n,
                    "server": name,
                    "src": str(src),
                    "populate_s": populate_s,
                    "db_mib": disk_mib(server.work_dir / "data"),
                    "health_s": health_s,
                    "first_call_s": first_call_s,
                    "rss_ready": rss_ready,
                    "rss_settled": rss_mib(server.pid),
                }
            finally:
                server.stop()
            rows.append(row)
            print(
                f"   {what}={n:<8} {name:>16} health {health_s:.2f} s, first call "
                f"{first_call_s:.2f} s, rss {row['rss_settled']}, db {row['db_mib']:.1f} MiB",
                flush=True,
            )
    return rows
