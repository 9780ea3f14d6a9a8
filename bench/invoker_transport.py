"""Benchmark of the invoker's transports against a hypercorn deployment on 127.0.0.1.

Run: .venv/bin/python bench/invoker_transport.py [--n 3000] [--concurrency 64]

Starts tests/integration/invoker_transport_app.py in a subprocess, then measures: tiny
ping-pong frames on one HTTP/2 stream (the BIDI_STREAM hot path), whole HTTP/2 streams opened
one after another and many at once, HTTP/1.1 request/response exchanges on a kept-alive
connection, and 5 MiB echoed through one stream. Each line gives the rate (wall clock, bounded
by hypercorn's own cost, which is the larger share) and the client's CPU time per operation,
which is this transport's overhead plus h2's and asyncio's. Compare runs, not machines.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from perdure.server.invoker.h1 import H1Transport
from perdure.server.invoker.h2 import H2Transport

ROOT = Path(__file__).resolve().parents[1]


async def measure(name: str, n: int, run: Callable[[], Awaitable[None]], unit: str) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    await run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{name:<44} {n / wall:>9,.0f} {unit}/s   client CPU {cpu / n * 1e6:>6.1f} µs/{unit}")


async def scenarios(base: str, n: int, concurrency: int) -> None:
    h2t, h1t = H2Transport(), H1Transport()
    echo = f"{base}/echo"
    headers = [("content-type", "application/vnd.restate.invocation.v5")]

    stream = await h2t.open_stream(echo, headers)
    await stream.send(b"warm-up")
    await stream.receive()

    async def ping_pong() -> None:
        for _ in range(n):
            await stream.send(b"\x00\x00\x00\x00\x00\x00\x00\x04ping")
            await stream.receive()

    await measure("HTTP/2 ping-pong, 12-byte frames, one stream", n, ping_pong, "rt")
    await stream.end()
    await stream.aclose()

    async def one_stream() -> None:
        s = await h2t.open_stream(echo, headers)
        await s.send(b"start")
        await s.end()
        await s.read_all()
        await s.aclose()

    async def sequential() -> None:
        for _ in range(n // 2):
            await one_stream()

    await measure("HTTP/2 streams, one at a time", n // 2, sequential, "stream")
    gate = asyncio.Semaphore(concurrency)

    async def gated() -> None:
        async with gate:
            await one_stream()

    async def concurrent() -> None:
        await asyncio.gather(*(gated() for _ in range(n)))

    await measure(f"HTTP/2 streams, {concurrency} at a time", n, concurrent, "stream")

    async def http1() -> None:
        for _ in range(n // 2):
            s = await h1t.open_stream(echo, headers)
            await s.send(b"start")
            await s.end()
            await s.read_all()
            await s.aclose()

    await measure("HTTP/1.1 request/response, kept alive", n // 2, http1, "req")
    payload = bytes(5 * 1024 * 1024)

    async def bulk() -> None:
        s = await h2t.open_stream(echo, headers)

        async def upload() -> None:
            for offset in range(0, len(payload), 65536):
                await s.send(payload[offset : offset + 65536])
            await s.end()

        sender = asyncio.create_task(upload())
        await s.read_all()
        await sender
        await s.aclose()

    await measure("HTTP/2 5 MiB echoed through one stream", 5, bulk, "MiB")
    await h2t.close()
    await h1t.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = "tests.integration.invoker_transport_app"
    cmd = [sys.executable, "-m", app, "--port", str(port), "--max-streams", "1000"]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        asyncio.run(scenarios(f"http://127.0.0.1:{port}", args.n, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
