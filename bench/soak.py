"""A soak: a steady mixed load on one `perdure server` for minutes, watching for slow leaks.

    .venv/bin/python -m bench.soak --minutes 20 --rate 40     # writes bench/results/DATE-soak.*
    .venv/bin/python -m bench.soak --rejudge bench/results/DATE-soak.json   # check again

The server runs with its defaults (`bench.processes.Perdure`), the services are the benchmark's
own, written with the official `restate-sdk` (`bench.services`), everything on 127.0.0.1.
An open-loop sender starts `--rate` requests a second, drawn from a fixed mix (`MIX`): calls to
a stateless handler, calls and sends to 16 counter keys, three-step `ctx.run` chains, durable
sleeps, sends, and calls with an idempotency key. Every `--sample` seconds it records the
server's resident memory (VmRSS), its open file descriptors (/proc/PID/fd) and the requests
answered so far; latencies are grouped in windows of `--window` seconds.

At the end every send is attached to (its output must arrive) and every counter key is read
back (it must hold the sum of the deltas sent to it). `check` then asks:

1. every request was answered as expected (no error, no send lost, no counter off);
2. memory after the warm-up grew by no more than the server's caches take by design
   (`Bounds.rss_growth_mib`), and over the second half of the run by no more than
   `Bounds.late_growth_mib` (a full cache stops growing, a leak does not);
3. with no client connected, the server holds as many file descriptors after the run as before
   it (within `Bounds.fd_slack`);
4. the p99 of the last window is within `Bounds.p99_factor` of the first window's after the
   warm-up, and the sender held the asked rate.

Each window's in-flight count, the server's CPU and the machine's load are recorded beside its
latency: on a shared machine they tell a slow server from a busy machine.

The run is bounded: at most `MAX_MINUTES`, `MAX_RATE` requests a second and `MAX_IN_FLIGHT`
requests open at once (a sender that falls behind waits, and says so in the result).
`tests/soak/` runs a short version with looser bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.http1 import TRANSPORT_ERRORS, Http1Client
from bench.processes import Perdure, Service, cpu_seconds, machine_busy_seconds
from bench.soak_report import git_commit, report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

MAX_MINUTES = 180.0
MAX_RATE = 400.0
MAX_IN_FLIGHT = 256
# Kept open by the sender; the server's descriptor count includes these, so a fixed pool keeps
# the "fds stay flat" check about the server, not about how many sockets the client opened.
CLIENT_CONNECTIONS = 48
COUNTER_KEYS = 16
SLEEP_MS = 100
CHAIN_STEPS = 3
# Sleeps are excluded from the latency windows: their latency is the timer, not the engine.
UNTIMED = frozenset({"sleep"})

# (kind, weight): the share of each kind of request in the steady mix.
MIX: tuple[tuple[str, int], ...] = (
    ("greet", 30),
    ("add", 20),
    ("add_send", 15),
    ("chain", 10),
    ("sleep", 10),
    ("greet_send", 10),
    ("greet_idempotent", 5),
)


@dataclass(frozen=True)
class Bounds:
    """What `check` accepts. The defaults are for runs of ten minutes or more."""

    warmup_s: float = 60.0
    # By design the server's memory grows as its caches fill: SQLite's page cache, 16 MiB on
    # each of its two connections (storage/sqlite.py, cache_size), and the store's 8192 most
    # recent invocation rows (ROW_CACHE). 48 MiB is those 40 or so and room for the allocator.
    rss_growth_mib: float = 48.0
    rss_growth_pct: float = 10.0
    # Once the caches are full, memory must stop growing: the growth over the second half of
    # the time after the warm-up is held to this. A leak keeps growing there; a cache does not.
    late_growth_mib: float | None = 8.0
    fd_slack: int = 8
    # The two timed checks; None skips one (tests/soak does: no timed assertions in tests).
    p99_factor: float | None = 3.0
    min_rate_share: float | None = 0.9  # of the asked rate, over the whole run


@dataclass
class Sample:
    t: float  # seconds since the load started
    rss_kib: int
    fds: int
    service_rss_kib: int
    answered: int
    errors: int
    in_flight: int
    db_mib: float = 0.0  # the database and its WAL: what SQLite's page caches draw from
    server_cpu_pct: float = 0.0  # of one core, since the previous sample
    machine_busy_pct: float = 0.0  # of all cores, every process: shows other work's load
    machine_iowait_pct: float = 0.0  # of all cores: time waiting for the disk (fsyncs)


@dataclass
class Tally:
    """What the sender saw; filled by the request tasks."""

    latencies: list[tuple[float, str, float]] = field(default_factory=list)  # (t, kind, s)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    sent: int = 0
    answered: int = 0
    late: int = 0  # requests that waited for a free slot (the sender fell behind)
    sends: list[tuple[str, str, Any]] = field(default_factory=list)  # (kind, id, expected)
    deltas: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 20:
            self.errors.append(text)


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (VmRSS).

    >>> rss_kib(os.getpid()) > 0
    True
    """
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    """How many file descriptors a process holds open.

    >>> open_fds(os.getpid()) > 2
    True
    """
    return len(os.listdir(f"/proc/{pid}/fd"))


def _pick(rng: random.Random) -> str:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    return rng.choices(kinds, weights)[0]


async def _one(
    client: Http1Client, kind: str, n: int, rng: random.Random, tally: Tally, t0: float
) -> None:
    """Sends one request of `kind` and records its latency, or the error it met."""
    key = f"k{rng.randrange(COUNTER_KEYS)}"
    delta = rng.randint(1, 5)
    headers: dict[str, str] = {}
    if kind in ("greet", "greet_idempotent"):
        url, body, expected, status = "/Greeter/greet", f"soak-{n}", f"Hello soak-{n}!", 200
        if kind == "greet_idempotent":
            headers["idempotency-key"] = f"soak-{os.getpid()}-{n}"
    elif kind == "greet_send":
        url, body, expected, status = "/Greeter/greet/send", f"s{n}", f"Hello s{n}!", 202
    elif kind == "add":
        url, body, expected, status = f"/Counter/{key}/add", delta, None, 200
    elif kind == "add_send":
        url, body, expected, status = f"/Counter/{key}/add/send", delta, None, 202
    elif kind == "chain":
        url, body, expected, status = "/Chain/steps", {"n": CHAIN_STEPS}, 3, 200
    else:
        url, body, expected, status = "/Sleeper/sleep", SLEEP_MS, SLEEP_MS, 200
    started = time.monotonic()
    try:
        answer = await client.post(url, json=body, headers=headers)
    except TRANSPORT_ERRORS as exc:
        tally.error(f"{kind}: {type(exc).__name__}: {exc}")
        return
    took = time.monotonic() - started
    if answer.status_code != status:
        tally.error(f"{kind}: HTTP {answer.status_code}: {answer.text[:200]}")
        return
    if kind.startswith("add"):
        tally.deltas[key] = tally.deltas.get(key, 0) + delta
    if status == 202:
        tally.sends.append((kind, answer.json()["invocationId"], expected))
    elif expected is not None and answer.json() != expected:
        tally.error(f"{kind}: expected {expected!r}, got {answer.text[:200]}")
        return
    tally.answered += 1
    tally.latencies.append((time.monotonic() - t0, kind, took))


class _Sampler:
    """Takes one `Sample` of the server and the service; CPU shares since the previous one."""

    def __init__(self, server_pid: int, service_pid: int, t0: float, data: Path) -> None:
        self.server_pid, self.service_pid, self.t0 = server_pid, service_pid, t0
        self.data = data
        self._last = (time.monotonic(), cpu_seconds(server_pid), machine_busy_seconds())
        self._iowait = _iowait_seconds()

    def take(self, tally: Tally, in_flight: int) -> Sample:
        now, cpu, busy = time.monotonic(), cpu_seconds(self.server_pid), machine_busy_seconds()
        then, cpu0, busy0 = self._last
        self._last = (now, cpu, busy)
        elapsed = max(now - then, 1e-6)
        iowait, iowait0 = _iowait_seconds(), self._iowait
        self._iowait = iowait
        return Sample(
            t=round(now - self.t0, 2),
            rss_kib=rss_kib(self.server_pid),
            fds=open_fds(self.server_pid),
            service_rss_kib=rss_kib(self.service_pid),
            answered=tally.answered,
            errors=tally.error_count,
            in_flight=in_flight,
            db_mib=round(_db_bytes(self.data) / 2**20, 1),
            server_cpu_pct=round(100 * (cpu - cpu0) / elapsed, 1),
            machine_busy_pct=round(100 * (busy - busy0) / elapsed / (os.cpu_count() or 1), 1),
            machine_iowait_pct=round(100 * (iowait - iowait0) / elapsed / (os.cpu_count() or 1), 1),
        )


def _iowait_seconds() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        ticks = f.readline().split()
    return int(ticks[5]) / os.sysconf("SC_CLK_TCK")  # cpu user nice system idle iowait ...


def _db_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in data.glob("perdure.db*") if p.is_file())


async def _sample_loop(
    sampler: _Sampler,
    tally: Tally,
    every: float,
    in_flight: Callable[[], int],
    samples: list[Sample],
    stop: asyncio.Event,
    quiet: bool,
) -> None:
    while True:
        sample = sampler.take(tally, in_flight())
        samples.append(sample)
        if not quiet:
            print(
                f"t={sample.t:7.1f}s rss={sample.rss_kib / 1024:7.1f} MiB fds={sample.fds:4d} "
                f"answered={sample.answered:7d} errors={sample.errors} "
                f"in_flight={sample.in_flight} db={sample.db_mib} MiB cpu={sample.server_cpu_pct}% "
                f"machine={sample.machine_busy_pct}% iowait={sample.machine_iowait_pct}%",
                flush=True,
            )
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except TimeoutError:
            pass


async def _drive(
    data: Path,
    ingress: str,
    server_pid: int,
    service_pid: int,
    seconds: float,
    rate: float,
    sample_every: float,
    seed: int,
    quiet: bool,
    attach: bool = True,
) -> tuple[Tally, list[Sample], float, dict[str, float]]:
    tally = Tally()
    samples: list[Sample] = []
    rng = random.Random(seed)
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()
    # Descriptors with no client connected, before and after: the leak check that does not
    # depend on how many connections the sender had open at the moment of a sample.
    idle: dict[str, float] = {"fds_idle_before": open_fds(server_pid)}
    client = Http1Client(ingress, CLIENT_CONNECTIONS)
    try:
        t0, cpu0 = time.monotonic(), time.process_time()
        probe = _Sampler(server_pid, service_pid, t0, data)
        sampler = asyncio.create_task(
            _sample_loop(probe, tally, sample_every, lambda: len(tasks), samples, stop, quiet)
        )
        total = int(seconds * rate)
        for n in range(total):
            due = t0 + n / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if slots.locked():
                tally.late += 1
            await slots.acquire()
            kind = _pick(rng)
            tally.by_kind[kind] = tally.by_kind.get(kind, 0) + 1
            tally.sent += 1
            task = asyncio.create_task(_one(client, kind, n, rng, tally, t0))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
        load_seconds = time.monotonic() - t0
        # The sender's own CPU: if it nears a core, the sender (not the server) is the limit.
        idle["sender_cpu_pct"] = round(100 * (time.process_time() - cpu0) / load_seconds, 1)
        if tasks:
            await asyncio.wait(tasks, timeout=120)
        stop.set()
        await sampler
        samples.append(probe.take(tally, len(tasks)))
        await _verify(client, tally, attach=attach)
    finally:
        await client.aclose()
    await asyncio.sleep(2)  # the server sees the client's connections close
    idle["fds_idle_after"] = open_fds(server_pid)
    return tally, samples, load_seconds, idle


async def _verify(client: Http1Client, tally: Tally, *, attach: bool) -> None:
    """Every send's output arrives; every counter key holds the sum of its deltas."""
    slots = asyncio.Semaphore(16)

    async def attach_one(kind: str, invocation_id: str, expected: Any) -> None:
        async with slots:
            try:
                answer = await client.get(f"/restate/invocation/{invocation_id}/attach")
            except TRANSPORT_ERRORS as exc:
                tally.error(f"attach {kind} {invocation_id}: {type(exc).__name__}: {exc}")
                return
            if answer.status_code != 200:
                tally.error(f"attach {kind} {invocation_id}: HTTP {answer.status_code}")
            elif expected is not None and answer.json() != expected:
                tally.error(f"attach {kind} {invocation_id}: got {answer.text[:100]}")

    if attach:
        await asyncio.gather(*(attach_one(*send) for send in tally.sends))
    else:  # outputs already purged (a retention shorter than the run); the sums still check
        tally.sends = []
    for key, total in sorted(tally.deltas.items()):
        answer = await client.post(f"/Counter/{key}/add", json=0)
        if answer.status_code != 200 or answer.json() != total:
            tally.error(f"counter {key}: expected {total}, got {answer.status_code} {answer.text}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def windows(
    latencies: list[tuple[float, str, float]], width: float, load_seconds: float
) -> list[dict[str, Any]]:
    """Per window of `width` seconds: requests answered, p50 and p99 in ms (sleeps apart).

    >>> windows([(0.5, "greet", 0.010), (1.5, "greet", 0.020)], 1.0, 2.0)[1]["p50_ms"]
    20.0
    """
    count = max(1, round(load_seconds / width))
    rows = []
    for i in range(count):
        lo, hi = i * width, (i + 1) * width
        if i == count - 1:
            hi = float("inf")  # the tail (requests answered after the last start) goes last
        timed = [s for t, k, s in latencies if lo <= t < hi and k not in UNTIMED]
        sleeps = [s for t, k, s in latencies if lo <= t < hi and k in UNTIMED]
        rows.append(
            {
                "start_s": lo,
                "answered": len(timed) + len(sleeps),
                "p50_ms": round(_percentile(timed, 0.5) * 1000, 2),
                "p99_ms": round(_percentile(timed, 0.99) * 1000, 2),
                "sleep_p99_ms": round(_percentile(sleeps, 0.99) * 1000, 2),
            }
        )
    return rows


def _mean(values: list[int]) -> float:
    return statistics.fmean(values) if values else 0.0


def summarize(
    tally: Tally,
    samples: list[Sample],
    load_seconds: float,
    rate: float,
    width: float,
    bounds: Bounds,
) -> dict[str, Any]:
    """The figures `check` judges and the report prints."""
    return {
        "asked_rate": rate,
        "held_rate": round(tally.sent / load_seconds, 2) if load_seconds else 0.0,
        "load_seconds": round(load_seconds, 1),
        "sent": tally.sent,
        "answered": tally.answered,
        "sends_attached": len(tally.sends),
        "counter_keys": len(tally.deltas),
        "errors": tally.error_count,
        "first_errors": tally.errors,
        "late": tally.late,
        "by_kind": dict(sorted(tally.by_kind.items())),
        **sample_figures(samples, bounds),
        "windows": windows(tally.latencies, width, load_seconds),
    }


def sample_figures(samples: list[Sample], bounds: Bounds) -> dict[str, Any]:
    """Memory, descriptors and CPU from the samples (the warm-up decides the baseline)."""
    warm = [s for s in samples if s.t >= bounds.warmup_s] or samples[-1:]
    # Three samples either side smooth out one sample taken in the middle of a burst.
    warm_rss = _mean([s.rss_kib for s in warm[:3]])
    end_rss = _mean([s.rss_kib for s in warm[-3:]])
    answered_after_warm = max(1, warm[-1].answered - warm[0].answered)
    middle = len(warm) // 2
    mid_rss = _mean([s.rss_kib for s in warm[max(0, middle - 1) : middle + 2]])
    later = samples[1:] or samples
    return {
        "rss_start_mib": round(samples[0].rss_kib / 1024, 1),
        "rss_warm_mib": round(warm_rss / 1024, 1),
        "rss_end_mib": round(end_rss / 1024, 1),
        "rss_peak_mib": round(max(s.rss_kib for s in samples) / 1024, 1),
        "rss_growth_mib": round((end_rss - warm_rss) / 1024, 1),
        "rss_growth_pct": round(100 * (end_rss - warm_rss) / warm_rss, 1) if warm_rss else 0.0,
        "rss_growth_kib_per_1000_requests": round(
            (end_rss - warm_rss) / answered_after_warm * 1000, 1
        ),
        "rss_late_from_s": warm[middle].t,
        "rss_late_growth_mib": round((end_rss - mid_rss) / 1024, 1),
        "rss_late_growth_kib_per_1000_requests": round(
            (end_rss - mid_rss) / max(1, warm[-1].answered - warm[middle].answered) * 1000, 1
        ),
        "db_end_mib": samples[-1].db_mib,
        "fds_start": samples[0].fds,
        "fds_warm": round(_mean([s.fds for s in warm[:3]]), 1),
        "fds_end": max(s.fds for s in warm[-3:]),
        "fds_max": max(s.fds for s in samples),
        "server_cpu_pct_mean": round(statistics.fmean(s.server_cpu_pct for s in later), 1),
        "machine_busy_pct_mean": round(statistics.fmean(s.machine_busy_pct for s in later), 1),
        "machine_busy_pct_max": max(s.machine_busy_pct for s in samples),
    }


def check(summary: dict[str, Any], bounds: Bounds) -> list[str]:
    """What failed, one sentence each; an empty list is a pass."""
    failed = []
    if summary["errors"] or summary["answered"] != summary["sent"]:
        failed.append(
            f"{summary['sent'] - summary['answered']} of {summary['sent']} requests were not "
            f"answered as expected ({summary['errors']} errors; first: "
            f"{summary['first_errors'][:3]})"
        )
    allowed = max(bounds.rss_growth_mib, summary["rss_warm_mib"] * bounds.rss_growth_pct / 100)
    if summary["rss_growth_mib"] > allowed:
        failed.append(
            f"memory grew {summary['rss_growth_mib']} MiB after the warm-up "
            f"({summary['rss_warm_mib']} -> {summary['rss_end_mib']} MiB); allowed {allowed:.1f}"
        )
    late = bounds.late_growth_mib
    if late is not None and summary["rss_late_growth_mib"] > late:
        failed.append(
            f"memory kept growing once the caches were full: {summary['rss_late_growth_mib']} "
            f"MiB over the second half of the run (allowed {late})"
        )
    if summary["fds_idle_after"] > summary["fds_idle_before"] + bounds.fd_slack:
        failed.append(
            f"with no client connected, the server held {summary['fds_idle_after']} file "
            f"descriptors after the run and {summary['fds_idle_before']} before it "
            f"(allowed +{bounds.fd_slack})"
        )
    timed = [w for w in summary["windows"] if w["start_s"] >= bounds.warmup_s] or summary["windows"]
    first, last = timed[0]["p99_ms"], timed[-1]["p99_ms"]
    if bounds.p99_factor is not None and first and last > bounds.p99_factor * first:
        failed.append(
            f"p99 of the last window ({last} ms) is over {bounds.p99_factor}x the first "
            f"window's after the warm-up ({first} ms)"
        )
    share = bounds.min_rate_share
    if share is not None and summary["held_rate"] < share * summary["asked_rate"]:
        failed.append(
            f"the sender held {summary['held_rate']} requests/s of the {summary['asked_rate']} "
            "asked (it fell behind; the machine is too busy for this rate)"
        )
    return failed


def run(
    minutes: float,
    rate: float,
    *,
    window: float = 60.0,
    sample: float = 5.0,
    bounds: Bounds | None = None,
    seed: int = 7,
    work: Path | None = None,
    quiet: bool = False,
    server_args: tuple[str, ...] = (),
    attach: bool = True,
) -> dict[str, Any]:
    """Starts a server and the service, soaks, stops both; the summary with `failed` filled.

    `server_args` are more `perdure server` flags, e.g. ("--retention-journal", "1m").
    """
    if not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"--minutes must be above 0 and at most {MAX_MINUTES}")
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"--rate must be above 0 and at most {MAX_RATE}")
    bounds = bounds or Bounds()
    with tempfile.TemporaryDirectory(prefix="perdure-soak-") as tmp:
        base = work or Path(tmp)
        service = Service("bench.services", base / "service.log").start()
        server = Perdure(base / "perdure", extra=list(server_args))
        try:
            server.start()
            server.register(service.uri)
            tally, samples, load_seconds, idle = asyncio.run(
                _drive(
                    server.work_dir / "data",
                    server.ingress,
                    server.pid,
                    service.pid,
                    minutes * 60,
                    rate,
                    sample,
                    seed,
                    quiet,
                    attach,
                )
            )
        finally:
            server.stop()
            service.stop()
    summary = summarize(tally, samples, load_seconds, rate, window, bounds)
    summary.update(idle)
    summary["bounds"] = asdict(bounds)
    summary["window_s"] = window
    summary["samples"] = [asdict(s) for s in samples]
    summary["failed"] = check(summary, bounds)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="requests started per second")
    parser.add_argument("--window", type=float, default=60.0, help="latency window, seconds")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", default=f"{datetime.date.today().isoformat()}-soak")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--no-attach",
        action="store_true",
        help="do not attach to sends at the end (for a retention shorter than the run)",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="one more `perdure server` argument (repeat; e.g. --server-arg=--retention-journal "
        "--server-arg=1m)",
    )
    parser.add_argument(
        "--rejudge",
        metavar="JSON",
        type=Path,
        help="no run: check a recorded result again with these bounds and rewrite its page",
    )
    args = parser.parse_args(argv)
    bounds = Bounds(warmup_s=args.warmup)
    if args.rejudge is not None:
        summary = json.loads(args.rejudge.read_text())
        samples = [Sample(**x) for x in summary["samples"]]
        summary.update(sample_figures(samples, bounds))
        summary["samples"] = [asdict(x) for x in samples]  # fields added since get defaults
        summary["bounds"] = asdict(bounds)
        summary["failed"] = check(summary, bounds)
        page = report(summary, summary["command"])
        print(page)
        if not args.no_write:
            args.rejudge.write_text(json.dumps(summary, indent=1) + "\n")
            args.rejudge.with_suffix(".md").write_text(page)
        return 0 if not summary["failed"] else 1
    summary = run(
        args.minutes,
        args.rate,
        window=args.window,
        sample=args.sample,
        bounds=bounds,
        seed=args.seed,
        server_args=tuple(args.server_arg),
        attach=not args.no_attach,
    )
    summary["commit"] = git_commit()
    command = "python -m bench.soak " + " ".join(sys.argv[1:] if argv is None else argv)
    summary["command"] = command
    page = report(summary, command)
    print(page)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
        (RESULTS / f"{args.name}.md").write_text(page)
    return 0 if not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
