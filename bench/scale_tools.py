"""Helpers of the scale tables (`bench/scale.py`): a bulk HTTP client, status counts, sizes.

`blast()` sends many small POSTs over a few keep-alive HTTP/1.1 connections (a plain asyncio
client: at 10^5 requests httpx would cost more CPU than the server it measures).
`status_counts()` asks a server how many invocations it holds in each status: Perdure's SQLite
file read-only, Restate's `/query` SQL endpoint. `rss_mib()` and `disk_mib()` read /proc and
the data directory.

Example::

    result = blast("http://127.0.0.1:8080", [f"/Waiter/w{i}/run/send" for i in range(100)],
                   b'"x"', concurrency=16)
    print(result.ok, result.seconds)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench.http1 import TRANSPORT_ERRORS, Http1Client


@dataclass
class BlastResult:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)  # the first few error answers

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def _blast(
    url: str, paths: Iterable[str], body: bytes, concurrency: int, deadline: float
) -> BlastResult:
    client = Http1Client(url, concurrency)
    result = BlastResult()
    todo: Iterator[str] = iter(paths)

    async def worker() -> None:
        for path in todo:
            if time.monotonic() > deadline:
                return
            for attempt in range(3):  # a reset keep-alive connection: retry on a new one
                try:
                    answer = await client.request("POST", path, body, {})
                    status, data = answer.status_code, answer.body
                    break
                except TRANSPORT_ERRORS:
                    if attempt == 2:
                        status, data = 0, b"connection failed"
                    await asyncio.sleep(0.05)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                result.ok += 1
            else:
                result.errors += 1
                if len(result.samples) < 5:
                    result.samples.append(f"{path}: {status} {data[:200]!r}")

    start = time.monotonic()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.aclose()
    result.seconds = time.monotonic() - start
    return result


def blast(
    url: str, paths: Iterable[str], body: bytes, *, concurrency: int = 32, timeout: float = 3600
) -> BlastResult:
    """POST ``body`` to every path (in order, ``concurrency`` connections); stops at timeout."""
    return asyncio.run(_blast(url, paths, body, concurrency, time.monotonic() + timeout))


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and its peak (VmHWM) in MiB, from /proc/<pid>/status."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss_mib" if key == "VmRSS" else "peak_rss_mib"] = int(value.split()[0]) / 1024
    return out


def disk_mib(path: Path) -> float:
    """Bytes under ``path`` (every file, e.g. the DB, its WAL and shm), in MiB."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file gone meanwhile (WAL checkpoint)
                total += os.stat(os.path.join(root, name)).st_size
    return total / 2**20


def perdure_counts(db: Path) -> Callable[[], dict[str, int]]:
    """Status counts of a running Perdure server's invocations, read from its SQLite file."""

    def counts() -> dict[str, int]:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute(
                "SELECT status, count(*) FROM invocations GROUP BY status"
            ).fetchall()
        finally:
            conn.close()
        return {str(status): int(n) for status, n in rows}

    return counts


def restate_counts(admin: str) -> Callable[[], dict[str, int]]:
    """Status counts of a running restate-server's invocations, from its admin `/query`."""

    def counts() -> dict[str, int]:
        answer = httpx.post(
            f"{admin}/query",
            json={"query": "SELECT status, count(*) AS n FROM sys_invocation GROUP BY status"},
            headers={"accept": "application/json"},
            timeout=120,
        )
        answer.raise_for_status()
        return {str(r["status"]): int(r["n"]) for r in answer.json()["rows"]}

    return counts


def wait_counts(
    counts: Callable[[], dict[str, int]],
    done: Callable[[dict[str, int]], bool],
    timeout: float,
    every: float = 1.0,
) -> tuple[dict[str, int], float, bool]:
    """Poll ``counts`` until ``done(counts)``; (the last counts, seconds waited, reached)."""
    start = time.monotonic()
    while True:
        now = counts()
        if done(now):
            return now, time.monotonic() - start, True
        if time.monotonic() - start > timeout:
            return now, time.monotonic() - start, False
        time.sleep(every)


def active(counts: dict[str, int]) -> int:
    return sum(n for status, n in counts.items() if status != "completed")


def dumps(value: object) -> str:
    return json.dumps(value, indent=1, default=str)
