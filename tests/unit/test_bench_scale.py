"""`python -m bench.scale` at its smallest sizes against a real Perdure server (keeps it working).

100 Counter keys written into the store before start, 50 suspended workflow runs, 50 more
suspended plus 5 running through a kill -9, starts with 100 stored timers and 100 stored
suspended invocations: checks that every table's run did what it says (the pre-written state
is read, every run suspends, completes once released, and survives the kill). Asserts nothing
about speed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.interop,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


def test_smallest_scale_run_writes_all_three_tables(tmp_path: Path) -> None:
    from bench import scale

    argv = [
        "--keys",
        "100",
        "--suspended",
        "50",
        "--recovery",
        "50",
        "--retained",
        "100",
        "--active",
        "100",
        "--servers",
        "perdure",
        "--seconds",
        "1",
        "--out",
        str(tmp_path),
        "--label",
        "test",
    ]
    assert scale.main(argv) == 0
    results = {
        table: json.loads(next(tmp_path.glob(f"*-scale-{table}-test.json")).read_text())
        for table in scale.TABLES
    }
    for table in scale.TABLES:
        assert next(tmp_path.glob(f"*-scale-{table}-test.md")).read_text().count("| perdure |")

    (keys,) = results["keys"]["rows"]
    assert keys["keys"] == 100 and keys["probe"] == "200 2"  # k1 held 1 before the server ran
    assert {(w["workload"], w["concurrency"]) for w in keys["wrk"]} == {
        ("fresh", 1),
        ("existing", 1),
        ("fresh", 64),
        ("existing", 64),
    }
    assert all(w["requests"] > 0 and w["errors"] == 0 for w in keys["wrk"])
    assert keys["db_mib"] > 0 and keys["rss_mib"] > 0

    (suspended,) = results["suspended"]["rows"]
    assert suspended["send"]["ok"] == 50 and suspended["suspended_reached"]
    assert suspended["counts_suspended"] == {"suspended": 50}
    assert suspended["counts_end"] == {"completed": 100}  # 50 runs + 50 releases
    assert suspended["outputs"] == ['200 "t:ok"'] * 3

    (recovery,) = results["recovery"]["rows"]
    assert recovery["counts_before"] == {"suspended": 50, "running": 5}
    assert 0 < recovery["health_s"] <= recovery["first_call_s"]
    # 50 + 5 runs, as many releases, and the Greeter call that probed the restarted ingress
    assert recovery["counts_end"] == {"completed": 111}
    assert recovery["outputs"] == ['200 "t:ok"'] * 6

    (retained,) = results["retained"]["rows"]
    assert retained["timers"] == 100 and retained["first_call_s"] > 0
    (active,) = results["active"]["rows"]
    assert active["stored"] == "active" and active["timers"] == 100
