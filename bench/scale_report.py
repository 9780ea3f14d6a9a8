"""Tables of the scale benchmark (`bench/scale.py`) and its results files.

`write()` puts `<out>/<date>-scale-<table>[-<label>].md` (tables, command, machine) and a
`.json` with every raw number beside it; `python -m bench.scale_report FILE.json` rewrites the
`.md` of a results file.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _rss(value: dict[str, float] | None) -> str:
    return _num(value.get("rss_mib"), 0) if value else "-"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def keys_tables(rows: list[dict[str, Any]]) -> str:
    facts = _table(
        ["keys", "server", "populate s", "DB MiB", "startup s", "RSS idle MiB", "RSS after MiB"],
        [
            [
                _num(r["keys"]),
                r["server"],
                _num(r["populate_s"]),
                _num(r["db_mib"]),
                _num(r["startup_s"], 2),
                _rss(r),
                _rss(r.get("rss_after")),
            ]
            for r in rows
        ],
    )
    calls = []
    for r in rows:
        groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for w in r["wrk"]:
            groups.setdefault((w["workload"], w["concurrency"]), []).append(w)
        for (name, level), ws in groups.items():

            def med(key: str, ws: list[dict[str, Any]] = ws) -> Any:
                values = [w[key] for w in ws if w[key] is not None]
                return statistics.median(values) if values else None

            cpu = [w["server_cpu_ms_per_req"] for w in ws if w["server_cpu_ms_per_req"]]
            calls.append(
                [
                    _num(r["keys"]),
                    r["server"],
                    name,
                    str(level),
                    _num(med("throughput")),
                    _num(med("p50_ms"), 2),
                    _num(med("p99_ms"), 2),
                    _num(med("server_cpu_ms_per_req"), 2),
                    " / ".join(f"{c:.2f}" for c in cpu),
                    _num(sum(w["errors"] for w in ws)),
                    _num(med("other_cores"), 2),
                ]
            )
    calls.sort(key=lambda c: (c[1], c[2], int(c[3]), int(c[0].replace(",", ""))))
    return (
        facts
        + "\n\n"
        + _table(
            [
                "keys",
                "server",
                "key",
                "c",
                "req/s",
                "p50 ms",
                "p99 ms",
                "server CPU ms/req",
                "CPU ms/req, each round",
                "errors",
                "other cores",
            ],
            calls,
        )
    )


def suspended_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        [
            "invocations",
            "server",
            "sends/s",
            "send errors",
            "all suspended s",
            "RSS start MiB",
            "RSS suspended MiB",
            "peak RSS MiB",
            "DB MiB",
            "release s",
            "then done s",
            "completed",
            "RSS end MiB",
            "sample outputs",
        ],
        [
            [
                _num(r["invocations"]),
                r["server"],
                _num(r["send"]["rate"]),
                _num(r["send"]["errors"]),
                _num(r["send"]["seconds"] + r["suspend_wait_s"]),
                _rss(r["rss_start"]),
                _rss(r["rss_suspended"]),
                _num(r["rss_suspended"].get("peak_rss_mib"), 0),
                _num(r["db_mib_suspended"]),
                _num(r["release"]["seconds"]),
                _num(r["complete_wait_s"]),
                _num(r["counts_end"].get("completed", 0)),
                _rss(r["rss_end"]),
                "<br>".join(r["outputs"]),
            ]
            for r in rows
        ],
    )


def recovery_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        [
            "suspended",
            "running",
            "server",
            "RSS before kill MiB",
            "DB MiB",
            "health s",
            "first call s",
            "quiet s",
            "RSS after restart MiB",
            "RSS quiet MiB",
            "peak RSS MiB",
            "release → all done s",
            "completed",
            "RSS end MiB",
        ],
        [
            [
                _num(r["invocations"]),
                _num(r["running"]),
                r["server"],
                _rss(r["rss_before"]),
                _num(r["db_mib"]),
                _num(r["health_s"], 2),
                _num(r["first_call_s"], 2),
                _num(r["settle_s"]),
                _rss(r["rss_restart"]),
                _rss(r["rss_settled"]),
                _num(r["rss_settled"].get("peak_rss_mib"), 0),
                _num(r["complete_s"]),
                _num(r["counts_end"].get("completed", 0)),
                _rss(r["rss_end"]),
            ]
            for r in rows
        ],
    )


def retained_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        [
            "stored " + ("suspended" if rows and rows[0].get("stored") == "active" else "timers"),
            "server",
            "DB MiB",
            "health s",
            "first call s",
            "RSS ready MiB",
            "RSS settled MiB",
            "peak RSS MiB",
        ],
        [
            [
                _num(r["timers"]),
                r["server"],
                _num(r["db_mib"]),
                _num(r["health_s"], 2),
                _num(r["first_call_s"], 2),
                _rss(r["rss_ready"]),
                _rss(r["rss_settled"]),
                _num(r["rss_settled"].get("peak_rss_mib"), 0),
            ]
            for r in rows
        ],
    )


TABLES = {
    "keys": keys_tables,
    "suspended": suspended_table,
    "recovery": recovery_table,
    "retained": retained_table,
    "active": retained_table,
}


def markdown_tables(results: dict[str, Any]) -> str:
    return TABLES[results["table"]](results["rows"])


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    return (
        f"# Scale: {results['table']} ({results['date']})\n\n"
        f"Command: `{results['command']}`  \n"
        f"Started {results['started_at']}, finished {results.get('finished_at', '?')}; "
        f"wrk rows of {results['seconds']} s.  \n"
        f"Machine: {m['cpu']} ({m['cores']} cores), {m['memory']}, Linux {m['kernel']}, "
        f"Python {m['python']}, Perdure {m['perdure_commit']}, restate-server "
        f"{results['restate_version']}; Perdure server from `{results.get('perdure_src', '?')}`"
        " (the commit above is the checkout's, when the file was written).\n\n"
        f"{markdown_tables(results)}\n\n"
        "Raw numbers (wrk output, counts by status, RSS peaks): the `.json` beside this file. "
        "What the columns mean: docs/scale.md.\n"
    )


def write(results: dict[str, Any], out: Path, label: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    name = f"{results['date']}-scale-{results['table']}" + (f"-{label}" if label else "")
    path = out / f"{name}.md"
    path.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    path.write_text(markdown(results))
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        data = json.loads(Path(arg).read_text())
        Path(arg).with_suffix(".md").write_text(markdown(data))
