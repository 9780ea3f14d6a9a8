"""The benchmark's output: machine facts, the comparison table, and the results files.

`write()` puts `bench/results/<date>-<mode>.md` (tables, command, machine) and a `.json` with
every raw number beside it.

Example::

    facts = machine_facts()
    print(comparison_table(rows))
    write(results, "quick")
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def machine_facts() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    with contextlib.suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=RESULTS.parent.parent,
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "perdure_commit": commit,
    }


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per workload x concurrency x server/SDK: the median of its rounds (--repeat).

    >>> rows = [{"workload": "g", "concurrency": 1, "server": "p", "sdk": "s", "throughput": t}
    ...         for t in (10.0, 30.0, 20.0)]
    >>> [r["throughput"] for r in medians(rows)], medians(rows)[0]["rounds"]
    ([20.0], 3)
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["workload"], r["concurrency"], r["server"], r["sdk"]), []).append(r)
    merged = []
    for group in groups.values():
        row = dict(group[0])
        for name, value in group[0].items():
            values = [g[name] for g in group if isinstance(g.get(name), int | float)]
            if name in ("workload", "concurrency", "server", "sdk", "round"):
                continue  # what the rows are grouped by stays as it is
            if isinstance(value, int | float) and len(values) == len(group):
                row[name] = statistics.median(values)
        row["errors"] = sum(g.get("errors", 0) for g in group)  # every error counts
        row["rounds"] = len(group)
        merged.append(row)
    return merged


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def rows_table(rows: list[dict[str, Any]]) -> str:
    """Every measured row: one line per workload x concurrency x server/SDK."""
    head = (
        "| workload | c | server | SDK | req/s | p50 ms | p99 ms | errors | server CPU s "
        "| service CPU s | server CPU ms/req | service CPU ms/req | drain s | completed/s "
        "| other cores |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['concurrency']} | {r['server']} | {r['sdk']} "
            f"| {_fmt(r['throughput'])} | {_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} "
            f"| {r['errors']} | {_fmt(r['server_cpu_s'], 2)} | {_fmt(r['service_cpu_s'], 2)} "
            f"| {_fmt(r['server_cpu_ms_per_req'], 3)} | {_fmt(r['service_cpu_ms_per_req'], 3)} "
            f"| {_fmt(r['drain_s'], 1) if r['drain_s'] else ''} "
            f"| {_fmt(r['completed_per_s']) if r.get('completed_per_s') else ''} "
            f"| {_fmt(r.get('other_cores'), 2)} |"
        )
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


# The rows issue 6 asks for, in its order: (workload, concurrency, how the row is named).
ISSUE_ROWS = [
    *[
        (w, c, t)
        for w, t in (
            ("greeter", "stateless Greeter/greet call"),
            ("chain10", "10 sequential ctx.run steps"),
            ("counter-hot", "Counter/{key}/add, one hot key"),
            ("counter100", "Counter/{key}/add, 100 keys"),
            ("send", "one-way /send accepted"),
        )
        for c in (1, 64)
    ],
    ("sleep100", 64, "handler sleeping 100 ms (ctx.sleep)"),
]


def _summary_line(
    title: str,
    c: int,
    p: dict[str, Any] | None,
    r: dict[str, Any] | None,
    ours: dict[str, Any] | None,
    field: str = "throughput",
) -> str:
    def get(row: dict[str, Any] | None, name: str) -> float | None:
        if row is None:
            return None
        if name == "completed_per_s" and row.get(name) is None and row.get("seconds"):
            # Rows recorded before the column existed: accepted / (duration + drain).
            accepted = row["throughput"] * row["seconds"]
            return float(accepted / (row["seconds"] + row.get("drain_s", 0.0)))
        value = row.get(name)
        return None if value is None else float(value)

    pt, rt = get(p, field), get(r, field)
    if p is None and r is None:
        return f"| {title} | {c} | not measured | | | | | | | |"
    return (
        f"| {title} | {c} | {_fmt(pt)} | {_fmt(rt)} | **{_ratio(pt, rt)}** "
        f"| {_fmt(get(p, 'p50_ms'), 2)} / {_fmt(get(r, 'p50_ms'), 2)} "
        f"| {_fmt(get(p, 'p99_ms'), 1)} / {_fmt(get(r, 'p99_ms'), 1)} "
        f"| {_fmt(get(p, 'server_cpu_ms_per_req'), 3)} / "
        f"{_fmt(get(r, 'server_cpu_ms_per_req'), 3)} "
        f"| {_ratio(get(p, 'server_cpu_ms_per_req'), get(r, 'server_cpu_ms_per_req'))} "
        f"| {_fmt(get(ours, field))} |"
    )


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Every row the issue asks for, Perdure / Restate with the official SDK, and the ratio.

    For ``send`` there are two lines: sends accepted per second, and sends completed per
    second (accepted / (duration + drain)). The last column is Perdure with the Perdure SDK.

    >>> row = {"throughput": 100.0, "completed_per_s": 50.0, "p50_ms": 1.0, "p99_ms": 2.0,
    ...        "server_cpu_ms_per_req": 1.0}
    >>> rows = [{**row, "workload": "send", "concurrency": 1, "server": s, "sdk": "restate-sdk"}
    ...         for s in ("perdure", "restate")]
    >>> [line.split(" | ")[:5] for line in summary_table(rows).splitlines()
    ...  if "/send" in line and " | 1 | " in line]  # doctest: +NORMALIZE_WHITESPACE
    [['| one-way /send accepted', '1', '100.0', '100.0', '**1.00**'],
     ['| one-way /send completed (accepted / (duration + drain))', '1', '50.0', '50.0',
      '**1.00**']]
    """
    by_key = {(r["workload"], r["concurrency"], r["server"], r["sdk"]): r for r in rows}
    head = (
        "| issue row | c | Perdure req/s | Restate req/s | P/R req/s | p50 ms P / R "
        "| p99 ms P / R | server CPU ms/req P / R | P/R CPU/req | Perdure + Perdure SDK "
        "req/s |"
    )
    lines = [head, "|" + "---|" * 10]
    for workload, c, title in ISSUE_ROWS:
        p = by_key.get((workload, c, "perdure", "restate-sdk"))
        r = by_key.get((workload, c, "restate", "restate-sdk"))
        ours = by_key.get((workload, c, "perdure", "perdure-sdk"))
        lines.append(_summary_line(title, c, p, r, ours))
        if workload == "send":
            lines.append(
                _summary_line(
                    "one-way /send completed (accepted / (duration + drain))",
                    c,
                    p,
                    r,
                    ours,
                    field="completed_per_s",
                )
            )
    return "\n".join(lines)


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """Perdure vs Restate, both with the official SDK: one line per workload x concurrency."""
    by_key = {(r["workload"], r["concurrency"], r["server"], r["sdk"]): r for r in rows}
    head = (
        "| workload | c | Perdure req/s | Restate req/s | P/R req/s | Perdure p50 / p99 ms "
        "| Restate p50 / p99 ms | P/R p50 | server CPU ms/req P / R | P/R CPU/req |"
    )
    lines = [head, "|" + "---|" * 10]
    for (workload, c, server, sdk), p in by_key.items():
        if server != "perdure" or sdk != "restate-sdk":
            continue
        r = by_key.get((workload, c, "restate", "restate-sdk"))
        if r is None:
            continue
        lines.append(
            f"| {workload} | {c} | {_fmt(p['throughput'])} | {_fmt(r['throughput'])} "
            f"| {_ratio(p['throughput'], r['throughput'])} "
            f"| {_fmt(p['p50_ms'], 2)} / {_fmt(p['p99_ms'], 2)} "
            f"| {_fmt(r['p50_ms'], 2)} / {_fmt(r['p99_ms'], 2)} "
            f"| {_ratio(p['p50_ms'], r['p50_ms'])} "
            f"| {_fmt(p['server_cpu_ms_per_req'], 3)} / {_fmt(r['server_cpu_ms_per_req'], 3)} "
            f"| {_ratio(p['server_cpu_ms_per_req'], r['server_cpu_ms_per_req'])} |"
        )
    return "\n".join(lines)


def scale_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| steps | server | SDK | requests | ms per request | ms per step "
        "| server CPU µs/step | service CPU µs/step |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['steps']} | {r['server']} | {r['sdk']} | {r['requests']} "
            f"| {_fmt(r['ms_per_request'], 1)} | {_fmt(r['ms_per_step'], 3)} "
            f"| {_fmt(r['server_cpu_us_per_step'], 0)} | {_fmt(r['service_cpu_us_per_step'], 0)} |"
        )
    return "\n".join(lines)


def profile_table(profile: dict[str, Any], kind: str, limit: int = 20) -> str:
    lines = ["| % of samples | function |", "|---|---|"]
    for item in profile[kind][:limit]:
        lines.append(f"| {item['percent']:.1f} | `{item['function']}` |")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    parts = [
        f"# Perdure vs Restate — {results['date']} ({results['label']}, {results['mode']} run)",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, Linux {m['kernel']}, "
        f"Python {m['python']}; Perdure commit {m['perdure_commit']}; "
        f"restate-server {results['restate_version']}, restate-sdk {results['restate_sdk']}.  ",
        f"Each row: wrk (1 thread, HTTP/1.1 keep-alive) for {results['seconds']} s; load "
        "generator, server and service share the machine's cores.",
        "",
        "## The rows of issue 6: Perdure / Restate (official restate-sdk service, same "
        "process for both)",
        "",
        summary_table(medians(results["rows"])),
        "",
        "## Perdure / Restate, every workload and concurrency measured",
        "",
        comparison_table(medians(results["rows"])),
        "",
        "## Every row"
        + (
            f" (median of {results['repeat']} rounds; each round in the json)"
            if results.get("repeat", 1) > 1
            else ""
        ),
        "",
        rows_table(medians(results["rows"])),
        "",
        f"Idle CPU (cores) before the run: {json.dumps(results['idle_cores'])}. "
        "`other cores`: CPU the rest of the machine used during the row (the idle server, "
        "other people's processes on a shared machine), in cores; the load generator is not "
        "counted there (it is in the json as `wrk_cpu_s`).",
    ]
    if results.get("notes"):  # what a person found out about this run, kept in the json
        parts += ["", "## Notes", "", *results["notes"]]
    if results.get("scale"):
        parts += [
            "",
            "## Cost per ctx.run step (c=1, sequential requests)",
            "",
            scale_table(results["scale"]),
        ]
    if results.get("profile"):
        p = results["profile"]
        parts += [
            "",
            f"## Perdure server profile, greeter c={p['concurrency']} ({p['samples']} "
            f"samples, {p['throughput']:.1f} req/s while sampled)",
            "",
            "By part of the server:",
            "",
            "| % of samples | part |",
            "|---|---|",
            *[f"| {c['percent']:.1f} | {c['component']} |" for c in p.get("components", [])],
            "",
            "Self time:",
            "",
            profile_table(p, "self"),
            "",
            "Inclusive time:",
            "",
            profile_table(p, "inclusive", 30),
        ]
    return "\n".join(parts) + "\n"


def write(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{results['date']}-{results['label']}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    path = stem.with_suffix(".md")
    path.write_text(markdown(results))
    return path


def rerender(json_path: Path) -> Path:
    """Rewrite the .md of a results .json (after a change of this module's tables)."""
    from bench import profiling

    results: dict[str, Any] = json.loads(json_path.read_text())
    profile = results.get("profile")
    if profile and "components" not in profile:
        collapsed = (RESULTS / profile["collapsed_file"]).read_text()
        profile["components"] = profiling.components(collapsed)
        json_path.write_text(json.dumps(results, indent=1) + "\n")
    results.setdefault("label", results["mode"])
    path = json_path.with_suffix(".md")
    path.write_text(markdown(results))
    return path


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:]:
        print(rerender(Path(name)))
