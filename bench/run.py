"""Perdure vs the real Restate server on this machine, in one run: `make bench`.

    python -m bench.run                 # quick: c = 1, 8, 64; 5 s per row (~10 minutes)
    python -m bench.run --full          # c = 1, 8, 64, 256; 20 s per row; more scale requests
    python -m bench.run --only greeter --concurrency 64 --no-scale --no-profile

Starts on 127.0.0.1: one `perdure server`, one `restate-server` (npm, pinned), one service
process written with the official restate-sdk (`bench/services.py`) registered with both, and
one written with the Perdure SDK (`bench/perdure_services.py`) registered with Perdure. For each
workload and concurrency it runs the servers one after the other (the order flips every row);
a workload may run at some levels only (`sleep100`: c=64 and 256). Then it measures the cost
per `ctx.run` step for 10 / 100 / 1,000-step chains, samples the Perdure server with py-spy
under the c=64 greeter load, and runs `bench.embedded` (Perdure embedded vs DBOS, in its own
results file `<date>-<mode>-embedded`; `--no-embedded` skips it). Prints the tables and writes
them with every raw number to `bench/results/<date>-<mode>.{md,json}`. Asserts nothing about
speed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from bench import embedded, profiling, report
from bench.processes import (
    RESTATE_VERSION,
    ROOT,
    Perdure,
    Restate,
    Service,
    Tools,
    cpu_seconds,
    ensure_tools,
)
from bench.workloads import WORKLOADS, levels_for, measure, run_wrk, wait_quiet


@dataclass(frozen=True)
class Setup:
    """One server with one service deployment: what a row is measured against."""

    server: str
    sdk: str
    url: str
    server_pid: int
    service_pid: int
    prefix: str  # service names: "" for the official SDK's, "P" for the Perdure SDK's


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="longer rows, c=256 too")
    parser.add_argument("--seconds", type=float, help="seconds per row (5 quick, 20 full)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="override the levels")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every row this many times; the tables show medians",
    )
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), help="these workloads")
    parser.add_argument("--no-perdure-sdk", action="store_true", help="skip the Perdure SDK rows")
    parser.add_argument("--no-scale", action="store_true", help="skip the steps scale figure")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument(
        "--no-embedded",
        action="store_true",
        help="skip the embedded Perdure vs DBOS comparison (bench.embedded)",
    )
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument(
        "--perdure-src",
        type=Path,
        default=ROOT / "src",
        help="run the Perdure server from this source tree (before/after checks)",
    )
    parser.add_argument("--label", help="results file name after the date (default: the mode)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    return parser.parse_args(argv)


def idle_cores(pids: dict[str, int], seconds: float = 3.0) -> dict[str, float]:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    return {
        name: round((cpu_seconds(pid) - before[name]) / seconds, 3) for name, pid in pids.items()
    }


def run_rows(
    tools: Tools,
    setups: list[Setup],
    workloads: list[str],
    levels: list[int],
    seconds: float,
    repeat: int = 1,
    *,
    explicit_levels: bool = False,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    flip = False
    for name in workloads:
        workload = WORKLOADS[name]
        its_levels = levels_for(workload, levels, explicit=explicit_levels)
        if not its_levels:
            continue
        for setup in setups:  # warm-up: connections, first-call caches, deployments resolved
            run_wrk(tools.wrk, setup.url, workload, setup.prefix, 8, 1)
        for level, round_ in ((lv, r) for lv in its_levels for r in range(repeat)):
            order = list(reversed(setups)) if flip else setups
            flip = not flip
            for setup in order:
                row = measure(
                    tools.wrk,
                    setup.url,
                    setup.server_pid,
                    setup.service_pid,
                    workload,
                    prefix=setup.prefix,
                    concurrency=level,
                    seconds=seconds,
                )
                row = {"server": setup.server, "sdk": setup.sdk, "round": round_, **row}
                rows.append(row)
                print(
                    f"{name:>11} c={level:<4} {setup.server:>8}/{setup.sdk:<12} "
                    f"{row['throughput']:>9.1f} req/s  p50 {row['p50_ms']:>8.2f} ms  "
                    f"p99 {row['p99_ms']:>8.2f} ms  errors {row['errors']}  "
                    f"cpu server {row['server_cpu_s']:.2f} s service "
                    f"{row['service_cpu_s']:.2f} s",
                    flush=True,
                )
    rows.sort(
        key=lambda r: (workloads.index(r["workload"]), r["concurrency"], r["server"], r["sdk"])
    )
    return rows


def run_scale(setups: list[Setup], full: bool) -> list[dict[str, Any]]:
    """Cost per durable step: chains of 10 / 100 / 1,000 `ctx.run`, requests one at a time."""
    plan = [(10, 60 if full else 20), (100, 10 if full else 3), (1000, 3 if full else 1)]
    rows = []
    with httpx.Client(timeout=600) as client:
        for steps, count in plan:
            for setup in setups:
                url = f"{setup.url}/{setup.prefix}Chain/steps"
                client.post(url, json={"n": steps}).raise_for_status()  # warm-up
                wait_quiet([setup.server_pid, setup.service_pid])
                s0, v0 = cpu_seconds(setup.server_pid), cpu_seconds(setup.service_pid)
                start = time.perf_counter()
                for _ in range(count):
                    answer = client.post(url, json={"n": steps})
                    answer.raise_for_status()
                    assert answer.json() == steps * (steps - 1) // 2, answer.text
                wall = time.perf_counter() - start
                server_cpu = cpu_seconds(setup.server_pid) - s0
                service_cpu = cpu_seconds(setup.service_pid) - v0
                total = steps * count
                row = {
                    "steps": steps,
                    "server": setup.server,
                    "sdk": setup.sdk,
                    "requests": count,
                    "wall_s": wall,
                    "server_cpu_s": server_cpu,
                    "service_cpu_s": service_cpu,
                    "ms_per_request": wall / count * 1000,
                    "ms_per_step": wall / total * 1000,
                    "server_cpu_us_per_step": server_cpu / total * 1e6,
                    "service_cpu_us_per_step": service_cpu / total * 1e6,
                }
                rows.append(row)
                print(
                    f"   steps={steps:<5} {setup.server:>8}/{setup.sdk:<12} "
                    f"{row['ms_per_step']:.3f} ms/step  server "
                    f"{row['server_cpu_us_per_step']:.0f} µs/step",
                    flush=True,
                )
    return rows


def run_profile(tools: Tools, setup: Setup, seconds: int, work: Path, label: str) -> dict[str, Any]:
    """py-spy on the Perdure server while wrk runs greeter at c=64."""
    out = work / "perdure-greeter-c64.pyspy.txt"
    wait_quiet([setup.server_pid, setup.service_pid])
    spy = profiling.record(setup.server_pid, seconds=seconds, out=out)
    time.sleep(0.5)
    raw = run_wrk(tools.wrk, setup.url, WORKLOADS["greeter"], setup.prefix, 64, seconds)
    _, err = spy.communicate(timeout=120)
    if not out.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}")
    day = datetime.date.today().isoformat()
    kept = report.RESULTS / f"{day}-{label}-perdure-greeter-c64.pyspy.txt"
    shutil.copyfile(out, kept)
    top = profiling.hot_spots(out.read_text(), limit=40)
    throughput = raw["requests"] / (raw["duration_us"] / 1e6)
    print(
        f"   profile: {top['samples']} samples, {throughput:.1f} req/s while sampled; "
        f"raw stacks in {kept}",
        flush=True,
    )
    return {
        "concurrency": 64,
        "seconds": seconds,
        "throughput": throughput,
        "collapsed_file": kept.name,
        **top,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "full" if args.full else "quick"
    seconds = args.seconds or (20.0 if args.full else 5.0)
    levels = args.concurrency or ([1, 8, 64, 256] if args.full else [1, 8, 64])
    workloads = args.only or [name for name, w in WORKLOADS.items() if w.default]
    tools = ensure_tools(profiler=not args.no_profile)
    work = Path(tempfile.mkdtemp(prefix="perdure-bench-"))
    print(f"work dir: {work}", flush=True)
    perdure = Perdure(work / "perdure", src=args.perdure_src.resolve())
    restate = Restate(work / "restate", binary=tools.restate_server)
    official = Service("bench.services", work / "service-restate-sdk.log")
    ours = Service("bench.perdure_services", work / "service-perdure-sdk.log")
    started: list[Perdure | Restate | Service] = []
    try:
        for process in (perdure, restate, official):
            process.start()
            started.append(process)
        perdure.register(official.uri)
        restate.register(official.uri)
        setups = [
            Setup("perdure", "restate-sdk", perdure.ingress, perdure.pid, official.pid, ""),
            Setup("restate", "restate-sdk", restate.ingress, restate.pid, official.pid, ""),
        ]
        if not args.no_perdure_sdk:
            ours.start()
            started.append(ours)
            perdure.register(ours.uri)
            setups.append(
                Setup("perdure", "perdure-sdk", perdure.ingress, perdure.pid, ours.pid, "P")
            )
        pids = {"perdure": perdure.pid, "restate": restate.pid, "restate-sdk": official.pid}
        results: dict[str, Any] = {
            "date": datetime.date.today().isoformat(),
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "mode": mode,
            "label": args.label or mode,
            "command": "python -m bench.run "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": report.machine_facts(),
            "perdure_src": str(args.perdure_src.resolve()),
            "restate_version": RESTATE_VERSION,
            "restate_sdk": version("restate-sdk"),
            "wrk": subprocess.run(
                [str(tools.wrk), "-v"], capture_output=True, text=True, check=False
            ).stdout.splitlines()[:1],
            "seconds": seconds,
            "idle_cores": idle_cores(pids),
        }
        results["repeat"] = args.repeat
        results["rows"] = run_rows(
            tools,
            setups,
            workloads,
            levels,
            seconds,
            args.repeat,
            explicit_levels=args.concurrency is not None,
        )
        if not args.no_scale:
            print("cost per step:", flush=True)
            results["scale"] = run_scale(setups, args.full)
        if not args.no_profile:
            results["profile"] = run_profile(
                tools, setups[0], args.profile_seconds, work, args.label or mode
            )
        results["finished_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        path = report.write(results)
        print()
        print(report.summary_table(report.medians(results["rows"])))
        print()
        print(report.comparison_table(report.medians(results["rows"])))
        if results.get("scale"):
            print()
            print(report.scale_table(results["scale"]))
        print(f"\nwritten: {path} and {path.with_suffix('.json').name}")
        json.dumps(results)
    finally:
        for process in reversed(started):
            process.stop()
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if not args.no_embedded:
        # After the servers above have stopped: the embedded processes get the machine alone.
        print("\nembedded: Perdure in one process vs DBOS Transact", flush=True)
        label = f"{args.label or mode}-embedded"  # never the recorded `embedded` file
        embedded.main([*(["--full"] if args.full else []), "--label", label])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
