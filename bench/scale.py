"""Scale curves of the Perdure server, and of restate-server where cheap: `python -m bench.scale`.

    python -m bench.scale                    # all five tables, full sizes (tens of minutes)
    python -m bench.scale --quick            # all five, small sizes (a few minutes)
    python -m bench.scale keys               # one table (or several): keys suspended recovery
                                             # retained active
    python -m bench.scale suspended --suspended 10000 --servers perdure

1. keys: 0 / 10^4 / 10^5 / 10^6 virtual-object keys holding state. Perdure's are written into
   its SQLite file through its storage API before the server starts; Restate's (up to
   --restate-max-keys) by calls. Then `Counter/<key>/add` with wrk on a fresh key and on an
   existing key, c=1 and c=64; plus the database size, startup time and RSS. All sizes' servers
   run at once and the rows alternate between them, --repeat rounds (the tables: medians).
2. suspended: N workflow runs created with /send, each waiting on a durable promise (1 s
   inactivity timeout, so they suspend); the server's RSS and database size with all N
   suspended; then all promises resolved and the runs checked to complete.
3. recovery: N suspended runs plus some running ones (a workflow with a 1-hour inactivity
   timeout keeps its attempt open), then kill -9 of the server and a restart: time until the
   ingress answers, RSS after the restart, time until all completed once released.
4. retained: a start with N stored cleanup timers (each completed invocation leaves one for
   its retention, a day by default): startup time, first call, RSS (Perdure only;
   --patched-src DIR adds a second source tree, alternating).
5. active: the same with N stored suspended invocations instead of timers.

Services: `bench/scale_services.py` (official restate-sdk), one process for both servers.
Results: `bench/results/<date>-scale-<table>[-quick].{md,json}`, written as each table ends.
Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bench import report, scale_report
from bench.processes import (
    RESTATE_BINARY,
    RESTATE_VERSION,
    ROOT,
    Perdure,
    Restate,
    Service,
    Tools,
    ensure_tools,
)
from bench.scale_retained import active_table, retained_table
from bench.scale_tools import (
    active,
    blast,
    disk_mib,
    perdure_counts,
    restate_counts,
    rss_mib,
    wait_counts,
)
from bench.workloads import Workload, measure, run_wrk, wait_quiet

TABLES = ("keys", "suspended", "recovery", "retained", "active")
SIZES = {
    "full": {
        "keys": [0, 10**4, 10**5, 10**6],
        "suspended": [10**4, 10**5],
        "recovery": [10**4, 10**5],
        "retained": [0, 10**5, 10**6],
        "active": [0, 10**5, 10**6],
    },
    "quick": {
        "keys": [0, 10**3, 10**4],
        "suspended": [10**3],
        "recovery": [10**3],
        "retained": [0, 10**4],
        "active": [0, 10**4],
    },
}
FRESH = Workload("fresh", "/Counter/f{key}/add", "1", keys=2**31 - 1)  # a new key per call


def existing(n: int) -> Workload:
    return Workload("existing", "/Counter/{key}/add", "1", keys=n)  # k1..kN, all stored


@dataclass
class Run:
    args: argparse.Namespace
    tools: Tools
    service: Service
    work: Path

    def server(self, kind: str, name: str) -> Perdure | Restate:
        path = self.work / f"{kind}-{name}"
        if kind == "perdure":
            return Perdure(path, src=self.args.perdure_src.resolve())
        return Restate(path, binary=self.tools.restate_server)

    def counts(self, server: Perdure | Restate) -> Callable[[], dict[str, int]]:
        if isinstance(server, Perdure):
            return perdure_counts(server.work_dir / "data" / "perdure.db")
        return restate_counts(server.admin)

    def allowed(self, kind: str, n: int, limit: int) -> bool:
        if kind == "restate" and n > limit:
            print(f"   restate skipped at {n:,} (over --restate-max-*)", flush=True)
            return False
        return True


def data_dir(server: Perdure | Restate) -> Path:
    return server.work_dir / ("data" if isinstance(server, Perdure) else "base")


def start_timed(server: Perdure | Restate) -> float:
    start = time.monotonic()
    server.start()
    return time.monotonic() - start


def populate_perdure(data: Path, n: int) -> float:
    """Writes N Counter keys (k1..kN, count = 1) through Perdure's storage API, one commit."""
    from perdure.server.storage import open_storage

    start = time.monotonic()
    store = open_storage(data)
    try:
        tx = store.begin()
        for i in range(1, n + 1):
            tx.set_state("Counter", f"k{i}", b"count", b"1")
        tx.commit()
    finally:
        store.close()
    return time.monotonic() - start


def _keys_setup(run: Run, kind: str, n: int) -> tuple[Perdure | Restate, dict[str, Any]]:
    """A started server holding N Counter keys, and the facts of its row (no wrk rows yet)."""
    server = run.server(kind, f"keys-{n}")
    populate_s = None
    if kind == "perdure" and n:
        populate_s = populate_perdure(data_dir(server), n)
    startup_s = start_timed(server)
    server.register(run.service.uri)
    if kind == "restate" and n:
        done = blast(server.ingress, (f"/Counter/k{i}/add" for i in range(1, n + 1)), b"1")
        populate_s = done.seconds
        if done.errors:
            print(f"   populate errors: {done.samples}", flush=True)
    probe = httpx.post(f"{server.ingress}/Counter/k1/add", json=1, timeout=60)
    row = {
        "keys": n,
        "server": kind,
        "populate_s": populate_s,
        "startup_s": startup_s,
        "db_mib": disk_mib(data_dir(server)),
        "probe": f"{probe.status_code} {probe.text}",
        **rss_mib(server.pid),
        "wrk": [],
    }
    print(
        f"   keys={n:<8} {kind:>8} populate {populate_s} s, startup {startup_s:.2f} s, "
        f"db {row['db_mib']:.1f} MiB, rss {row['rss_mib']:.0f} MiB",
        flush=True,
    )
    return server, row


def keys_table(run: Run, sizes: list[int]) -> list[dict[str, Any]]:
    """Every size's server runs at once; the rows alternate between them, round after round."""
    setups: list[tuple[Perdure | Restate, dict[str, Any]]] = []
    try:
        for n in sizes:
            for kind in run.args.servers:
                if run.allowed(kind, n, run.args.restate_max_keys):
                    setups.append(_keys_setup(run, kind, n))
        for server, row in setups:  # warm-up: connections, caches
            for workload in [FRESH] + ([existing(row["keys"])] if row["keys"] else []):
                run_wrk(run.tools.wrk, server.ingress, workload, "", 8, 1)
        flip = False
        for round_ in range(run.args.repeat):
            for level in (1, 64):
                for name in ("fresh", "existing"):
                    order = list(reversed(setups)) if flip else setups
                    flip = not flip
                    for server, row in order:
                        n = row["keys"]
                        if name == "existing" and not n:
                            continue
                        workload = FRESH if name == "fresh" else existing(n)
                        result = measure(
                            run.tools.wrk,
                            server.ingress,
                            server.pid,
                            run.service.pid,
                            workload,
                            prefix="",
                            concurrency=level,
                            seconds=run.args.seconds,
                        )
                        row["wrk"].append({"round": round_, **result})
                        print(
                            f"   keys={n:<8} {row['server']:>8} {name:>8} c={level:<3} "
                            f"{result['throughput']:8.1f} req/s p50 {result['p50_ms']:.2f} "
                            f"ms p99 {result['p99_ms']:.2f} ms cpu "
                            f"{result['server_cpu_ms_per_req'] or 0:.2f} ms/req errors "
                            f"{result['errors']} others {result['other_cores']}",
                            flush=True,
                        )
        for server, row in setups:
            row["rss_after"] = rss_mib(server.pid)
    finally:
        for server, _ in setups:
            server.stop()
    return [row for _, row in setups]


def _send_all(server: Perdure | Restate, service: str, n: int) -> Any:
    return blast(
        server.ingress,
        (f"/{service}/s{i}/run/send" for i in range(n)),
        b'"t"',
        concurrency=32,
        timeout=max(300, n / 20),
    )


def _release_all(server: Perdure | Restate, service: str, n: int) -> Any:
    return blast(
        server.ingress,
        (f"/{service}/s{i}/release" for i in range(n)),
        b'"ok"',
        concurrency=32,
        timeout=max(300, n / 10),
    )


def _outputs(server: Perdure | Restate, service: str, n: int) -> list[str]:
    """A few runs' outputs (first, middle, last): each should be "t:ok"."""
    out = []
    for i in sorted({0, n // 2, n - 1}):
        answer = httpx.get(f"{server.ingress}/restate/workflow/{service}/s{i}/output", timeout=30)
        out.append(f"{answer.status_code} {answer.text}")
    return out


def _settled(counts: dict[str, int], suspended: int, running: int = 0) -> bool:
    return counts.get("suspended", 0) >= suspended and counts.get("running", 0) >= running


def suspended_table(run: Run, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        for kind in run.args.servers:
            if not run.allowed(kind, n, run.args.restate_max_invocations):
                continue
            server = run.server(kind, f"suspended-{n}")
            start_timed(server)
            try:
                server.register(run.service.uri)
                counts = run.counts(server)
                row: dict[str, Any] = {
                    "invocations": n,
                    "server": kind,
                    "rss_start": rss_mib(server.pid),
                }
                sent = _send_all(server, "Waiter", n)
                row["send"] = vars(sent) | {"rate": sent.rate}
                print(
                    f"   suspended={n:<7} {kind:>8} sent {sent.ok} in {sent.seconds:.1f} s "
                    f"({sent.rate:.0f}/s), errors {sent.errors} {sent.samples[:2]}",
                    flush=True,
                )
                now, waited, reached = wait_counts(
                    counts, lambda c, ok=sent.ok: _settled(c, ok), timeout=max(120, n / 50)
                )
                row.update(suspend_wait_s=waited, suspended_reached=reached, counts_suspended=now)
                wait_quiet([server.pid], timeout=60)
                row["rss_suspended"] = rss_mib(server.pid)
                row["db_mib_suspended"] = disk_mib(data_dir(server))
                print(
                    f"   suspended={n:<7} {kind:>8} all suspended after {waited:.1f} s more: "
                    f"{now}, rss {row['rss_suspended']}, db {row['db_mib_suspended']:.1f} MiB",
                    flush=True,
                )
                released = _release_all(server, "Waiter", n)
                row["release"] = vars(released) | {"rate": released.rate}
                now, waited, reached = wait_counts(
                    counts, lambda c: active(c) == 0, timeout=max(120, n / 50)
                )
                row.update(
                    complete_wait_s=waited,
                    completed_reached=reached,
                    counts_end=now,
                    outputs=_outputs(server, "Waiter", n),
                    rss_end=rss_mib(server.pid),
                    db_mib_end=disk_mib(data_dir(server)),
                )
                print(
                    f"   suspended={n:<7} {kind:>8} released in {released.seconds:.1f} s "
                    f"(errors {released.errors}), all done {waited:.1f} s later: {now} "
                    f"{row['outputs']}",
                    flush=True,
                )
                rows.append(row)
            finally:
                server.stop()
    return rows


def _first_call_s(server: Perdure | Restate, timeout: float = 600) -> float:
    """Seconds until a Greeter call answers 200 (retrying while the server recovers)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            answer = httpx.post(f"{server.ingress}/Greeter/greet", json="Ada", timeout=timeout)
            if answer.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return time.monotonic() - start


def recovery_table(run: Run, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        holders = min(max(n // 100, 5), run.args.running)
        for kind in run.args.servers:
            if not run.allowed(kind, n, run.args.restate_max_invocations):
                continue
            server = run.server(kind, f"recovery-{n}")
            start_timed(server)
            try:
                server.register(run.service.uri)
                counts = run.counts(server)
                row: dict[str, Any] = {"invocations": n, "running": holders, "server": kind}
                sent = _send_all(server, "Waiter", n)
                held = _send_all(server, "Holder", holders)
                row["send"] = {
                    "ok": sent.ok + held.ok,
                    "errors": sent.errors + held.errors,
                    "seconds": sent.seconds + held.seconds,
                }
                now, waited, reached = wait_counts(
                    counts,
                    lambda c, ok=sent.ok, h=held.ok: _settled(c, ok, h),
                    timeout=max(120, n / 50),
                )
                row.update(counts_before=now, settled_before=reached, settle_before_s=waited)
                row["rss_before"] = rss_mib(server.pid)
                row["db_mib"] = disk_mib(data_dir(server))
                print(
                    f"   recovery={n:<7} {kind:>8} before kill: {now}, rss "
                    f"{row['rss_before']}, db {row['db_mib']:.1f} MiB",
                    flush=True,
                )
                assert server.proc is not None
                os.kill(server.pid, signal.SIGKILL)
                server.proc.wait(timeout=60)
                start = time.monotonic()
                server.start()  # returns once admin and ingress health answer
                row["health_s"] = time.monotonic() - start
                row["first_call_s"] = row["health_s"] + _first_call_s(server)
                row["rss_restart"] = rss_mib(server.pid)
                row["settle_s"] = row["first_call_s"] + wait_quiet([server.pid], timeout=600)
                row["rss_settled"] = rss_mib(server.pid)
                row["counts_restart"] = counts()
                print(
                    f"   recovery={n:<7} {kind:>8} restart: health {row['health_s']:.2f} s, "
                    f"first call {row['first_call_s']:.2f} s, quiet {row['settle_s']:.1f} s, "
                    f"rss {row['rss_settled']} {row['counts_restart']}",
                    flush=True,
                )
                start = time.monotonic()
                released = _release_all(server, "Waiter", n)
                released_h = _release_all(server, "Holder", holders)
                now, _, reached = wait_counts(
                    counts, lambda c: active(c) == 0, timeout=max(120, n / 50)
                )
                row.update(
                    release_s=released.seconds + released_h.seconds,
                    release_errors=released.errors + released_h.errors,
                    complete_s=time.monotonic() - start,
                    completed_reached=reached,
                    counts_end=now,
                    outputs=_outputs(server, "Waiter", n) + _outputs(server, "Holder", holders),
                    rss_end=rss_mib(server.pid),
                )
                print(
                    f"   recovery={n:<7} {kind:>8} released, all done in "
                    f"{row['complete_s']:.1f} s: {now} {row['outputs']}",
                    flush=True,
                )
                rows.append(row)
            finally:
                server.stop()
    return rows


RUNNERS = {
    "keys": keys_table,
    "suspended": suspended_table,
    "recovery": recovery_table,
    "retained": retained_table,
    "active": active_table,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("tables", nargs="*", choices=[*TABLES, []], help="default: all")
    parser.add_argument("--quick", action="store_true", help="small sizes, 5 s wrk rows")
    parser.add_argument("--keys", type=int, nargs="+", help="sizes of the keys table")
    parser.add_argument("--suspended", type=int, nargs="+", help="sizes of the suspended table")
    parser.add_argument("--recovery", type=int, nargs="+", help="sizes of the recovery table")
    parser.add_argument("--retained", type=int, nargs="+", help="sizes of the retained table")
    parser.add_argument("--active", type=int, nargs="+", help="sizes of the active table")
    parser.add_argument(
        "--patched-src", type=Path, help="retained: also start servers from this source tree"
    )
    parser.add_argument(
        "--servers", nargs="+", choices=["perdure", "restate"], default=["perdure", "restate"]
    )
    parser.add_argument(
        "--restate-max-keys",
        type=int,
        default=10**4,
        help="Restate's keys are made by calls: skip it above this many",
    )
    parser.add_argument("--restate-max-invocations", type=int, default=10**4)
    parser.add_argument(
        "--running",
        type=int,
        default=100,
        help="recovery: at most this many running (non-suspended) runs",
    )
    parser.add_argument("--seconds", type=float, help="seconds per wrk row (5 quick, 8 full)")
    parser.add_argument("--repeat", type=int, help="keys: rounds of rows (1 quick, 3 full)")
    parser.add_argument(
        "--perdure-src",
        type=Path,
        default=ROOT / "src",
        help="run the Perdure server from this source tree",
    )
    parser.add_argument("--label", help="file name part after the table (default: quick/none)")
    parser.add_argument("--out", type=Path, default=report.RESULTS, help="results directory")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = parser.parse_args(argv)
    args.tables = args.tables or list(TABLES)
    args.seconds = args.seconds or (5.0 if args.quick else 8.0)
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.label is None:
        args.label = "quick" if args.quick else ""
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]
    wrk = shutil.which("wrk")
    if "restate" in args.servers or wrk is None:
        tools = ensure_tools()
    else:  # Perdure alone: no need to install restate-server
        tools = Tools(RESTATE_BINARY, Path(wrk))
    work = Path(tempfile.mkdtemp(prefix="perdure-scale-"))
    print(f"work dir: {work}", flush=True)
    service = Service("bench.scale_services", work / "service.log").start()
    written = []
    try:
        run = Run(args, tools, service, work)
        for table in args.tables:
            chosen = getattr(args, table) or sizes[table]
            print(f"{table}: sizes {chosen}, servers {args.servers}", flush=True)
            results: dict[str, Any] = {
                "table": table,
                "date": datetime.date.today().isoformat(),
                "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "command": "python -m bench.scale "
                + " ".join(argv if argv is not None else sys.argv[1:]),
                "machine": report.machine_facts(),
                "restate_version": RESTATE_VERSION,
                "sizes": chosen,
                "perdure_src": str(args.perdure_src),
                "seconds": args.seconds,
                "repeat": args.repeat,
            }
            results["rows"] = RUNNERS[table](run, chosen)
            results["finished_at"] = datetime.datetime.now(datetime.UTC).isoformat(
                timespec="seconds"
            )
            written.append(scale_report.write(results, args.out, args.label))
            print(scale_report.markdown_tables(results), flush=True)
    finally:
        service.stop()
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for path in written:
        print(f"written: {path}")
    json.dumps(written, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
