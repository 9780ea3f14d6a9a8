"""`perdure dev FILE`: one process runs the server and the file's services, registered."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from tests.helpers.processes import ROOT, free_port, start_dev, stop_dev, wait_until


def test_dev_serves_registers_and_prints_the_curl_to_try(tmp_path: Path) -> None:
    ingress, admin = free_port(), free_port()
    log = tmp_path / "dev.log"
    proc = start_dev(tmp_path / "data", log, ingress, admin)
    try:
        banner = wait_until(
            lambda: "Try:" in log.read_text() and log.read_text(), what="the dev banner"
        )
        curls = re.findall(r"curl (http://\S+/Greeter/greet)", banner)
        assert curls == [f"http://127.0.0.1:{ingress}/Greeter/greet"], banner
        first = httpx.post(curls[0], json="Ada", timeout=30)
        second = httpx.post(curls[0], json="Ada", timeout=30)
        assert first.json() == "Hello Ada!"
        assert second.json() == "Hello Ada! (visit #2)"
        visits = httpx.get(f"http://127.0.0.1:{ingress}/Visits/Ada/count", timeout=30)
        assert visits.json() == 2
    finally:
        stop_dev(proc)
    assert proc.returncode == 0, log.read_text()

    # State is durable: a second run on the same data directory remembers the visits.
    proc = start_dev(tmp_path / "data", tmp_path / "dev2.log", ingress, admin)
    try:
        wait_until(lambda: "Try:" in (tmp_path / "dev2.log").read_text(), what="the dev banner")
        again = httpx.post(f"http://127.0.0.1:{ingress}/Greeter/greet", json="Ada", timeout=30)
        assert again.json() == "Hello Ada! (visit #3)"
    finally:
        stop_dev(proc)


def test_dev_refuses_a_file_without_services(tmp_path: Path) -> None:
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "perdure.cli.main",
            "dev",
            str(empty),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert out.returncode != 0
    assert b"defines no services" in out.stderr
