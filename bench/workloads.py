"""What one benchmark row measures: a workload at a concurrency against one server, with wrk.

`measure()` waits until the server and service are idle, runs wrk for a fixed duration, reads
the CPU seconds both processes spent meanwhile from /proc, and for one-way sends keeps counting
until the server has run everything it accepted (the "drain").

Example::

    row = measure(tools.wrk, server_url, [server.pid, service.pid], WORKLOADS["greeter"],
                  prefix="", concurrency=8, seconds=5)
    print(row["throughput"], row["p50_ms"])
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.processes import cpu_seconds, machine_busy_seconds

LUA = Path(__file__).with_name("load.lua")


@dataclass(frozen=True)
class Workload:
    """One kind of request. ``levels``: the only concurrencies it runs at unless the command
    names them (None: every level of the mode); ``default``: part of a run without --only."""

    name: str
    path: str  # "{svc}" is the service-name prefix, "{key}" a random object key (wrk fills it)
    body: str
    keys: int = 0
    one_way: bool = False
    levels: tuple[int, ...] | None = None
    default: bool = True
    title: str = ""  # how docs/performance.md and the issue name the row


WORKLOADS = {
    w.name: w
    for w in (
        Workload("greeter", "/{svc}Greeter/greet", '"Ada"', title="stateless Greeter/greet call"),
        Workload("chain10", "/{svc}Chain/steps", '{"n": 10}', title="10 sequential ctx.run steps"),
        Workload(
            "counter-hot",
            "/{svc}Counter/{key}/add",
            "1",
            keys=1,
            title="Counter/{key}/add, one hot key",
        ),
        Workload(
            "counter100",
            "/{svc}Counter/{key}/add",
            "1",
            keys=100,
            title="Counter/{key}/add, 100 keys",
        ),
        Workload("send", "/{svc}Greeter/greet/send", '"Ada"', one_way=True, title="one-way /send"),
        Workload(
            "sleep100",
            "/{svc}Sleeper/sleep",
            "100",
            levels=(64, 256),
            title="handler sleeping 100 ms (ctx.sleep)",
        ),
        # The 1,000-key counter of the earlier recorded runs: only with --only counter.
        Workload(
            "counter",
            "/{svc}Counter/{key}/add",
            "1",
            keys=1000,
            default=False,
            title="Counter/{key}/add, 1,000 keys",
        ),
    )
}


def levels_for(workload: Workload, levels: list[int], *, explicit: bool) -> list[int]:
    """The concurrencies ``workload`` runs at: all of ``levels`` when the command named them,
    else those the workload allows.

    >>> levels_for(WORKLOADS["sleep100"], [1, 8, 64], explicit=False)
    [64]
    >>> levels_for(WORKLOADS["sleep100"], [1, 8], explicit=True)
    [1, 8]
    """
    if explicit or workload.levels is None:
        return list(levels)
    return [level for level in levels if level in workload.levels]


def wait_quiet(
    pids: list[int], *, cores: float = 0.1, window: float = 0.5, timeout: float = 120.0
) -> float:
    """Wait until ``pids`` together use less than ``cores`` CPU over ``window``; the wait's s."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(window)
        if sum(cpu_seconds(p) for p in pids) - before < cores * window:
            break
    return time.monotonic() - start


def run_wrk(
    wrk: Path, url: str, workload: Workload, prefix: str, concurrency: int, seconds: float
) -> dict[str, Any]:
    """One wrk run; its BENCH_JSON numbers (see load.lua) plus wrk's own CPU seconds."""
    env = {
        **os.environ,
        "BENCH_PATH": workload.path.replace("{svc}", prefix),
        "BENCH_BODY": workload.body,
        "BENCH_KEYS": str(workload.keys),
    }
    cmd = [
        str(wrk),
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "60s",
        "-s",
        str(LUA),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, check=False, timeout=seconds + 120
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stdout}\n{out.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    result["wrk_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def measure(
    wrk: Path,
    url: str,
    server_pid: int,
    service_pid: int,
    workload: Workload,
    *,
    prefix: str,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """Run ``workload`` for ``seconds`` at ``concurrency``; one result row (without labels)."""
    pids = [server_pid, service_pid]
    wait_quiet(pids)
    server0, service0 = cpu_seconds(server_pid), cpu_seconds(service_pid)
    machine0, start = machine_busy_seconds(), time.monotonic()
    raw = run_wrk(wrk, url, workload, prefix, concurrency, seconds)
    drain_s = wait_quiet(pids, window=0.25) if workload.one_way else 0.0
    server_cpu = cpu_seconds(server_pid) - server0
    service_cpu = cpu_seconds(service_pid) - service0
    # What else ran meanwhile (other servers idling, other people's work on a shared machine).
    others = machine_busy_seconds() - machine0 - server_cpu - service_cpu - raw["wrk_cpu_s"]
    others_cores = max(others, 0.0) / (time.monotonic() - start)
    wall = raw["duration_us"] / 1e6
    requests = raw["requests"]
    errors = sum(
        raw[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    ok = max(requests - errors, 0)
    # A one-way row accepts `ok` sends in `wall` seconds and has run them all `drain_s` later.
    completed = ok / (wall + drain_s) if workload.one_way and wall else None
    return {
        "workload": workload.name,
        "concurrency": concurrency,
        "seconds": round(wall, 3),
        "requests": requests,
        "errors": errors,
        "throughput": ok / wall if wall else 0.0,
        "completed_per_s": completed,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "server_cpu_s": server_cpu,
        "service_cpu_s": service_cpu,
        "wrk_cpu_s": raw["wrk_cpu_s"],
        "server_cpu_ms_per_req": server_cpu / ok * 1000 if ok else None,
        "service_cpu_ms_per_req": service_cpu / ok * 1000 if ok else None,
        "drain_s": round(drain_s, 2),
        "other_cores": round(others_cores, 2),
        "raw": raw,
    }
