"""Perdure embedded vs DBOS Transact on a 10-step workflow, one process each, same machine.

    python -m bench.embedded                # quick: c = 1, 8; 6 s a row, 1 round (~1 minute)
    python -m bench.embedded --full         # c = 1, 8, 32; 15 s a row, 3 rounds (~10 minutes)
    python -m bench.embedded --concurrency 8 --seconds 10 --repeat 3 --systems perdure dbos

Each row is a fresh process (`python -m bench.embedded --worker SYSTEM ...`) that runs one
system and its caller together, with its storage in a real SQLite file in a new temp dir:

- ``perdure``: the Perdure server and a Perdure-SDK service in one process and one event loop
  (what `perdure dev` and `perdure.testing.AsyncHarness` run), storage in SQLite (WAL,
  synchronous=FULL). The workflow is a service handler doing 10 sequential ``ctx.run`` steps;
  ``c`` tasks of the same loop call it through the Perdure client (HTTP to the ingress, which
  calls the service over HTTP/2, as in production).
- ``dbos``: DBOS Transact (pip ``dbos``, pinned below) with its SQLite system database as it
  configures it (rollback journal, SQLite's default synchronous=FULL): ``@DBOS.workflow`` with
  10 ``@DBOS.step`` calls; ``c`` threads call the workflow function directly.
- ``dbos-wal``: the same, with the system database switched to WAL before launch (then the
  SQLite settings are Perdure's: WAL, synchronous=FULL, an fsync per commit).

Both do the same work per step (a plain function returning its index) and record every step's
result durably before the next one starts. A row runs ``seconds`` after a short warm-up and
reports workflows/s, p50/p99 latency, and the process's CPU (user + system, all threads) per
workflow, caller included. The systems alternate within a round and the order flips each
round. Results: ``bench/results/<date>-<label>.{md,json}`` (label ``embedded`` by default).
`pip install dbos==3.4.0` runs first if DBOS is missing (it is not a test dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import faulthandler
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.processes import ROOT, machine_busy_seconds

DBOS_VERSION = "3.4.0"
STEPS = 10
EXPECTED = STEPS * (STEPS - 1) // 2
SYSTEMS = ("perdure", "dbos", "dbos-wal")
WARMUP_SECONDS = 1.5
# A worker still running this long after its row should have ended is stuck.
WORKER_GRACE_SECONDS = 90.0


def step(i: int) -> int:
    """The work of one step, the same for both systems."""
    return i


# --- measuring, in the worker process ------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(
    latencies: list[float], errors: int, wall: float, cpu: float, busy: float
) -> dict[str, Any]:
    done = len(latencies)
    return {
        "workflows": done,
        "errors": errors,
        "seconds": round(wall, 3),
        "throughput": done / wall if wall else 0.0,
        "p50_ms": _percentile(latencies, 0.50) * 1000 if latencies else None,
        "p99_ms": _percentile(latencies, 0.99) * 1000 if latencies else None,
        "cpu_s": cpu,
        "cpu_ms_per_workflow": cpu / done * 1000 if done else None,
        # What the rest of the machine used meanwhile, in cores (other people's work).
        "other_cores": round(max(busy - cpu, 0.0) / wall, 2) if wall else None,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def _drive_tasks(
    call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float
) -> dict[str, Any]:
    """``concurrency`` tasks call back to back for ``seconds``, after a warm-up."""
    latencies: list[float] = []
    errors = 0
    measuring = False

    async def caller(deadline: float) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                ok = await call() == EXPECTED
            except Exception:
                ok = False
            if measuring:
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1

    await asyncio.gather(
        *(caller(time.perf_counter() + WARMUP_SECONDS) for _ in range(concurrency))
    )
    measuring = True
    cpu0, busy0, start = _cpu(), machine_busy_seconds(), time.perf_counter()
    await asyncio.gather(*(caller(start + seconds) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return _summary(latencies, errors, wall, _cpu() - cpu0, machine_busy_seconds() - busy0)


def _drive_threads(call: Callable[[], Any], concurrency: int, seconds: float) -> dict[str, Any]:
    """``concurrency`` threads call back to back for ``seconds``, after a warm-up."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def caller(deadline: float, keep: bool) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                ok = call() == EXPECTED
            except Exception:
                ok = False
            took = time.perf_counter() - start
            if keep:
                with lock:
                    if ok:
                        latencies.append(took)
                    else:
                        errors[0] += 1

    def run_all(deadline: float, keep: bool) -> None:
        threads = [
            threading.Thread(target=caller, args=(deadline, keep)) for _ in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    run_all(time.perf_counter() + WARMUP_SECONDS, False)
    cpu0, busy0, start = _cpu(), machine_busy_seconds(), time.perf_counter()
    run_all(start + seconds, True)
    wall = time.perf_counter() - start
    return _summary(latencies, errors[0], wall, _cpu() - cpu0, machine_busy_seconds() - busy0)


# --- the two systems ----------------------------------------------------------------------


def _sqlite_facts(path: Path) -> dict[str, Any]:
    """journal_mode of a database file as stored (synchronous is per connection: see docs)."""
    conn = sqlite3.connect(path)
    try:
        return {
            "file": path.name,
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "size_bytes": path.stat().st_size,
        }
    finally:
        conn.close()


def perdure_worker(concurrency: int, seconds: float, data_dir: Path) -> dict[str, Any]:
    import perdure
    from perdure.server import http
    from perdure.testing import AsyncHarness

    flow = perdure.Service("Flow")

    @flow.handler()
    async def run(ctx: perdure.Context, n: int) -> int:
        total = 0
        for i in range(n):

            def one(i: int = i) -> int:
                return step(i)

            total += await ctx.run(f"step-{i}", one)
        return total

    async def main() -> dict[str, Any]:
        async with AsyncHarness([flow], data_dir=data_dir) as env:
            target = env.client.service(flow)
            return await _drive_tasks(lambda: target.run(STEPS), concurrency, seconds)

    result = http.run(main())
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    databases = [p for p in files if p.suffix in (".db", ".sqlite", ".sqlite3")]
    result["data_files"] = [p.name for p in files]
    result["sqlite"] = [_sqlite_facts(p) for p in databases]
    result["synchronous"] = "FULL (src/perdure/server/storage/sqlite.py)"
    return result


def dbos_worker(concurrency: int, seconds: float, data_dir: Path, *, wal: bool) -> dict[str, Any]:
    from dbos import DBOS, DBOSConfig

    database = data_dir / "dbos.sqlite"
    if wal:  # journal_mode=WAL is stored in the file: DBOS's connections open it in WAL
        conn = sqlite3.connect(database)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    config: DBOSConfig = {
        "name": "bench-embedded",
        "system_database_url": f"sqlite:///{database}",
        "log_level": "WARNING",
    }
    DBOS(config=config)

    @DBOS.step()
    def dbos_step(i: int) -> int:
        return step(i)

    @DBOS.workflow()
    def flow(n: int) -> int:
        total = 0
        for i in range(n):
            total += dbos_step(i)
        return total

    DBOS.launch()
    try:
        result = _drive_threads(lambda: flow(STEPS), concurrency, seconds)
        result["synchronous"] = _dbos_synchronous()
    finally:
        DBOS.destroy()
    result["sqlite"] = [_sqlite_facts(database)]
    result["data_files"] = sorted(p.name for p in data_dir.iterdir())
    return result


def _dbos_synchronous() -> str:
    """PRAGMA synchronous on one of DBOS's own connections (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA)."""
    try:
        from dbos._dbos import _get_dbos_instance

        engine = _get_dbos_instance()._sys_db.engine  # facts for the record
        with engine.connect() as conn:
            value = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(int(str(value)), str(value))
    except Exception as exc:  # an internal name moved: say so rather than fail the row
        return f"unknown ({exc!r})"


def worker(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    # A row that hangs prints every thread's stack to stderr and exits, for the orchestrator.
    faulthandler.dump_traceback_later(args.seconds + WORKER_GRACE_SECONDS, exit=True)
    if args.worker == "perdure":
        result = perdure_worker(args.concurrency[0], args.seconds, data_dir)
    else:
        result = dbos_worker(
            args.concurrency[0], args.seconds, data_dir, wal=args.worker == "dbos-wal"
        )
    print("EMBEDDED_JSON " + json.dumps(result), flush=True)
    return 0


# --- the orchestrator ---------------------------------------------------------------------


def ensure_dbos() -> str:
    """The installed DBOS version, after `pip install dbos==DBOS_VERSION` if it is missing."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        if version("dbos") == DBOS_VERSION:
            return DBOS_VERSION
    except PackageNotFoundError:
        pass
    print(f"installing dbos=={DBOS_VERSION} with pip ...", flush=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", f"dbos=={DBOS_VERSION}"]
    subprocess.run(pip, check=True)
    return DBOS_VERSION


def run_row(system: str, concurrency: int, seconds: float, work: Path) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"{system}-c{concurrency}-", dir=work))
    cmd = [
        sys.executable, "-m", "bench.embedded", "--worker", system,
        "--concurrency", str(concurrency), "--seconds", str(seconds),
        "--data-dir", str(data_dir),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    env = {k: v for k, v in env.items() if not k.startswith(("PERDURE_", "DBOS_"))}
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=data_dir, env=env,
        timeout=seconds + 2 * WORKER_GRACE_SECONDS,
        check=False,
    )  # fmt: skip
    line = next((x for x in out.stdout.splitlines() if x.startswith("EMBEDDED_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
            f"{out.stderr[-3000:]}"
        )
    shutil.rmtree(data_dir, ignore_errors=True)
    row: dict[str, Any] = json.loads(line.removeprefix("EMBEDDED_JSON "))
    return {"system": system, "concurrency": concurrency, **row}


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per system x concurrency: the median of each number over the rounds.

    >>> rows = [{"system": "dbos", "concurrency": 1, "throughput": t} for t in (1.0, 3.0, 2.0)]
    >>> medians(rows)[0]["throughput"], medians(rows)[0]["rounds"]
    (2.0, 3)
    """
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["system"], r["concurrency"]), []).append(r)
    merged = []
    for group in groups.values():
        row = dict(group[0])
        for name, value in group[0].items():
            values = [g[name] for g in group if isinstance(g.get(name), int | float)]
            if name in ("system", "concurrency", "round"):
                continue  # what the rows are grouped by stays as it is
            if isinstance(value, int | float) and len(values) == len(group):
                row[name] = statistics.median(values)
        row["errors"] = sum(g.get("errors", 0) for g in group)
        row["rounds"] = len(group)
        merged.append(row)
    merged.sort(key=lambda r: (r["concurrency"], SYSTEMS.index(r["system"])))
    return merged


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """Every system at every concurrency; the ratios are Perdure's over that row's system."""
    by_key = {(r["system"], r["concurrency"]): r for r in rows}
    head = (
        "| c | system | workflows/s | p50 ms | p99 ms | CPU ms/workflow | errors "
        "| Perdure / this: workflows/s | Perdure / this: CPU per workflow | other cores |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        p = by_key.get(("perdure", r["concurrency"]))
        mine = r["system"] == "perdure"
        lines.append(
            f"| {r['concurrency']} | {r['system']} | {_fmt(r['throughput'])} "
            f"| {_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} "
            f"| {_fmt(r['cpu_ms_per_workflow'], 2)} | {r['errors']} "
            f"| {'' if mine or p is None else _ratio(p['throughput'], r['throughput'])} "
            f"| {'' if mine or p is None else _ratio(p['cpu_ms_per_workflow'], r['cpu_ms_per_workflow'])} "  # noqa: E501
            f"| {_fmt(r.get('other_cores'), 2)} |"
        )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    storage: dict[str, str] = {}
    for r in results["rows"]:
        storage.setdefault(
            r["system"],
            f"{', '.join(s['journal_mode'] for s in r.get('sqlite', []))}, "
            f"synchronous={r.get('synchronous')}; files: {', '.join(r.get('data_files', []))}",
        )
    return "\n".join([
        f"# Perdure embedded vs DBOS Transact {results['dbos_version']} — {results['date']}",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, Linux {m['kernel']}, "
        f"Python {m['python']}; Perdure commit {m['perdure_commit']}.  ",
        f"Workflow: {STEPS} sequential durable steps, each a plain function returning its "
        f"index; {results['seconds']} s a row after a {WARMUP_SECONDS} s warm-up; "
        f"{results['repeat']} round(s), the table shows medians (each round in the json). "
        "One process per row, system and caller together; CPU is that process's user + "
        "system time (all threads) divided by the workflows completed.",
        "",
        table(medians(results["rows"])),
        "",
        "Storage as measured (journal mode read from each database file after the row; "
        "synchronous from the running connection for DBOS, from the source for Perdure):",
        "",
        *[f"- `{system}`: {text}" for system, text in storage.items()],
        "",
        "How the systems differ here: `perdure` answers a call through its HTTP ingress and "
        "runs the handler over HTTP/2 in the same process (the Perdure SDK runs a plain "
        "`def` step in a worker thread); DBOS runs the workflow in the caller's thread and "
        "writes each step straight to SQLite. `dbos` is DBOS as it configures SQLite "
        "(rollback journal); `dbos-wal` gives it Perdure's journal mode. `other cores`: CPU the "
        "rest of the machine used during the row; a row with a high value ran on a busy "
        "machine.",
        *(["", "## Notes", "", *results["notes"]] if results.get("notes") else []),
        "",
    ])  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.embedded", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--full", action="store_true", help="c = 1, 8, 32; 15 s; 3 rounds")
    parser.add_argument("--seconds", type=float, help="seconds a row (6 quick, 15 full)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="override the levels")
    parser.add_argument("--repeat", type=int, help="rounds (1 quick, 3 full)")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--label", default="embedded", help="results file name after the date")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        args.seconds = args.seconds or 5.0
        return worker(args)
    seconds = args.seconds or (15.0 if args.full else 6.0)
    levels = args.concurrency or ([1, 8, 32] if args.full else [1, 8])
    repeat = args.repeat or (3 if args.full else 1)
    dbos_version = ensure_dbos()
    work = Path(tempfile.mkdtemp(prefix="perdure-embedded-"))
    rows: list[dict[str, Any]] = []
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    flip = False
    try:
        for round_ in range(repeat):
            for level in levels:
                order = list(reversed(args.systems)) if flip else list(args.systems)
                flip = not flip
                for system in order:
                    row = {"round": round_, **run_row(system, level, seconds, work)}
                    rows.append(row)
                    print(
                        f"  c={level:<3} {system:>8}  {row['throughput']:8.1f} workflows/s  "
                        f"p50 {row['p50_ms'] or 0:7.2f} ms  p99 {row['p99_ms'] or 0:7.2f} ms  "
                        f"CPU {row['cpu_ms_per_workflow'] or 0:6.2f} ms/workflow  "
                        f"errors {row['errors']}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = argv if argv is not None else sys.argv[1:]
    results = {
        "date": datetime.date.today().isoformat(),
        "started_at": started,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "label": args.label,
        "command": " ".join(["python -m bench.embedded", *command]),
        "machine": report.machine_facts(),
        "dbos_version": dbos_version,
        "steps": STEPS,
        "seconds": seconds,
        "repeat": repeat,
        "rows": rows,
    }
    report.RESULTS.mkdir(exist_ok=True)
    stem = report.RESULTS / f"{results['date']}-{args.label}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(results))
    print()
    print(table(medians(rows)))
    print(f"\nwritten: {stem}.md and {stem.name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
