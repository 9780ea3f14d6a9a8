"""Runs the crash suite (tests/crash) several times in a row and records what each run saw.

    .venv/bin/python -m bench.crash_repeat [--runs 5] [--size 200] [--kills 3]

Each run is a fresh `pytest tests/crash` (kill -9 of the server, of the deployment, and of
both); the figures every test reports (invocations in flight at each kill, kills survived,
invocations lost, duplicate journaled steps, early timers) are collected into
``bench/results/DATE-crash-repeat.md`` and ``.json``. Exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def run_once(size: int, kills: int) -> tuple[bool, float, list[dict[str, object]]]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "figures.jsonl"
        env = {
            **os.environ,
            "PERDURE_CRASH_N": str(size),
            "PERDURE_CRASH_KILLS": str(kills),
            "PERDURE_CRASH_REPORT": str(report),
        }
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/crash", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            check=False,
        )
        took = time.monotonic() - started
        figures = (
            [json.loads(line) for line in report.read_text().splitlines()]
            if (report.exists())
            else []
        )
    return done.returncode == 0, took, figures


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| run | victim | invocations | seed | in flight at each kill | kills survived | lost "
        "| duplicate journaled steps | reruns before stored | early timers |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['run']} | {row['mode']} | {row['invocations']} | {row['seed']} "
            f"| {', '.join(str(n) for n in row['in_flight_at_kill'])} "  # type: ignore[attr-defined]
            f"| {row['kills']} | {row['lost']} | {row['duplicate_journaled_steps']} "
            f"| {row['reruns_before_stored']} | {row['early_timers']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    outcomes = []
    for run in range(1, args.runs + 1):
        ok, took, figures = run_once(args.size, args.kills)
        outcomes.append({"run": run, "passed": ok, "seconds": round(took, 1)})
        rows.extend({"run": run, **f} for f in figures)
        print(f"run {run}: {'passed' if ok else 'FAILED'} in {took:.0f} s", flush=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = RESULTS / f"{stamp}-crash-repeat"
    base.with_suffix(".json").write_text(json.dumps({"runs": outcomes, "figures": rows}, indent=1))
    passed = sum(o["passed"] for o in outcomes)  # type: ignore[misc]
    base.with_suffix(".md").write_text(
        f"# Crash suite, {args.runs} runs in a row ({stamp})\n\n"
        f"`python -m bench.crash_repeat --runs {args.runs} --size {args.size} "
        f"--kills {args.kills}` on a 2-core machine: {passed} of {args.runs} runs passed.\n\n"
        + "\n".join(
            f"- run {o['run']}: {'passed' if o['passed'] else 'FAILED'} ({o['seconds']} s)"
            for o in outcomes
        )
        + "\n\n"
        + table(rows)
        + "\n"
    )
    print(f"recorded in {base}.md")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
