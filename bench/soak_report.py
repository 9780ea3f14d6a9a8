"""The Markdown page of a soak run (`bench.soak`) for bench/results/."""

from __future__ import annotations

import datetime
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The checkout's short commit (the results name what was measured)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def report(summary: dict[str, Any], command: str) -> str:
    """The Markdown page for bench/results/."""
    from bench.soak import CLIENT_CONNECTIONS, MAX_IN_FLIGHT  # soak imports this module

    s = summary
    b = s["bounds"]
    verdict = "PASSED" if not s["failed"] else "FAILED: " + "; ".join(s["failed"])
    lines = [
        f"# Soak — {datetime.date.today().isoformat()}",
        "",
        f"Command: `{command}`  ",
        f"Perdure commit {s['commit']}; official restate-sdk service (`bench/services.py`); "
        f"{os.cpu_count()} cores shared with other work.",
        "",
        f"**{verdict}**",
        "",
        "| figure | value |",
        "|---|---|",
        f"| held | {s['load_seconds'] / 60:.1f} min at {s['held_rate']} req/s "
        f"(asked {s['asked_rate']}) |",
        f"| requests | {s['sent']} sent, {s['answered']} answered, {s['errors']} errors, "
        f"{s['sends_attached']} sends attached to at the end, {s['counter_keys']} counter keys "
        "checked |",
        f"| mix | {', '.join(f'{k} {v}' for k, v in s['by_kind'].items())} |",
        f"| server RSS | start {s['rss_start_mib']} MiB, after {b['warmup_s']:.0f} s warm-up "
        f"{s['rss_warm_mib']}, end {s['rss_end_mib']}, peak {s['rss_peak_mib']} |",
        f"| growth after warm-up | {s['rss_growth_mib']} MiB ({s['rss_growth_pct']} %), "
        f"{s['rss_growth_kib_per_1000_requests']} KiB per 1000 requests; bound "
        f"max({b['rss_growth_mib']} MiB, {b['rss_growth_pct']} %) |",
        f"| growth over the second half (from {s['rss_late_from_s']:.0f} s) | "
        f"{s['rss_late_growth_mib']} MiB, "
        f"{s['rss_late_growth_kib_per_1000_requests']} KiB per 1000 requests; bound "
        f"{b['late_growth_mib']} MiB; database at the end {s['db_end_mib']} MiB |",
        f"| open fds, no client connected | before {s['fds_idle_before']}, after "
        f"{s['fds_idle_after']}; bound before + {b['fd_slack']} |",
        f"| open fds under load | start {s['fds_start']}, after warm-up {s['fds_warm']}, end "
        f"{s['fds_end']}, max {s['fds_max']} (includes the sender's up to "
        f"{CLIENT_CONNECTIONS} connections) |",
        f"| CPU | server {s['server_cpu_pct_mean']} % of a core on average, the sender "
        f"{s.get('sender_cpu_pct', '?')} %; the machine "
        f"{s['machine_busy_pct_mean']} % busy (max {s['machine_busy_pct_max']} %), other "
        "work included |",
        f"| late starts | {s['late']} (requests that waited for one of {MAX_IN_FLIGHT} slots) |",
        "",
        "## Latency per window (sleeps apart)",
        "",
        "The last three columns come from the samples in the window: when the machine is busy",
        "with other work, the sender and the service wait for a core too, and requests queue.",
        "",
        "| window from | answered | p50 ms | p99 ms | sleep p99 ms | most in flight "
        "| server CPU % | machine busy % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    width = s.get("window_s") or 60.0
    for w in s["windows"]:
        inside = [x for x in s["samples"] if w["start_s"] <= x["t"] < w["start_s"] + width]
        most = max((x["in_flight"] for x in inside), default=0)
        cpu = statistics.fmean(x["server_cpu_pct"] for x in inside) if inside else 0.0
        busy = statistics.fmean(x["machine_busy_pct"] for x in inside) if inside else 0.0
        lines.append(
            f"| {w['start_s']:.0f} s | {w['answered']} | {w['p50_ms']} | {w['p99_ms']} "
            f"| {w['sleep_p99_ms']} | {most} | {cpu:.1f} | {busy:.1f} |"
        )
    lines += [
        "",
        "## Samples",
        "",
        "| t s | RSS MiB | fds | database MiB | service RSS MiB | answered | server CPU % "
        "| machine busy % | machine iowait % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    step = max(1, len(s["samples"]) // 40)
    for x in s["samples"][::step] + s["samples"][-1:]:
        lines.append(
            f"| {x['t']} | {x['rss_kib'] / 1024:.1f} | {x['fds']} | {x['db_mib']} | "
            f"{x['service_rss_kib'] / 1024:.1f} | {x['answered']} | {x['server_cpu_pct']} "
            f"| {x['machine_busy_pct']} | {x['machine_iowait_pct']} |"
        )
    return "\n".join(lines) + "\n"
